"""``migrate``: results folders of an earlier version brought up to date without recomputing."""

from __future__ import annotations

import argparse

from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir, existing_root


class Migrate(SubCommand):
    name = "migrate"
    help = ("bring results folders written by an earlier version up to date: rename the percentages of schema 1 "
            "(map, top1, validation_map...) to schema 2's *_percent names, without recomputing anything")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_results_dir(parser)

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.migration import migrate

        root = existing_root(args)
        done = migrate(root)
        for line in done:
            print(line)
        print(f"{len(done)} change(s)")
        return 0
