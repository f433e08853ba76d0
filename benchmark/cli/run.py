"""``run``: train and evaluate methods, and write the comparison table."""

from __future__ import annotations

import argparse

from benchmark.cli.base import SubCommand
from benchmark.cli.options import config_from, print_table, run_options


class Run(SubCommand):
    name = "run"
    help = "train and evaluate methods, write the comparison table under results/"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        run_options(parser, methods=True)
        parser.add_argument("--settings-from", metavar="NAME",
                            help="train with the settings chosen on another store (results/NAME.settings.json, or a "
                                 "path to one), marked in the caption and on every row they cover; by default a store "
                                 "is run with its own, chosen first on its validation part where it has none "
                                 "(benchmark/select_first.py)")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.runner import run
        from benchmark.select_first import settle

        return print_table(run(settle(config_from(args), args.settings_from)))
