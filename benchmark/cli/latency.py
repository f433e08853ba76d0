"""``latency``: measured time per video on this device, as a column of a run's table."""

from __future__ import annotations

import argparse

from benchmark import results
from benchmark.cli.base import SubCommand
from benchmark.cli.options import existing_run, followup_config_from, run_options


class Latency(SubCommand):
    name = "latency"
    help = ("measured backbone latency and time per video on this device, as results/<name>/latency.json and "
            "latency.md, and as a column of the folder's table")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        run_options(parser, methods=True, force=False, followup=True)
        parser.add_argument("--latency-batch", type=int, default=64,
                            help="the throughput batch for offline methods (64)")
        parser.add_argument("--repeats", type=int, default=5,
                            help="timed repeats per measurement; the median is kept (5)")
        parser.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (2)")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark import folder_summary
        from benchmark.commands.latency import LatencyOptions, run_latency
        from benchmark.context import RunContext

        cfg = followup_config_from(args)
        with results.folder_lock(existing_run(cfg)):
            ctx = RunContext.create(cfg)
            run_latency(ctx, LatencyOptions(batch=args.latency_batch, repeats=args.repeats, warmup=args.warmup))
            # The folder's table gains the estimate as a column, from the saved pairs (nothing is recomputed);
            # its provenance.json, which describes the run that computed them, is kept.
            texts = folder_summary.write(ctx)
        print((ctx.out / results.LATENCY_MD).read_text())
        print(texts[folder_summary.TERMINAL])
        print(f"written: {ctx.out / results.LATENCY_MD}, latency.json, and the folder's table with the estimate "
              "as a column")
        return 0
