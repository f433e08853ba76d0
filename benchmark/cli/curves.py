"""``curves``: every method along its cost knob, with a matched-budget table and figure."""

from __future__ import annotations

import argparse

from benchmark import results
from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_settings_from, config_from, run_options


class Curves(SubCommand):
    name = "curves"
    help = ("every method along its cost knob (accuracy-cost curves, three seeds, the run's budget and selection), "
            "with a matched-budget table and figure under results/<name>-curves")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        run_options(parser, methods=True)
        add_settings_from(parser)
        parser.add_argument("--points", type=int,
                            help="at most this many trainings per method with a training-time knob, evenly spread "
                                 "over its declared points (default: all of them); an evaluation-time knob is "
                                 "measured at every point")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.curves.sweep import curves
        from benchmark.presentation.curves import write
        from benchmark.select_first import settle

        # The store's own settings, as `run` trains its table with (chosen first where it has none),
        # so that the sweep's points are the table's methods at their selected settings.
        folder = curves(settle(config_from(args), args.settings_from), keep=args.points)
        if folder is None:  # a torchrun rank other than 0: rank 0 writes and prints
            return 0
        print(write(folder))
        print(f"written: {folder / results.CURVES_CSV}, {results.CURVES_MD} and figures/curves.png/.pdf")
        return 0
