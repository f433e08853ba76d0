"""``reproduce``: every published number from the current code, stage by stage."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir
from benchmark.commands.defaults import REPRODUCE_STAGES
from benchmark.store_settings import SELECTION_TRIALS


class Reproduce(SubCommand):
    name = "reproduce"
    help = ("every published number from the current code: tune -> table -> Tables 2-4 -> online -> curves -> "
            "latency -> figures -> the other published runs -> report, each stage resumed or skipped when up to "
            "date; prints its plan and ETA first")

    def __init__(self, command_line: Callable[[list[str]], int]) -> None:
        # The stages are command lines of this package (``main``), given here rather than imported: the
        # package lists this command, so importing it back would close a circle.
        self.command_line = command_line

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("--dataset", default="default", help="synthetic preset or store directory (default: default)")
        add("--data-seed", type=int, default=0, help="seed of the synthetic store (default 0)")
        add("--name", help="results/<name> of the table (default: the dataset's name); the other stages write "
                           "results/<name>-tune, -ablate-*, -curves")
        add_results_dir(parser)
        add("--methods", nargs="+", metavar="METHOD", help="default: every method of the extended suite")
        add("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (default: 0 1 2)")
        add("--tune-seeds", nargs="+", type=int, default=[0], help="seeds of each trial (default: 0)")
        add("--trials", type=int, default=SELECTION_TRIALS,
            help=f"trials per method, the same for every method (default {SELECTION_TRIALS})")
        add("--points", type=int, default=5, help="trained points per training-time knob in the curves stage "
                                                  "(default 5)")
        add("--steps", type=int, help="exactly this many steps per pair (a quick run; default: the budget rule)")
        add("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:N")
        add("--jobs", type=int, help="pairs at once (default: as `run` chooses)")
        add("--threads", type=int, help="threads per pair (default 1 on a CPU)")
        add("--stages", nargs="+", choices=REPRODUCE_STAGES, metavar="STAGE",
            help=f"only these stages ({' '.join(REPRODUCE_STAGES)}; default: all)")
        add("--dry-run", action="store_true", help="print the plan and its estimated time, run nothing")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.reproduce import Options, Stopped, reproduce

        options = Options(dataset=args.dataset, data_seed=args.data_seed, name=args.name,
                          results_dir=args.results_dir, methods=args.methods, seeds=args.seeds,
                          tune_seeds=args.tune_seeds, trials=args.trials, points=args.points, steps=args.steps,
                          device=args.device, jobs=args.jobs, threads=args.threads, stages=args.stages)
        try:
            reproduce(options, self.command_line, dry_run=args.dry_run)
        except Stopped as stop:  # Ctrl-C or SIGTERM: the stage's command said what is kept and how to resume
            return stop.status
        return 0
