"""``migrate``: results folders of an earlier version brought up to date without recomputing."""

from __future__ import annotations

import argparse

from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir, existing_root


class Migrate(SubCommand):
    name = "migrate"
    help = ("bring results folders written by an earlier version up to date: rename files to their current names "
            "(a pair's metrics.json to record.json, reference*.json to earlier.json and crosscheck.json), add the "
            "checksums to pairs written before them, where the pair's files agree, and restamp code fingerprints of "
            "an earlier scheme where their code is the current code")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_results_dir(parser)

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.migration import migrate

        root = existing_root(args)
        done, refused = migrate(root)
        for line in done:
            print(line)
        print(f"{len(done)} change(s); {len(refused)} pair(s) left as they were"
              + "".join(f"\n  {r}" for r in refused))
        return 0 if not refused else 1
