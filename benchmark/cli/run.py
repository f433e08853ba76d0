"""``run``: train and evaluate methods, and write the comparison table."""

from __future__ import annotations

import argparse

from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_settings_from, config_from, print_table, run_options


class Run(SubCommand):
    name = "run"
    help = "train and evaluate methods, write the comparison table under results/"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        run_options(parser, methods=True)
        add_settings_from(parser)

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.runner import run
        from benchmark.select_first import settle

        return print_table(run(settle(config_from(args), args.settings_from)))
