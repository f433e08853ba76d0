"""``ablate``: LiteEval's ablations, the paper's Tables 2-4."""

from __future__ import annotations

import argparse
from dataclasses import replace

from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_settings_from, config_from, print_table, run_options
from benchmark.commands.defaults import ABLATION_KINDS


class Ablate(SubCommand):
    name = "ablate"
    help = "LiteEval ablations like the paper's Tables 2-4, under results/"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("kind", choices=ABLATION_KINDS, help="sync (Table 2), gamma (Table 3) or units (Table 4)")
        run_options(parser, methods=False)
        add_settings_from(parser)

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.commands.ablation import ablate
        from benchmark.select_first import settle

        # The variants start from LiteEval's settings on this store, as `run` trains its row with.
        cfg = settle(replace(config_from(args), methods=["liteeval"]), args.settings_from)
        return print_table(ablate(args.kind, cfg))
