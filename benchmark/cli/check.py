"""``check``: the conformance checks run on methods, plug-ins first of all."""

from __future__ import annotations

import argparse

from benchmark.cli.base import SubCommand


class Check(SubCommand):
    name = "check"
    help = ("run the conformance checks on methods (registered names, module:Class, path/file.py:Class, entry points) "
            "and say what each failed check found and what to change; run checks every plug-in this way before "
            "training it")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("specs", nargs="+", metavar="METHOD", help="what --methods accepts")
        add("--dataset", default="tiny",
            help="store the checks train and read on, its training split only (default: the tiny synthetic store, "
                 "generated on first use; a store directory for methods with other streams)")
        add("--data-seed", type=int, default=0, help="seed of a synthetic store (default 0)")
        add("--fast", action="store_true", help="only the checks run applies to plug-ins (not determinism and "
                                                "gradients, which train twice)")

    def execute(self, args: argparse.Namespace) -> int:
        from benchmark.conformance import check_method, finding_lines
        from benchmark.plans import refuse_impostor
        from benchmark.stores import resolve_store
        from methods.registry import resolve_method

        store = resolve_store(args.dataset, args.data_seed, show_progress=not args.quiet)
        failed = 0
        for spec in args.specs:
            cls = resolve_method(spec)
            refuse_impostor(spec, cls)
            findings = check_method(cls, store, fast=args.fast)
            print("\n".join(finding_lines(cls, findings)))
            failed += any(not f.passed for f in findings)
        return 1 if failed else 0
