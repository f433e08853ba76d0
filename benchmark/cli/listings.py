"""The commands that list what there is: results folders, stores, methods."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.cli.base import SubCommand
from benchmark.cli.options import add_results_dir, existing_root


class ListRuns(SubCommand):
    name = "list-runs"
    help = ("list the results folders: dataset, methods, seeds, where their pairs were computed, and whether report "
            "--check passes them")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_results_dir(parser)

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.presentation.runs import listing

        root = existing_root(args)
        print(listing(root))
        return 0


class Stores(SubCommand):
    name = "stores"
    help = ("list what --dataset accepts: the synthetic presets (and whether each is generated yet), the stores found "
            "under the data folder, and the dataset names that select methods' presets")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data", help="the folder to look for stores in (default: $LITEEVAL_DATA, else data/)")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.stores import data_root, store_listing

        root = Path(args.data) if args.data else data_root()
        print("\n".join(store_listing(root)))
        return 0


class Methods(SubCommand):
    name = "methods"
    help = "list the registered methods"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--verbose", action="store_true",
                            help="also each method's presets and where they were chosen")

    def execute(self, args: argparse.Namespace) -> int:
        from methods import shipped
        from methods.base import Preset, preset_settings
        from methods.registry import available_methods, ordered

        known = available_methods()
        width = max(len(n) for n in known)
        pad = " " * width
        for name in ordered(list(known)):
            cls = known[name]
            mode = "online " if cls.online else "offline"
            print(f"{name:<{width}}  {cls.shown_name():<13} {mode}  {cls.suite:<8}  "
                  f"streams={','.join(cls.streams):<12} {cls.summary}")
            if cls.citation:
                print(f"{pad}  {cls.citation}")
            if cls.cost_knob is not None:
                knob = cls.cost_knob
                print(f"{pad}  cost knob: {knob.setting} ({knob.what or knob.setting}), points "
                      f"{', '.join(map(str, knob.points))}, read in {knob.at}")
            if not args.verbose:
                continue
            if shipped.settings(name):
                print(f"{pad}  shipped defaults (any store without its own): {shipped.settings(name)}")
                for origin in shipped.origins(name):
                    print(f"{pad}    {origin.describe()}")
            for dataset, preset in cls.presets.items():
                print(f"{pad}  preset {dataset!r}: {preset_settings(preset)}")
                for origin in preset.origins if isinstance(preset, Preset) else ():
                    print(f"{pad}    {origin.describe()}")
                if isinstance(preset, Preset) and preset.note:
                    print(f"{pad}    set by hand: {preset.note}")
        return 0
