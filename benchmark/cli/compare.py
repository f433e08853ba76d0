"""``compare``: two rows of a run, their paired bootstrap difference and their costs."""

from __future__ import annotations

import argparse

from benchmark import results
from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir


class Compare(SubCommand):
    name = "compare"
    help = ("two rows of a results folder: their mAP difference with its paired bootstrap interval over the same "
            "videos (seeds pooled), and their costs")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("run", help="the run: its name (results/<name>, as --name names it) or its folder's path")
        add("a", help="a row: its result name (runs/<name>) or its name in the table")
        add("b", help="the row it is compared with")
        add("--against", metavar="RUN", help="read B from this run instead (a name or a folder; one that scored the "
                                              "same videos, e.g. the same run in another --precision)")
        add_results_dir(parser, "where run names are looked up")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.presentation.compare import compare, describe

        against = results.run_folder(args.against, args.results_dir) if args.against is not None else None
        print(describe(compare(results.run_folder(args.run, args.results_dir), args.a, args.b, against)))
        return 0
