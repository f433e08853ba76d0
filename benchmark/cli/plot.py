"""``plot``: the figures redrawn from a run's saved results."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark import results
from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir, existing_folder
from benchmark.config import folder_name_problem
from benchmark.presentation.plots import FIGURES
from datasets.common.errors import UsageError


class Plot(SubCommand):
    name = "plot"
    help = "redraw the figures (PNG and PDF) from saved results, under results/<name>/figures/"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--name", default="default", help="results/<name> to plot (default: default)")
        add_results_dir(parser)
        parser.add_argument("--figures", nargs="+", choices=sorted(FIGURES), help="only these figures (default: all)")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.presentation.plots import plot_all

        if folder_name_problem(args.name):
            raise UsageError(f"--name {args.name!r}: {folder_name_problem(args.name)}; results/<name> is one folder")
        folder = existing_folder(Path(args.results_dir) / args.name)
        with results.folder_lock(folder):
            for path in plot_all(folder, args.figures):
                print(path)
        return 0
