"""``online``: the online budget curves of the paper's Figure 2, from a run's trained models."""

from __future__ import annotations

import argparse

from benchmark import results
from benchmark.cli.base import SubCommand
from benchmark.cli.options import existing_run, followup_config_from, run_options
from benchmark.commands.defaults import FRAME_MODEL, HORIZON_METHOD
from datasets.common.errors import UsageError


class Online(SubCommand):
    name = "online"
    help = ("online budget curves (LiteEval-K, Uniform-K, Seq-K; Figure 2) from trained models, as "
            "results/<name>/online.csv")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        run_options(parser, methods=True, force=False, followup=True)
        parser.add_argument("--max-k", type=int, default=10, help="budgets K = 1..MAX_K (default 10)")
        parser.add_argument("--horizon-method", "--reference", dest="horizon_method", default=HORIZON_METHOD,
                            help=f"online method whose stopping points define Uniform-K's K' (default "
                                 f"{HORIZON_METHOD}; --reference is its former name)")
        parser.add_argument("--frame-model", default=FRAME_MODEL,
                            help=f"trained frame classifier that Uniform-K and Seq-K average (default {FRAME_MODEL})")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.commands.online import OnlineOptions, run_online
        from benchmark.context import RunContext
        from benchmark.tables import online_markdown

        if args.max_k < 1:
            raise UsageError(f"--max-k must be >= 1, got {args.max_k}")
        cfg = followup_config_from(args)
        with results.folder_lock(existing_run(cfg)):
            ctx = RunContext.create(cfg)
            options = OnlineOptions(ks=tuple(range(1, args.max_k + 1)), horizon_method=args.horizon_method,
                                    frame_model=args.frame_model)
            table = run_online(ctx, options)
        print(online_markdown(table))
        print(f"\nwritten: {ctx.out / results.ONLINE_CSV}")
        return 0
