"""``transfer``: each method's shipped defaults chosen across stores."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark import results
from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir
from datasets.common.errors import UsageError


class Transfer(SubCommand):
    name = "transfer"
    help = ("choose each method's shipped defaults across stores: the same trials tuned on each store (its validation "
            "part only), one rule (the cheapest within the noise on every store, else the best worst case); writes "
            "results/<name>/tuned.json and a table of every method on every store")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("tunes", nargs="+", metavar="RUN",
                            help="each store's tune (a name under --results-dir or a folder), tuned with the same "
                                 "--trials, --tune-seed and --no-presets; one store's several tunes (a study per "
                                 f"method) joined by {results.GROUP!r}: a{results.GROUP}b")
        parser.add_argument("--name", default="shipped-defaults",
                            help="the folder written under --results-dir (default: shipped-defaults)")
        add_results_dir(parser)
        parser.add_argument("--force", action="store_true", help="replace a choice made there from other tunes")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.commands import transfer
        from methods.registry import available_methods

        root = Path(args.results_dir)
        stores = []
        for group in args.tunes:
            folders = []
            for run in group.split(results.GROUP):
                folder = results.run_folder(run, root)
                if not folder.is_dir():
                    raise UsageError(f"{run}: no such tune under {root} (nor a folder); name each store's "
                                     "`python -m benchmark tune` run")
                folders.append(folder)
            stores.append(folders)
        choice = transfer.choose(stores)
        shown = {name: cls.shown_name() for name, cls in available_methods().items()}
        print(transfer.write(choice, root / args.name, force=args.force, shown=shown))
        print(f"chosen settings written to {root / args.name / results.TUNED_JSON}; methods/shipped.py ships them")
        return 0
