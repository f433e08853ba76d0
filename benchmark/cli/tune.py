"""``tune``: each method's declared settings searched on the held-out validation part."""

from __future__ import annotations

import argparse
import json

from benchmark.cli.base import SubCommand
from benchmark.cli.options import config_from, run_options
from benchmark.store_settings import SELECTION_TRIALS
from datasets.common.errors import UsageError


class Tune(SubCommand):
    name = "tune"
    help = ("search each method's declared settings on the held-out validation part of the training split (the same "
            "number of trials for every method; the evaluation split is never read); writes a config file for run "
            "--config")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        run_options(parser, methods=True, seeds=(0,), evaluates=False)
        parser.add_argument("--trials", nargs="+", default=[str(SELECTION_TRIALS)], metavar="N [METHOD=N]",
                            help="settings tried per method, then any method's own count (METHOD=N); the first "
                                 f"is the method's current one (default {SELECTION_TRIALS})")
        parser.add_argument("--tune-seed", type=int, default=0, help="seed of the random draw of settings (default 0)")
        parser.add_argument("--space", help="a JSON object of setting -> candidate values that replaces the methods' "
                                            "declared search spaces (keys: Hparams fields or train.<setting>), or "
                                            "an object of method -> such an object, one for each method tuned")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.commands.tune import parse_trials, tune

        try:
            space = json.loads(args.space) if args.space is not None else None
        except json.JSONDecodeError as exc:
            raise UsageError(f"--space is not valid JSON ({exc}); e.g. '{{\"penalty\": [\"video\", \"batch\"]}}'") \
                from exc
        trials, per_method = parse_trials(args.trials)
        result = tune(config_from(args), trials=trials, tune_seed=args.tune_seed, space=space, per_method=per_method)
        if result is None:  # a torchrun rank other than 0: rank 0 chooses and prints
            return 0
        print(result.table)
        print(f"\nbest settings written to {result.config_path}; use them with "
              f"`python -m benchmark run --config {result.config_path}`")
        return 0
