"""Command line of the harness: ``python -m benchmark COMMAND``; every command is listed below with
what it does, and ``python -m benchmark COMMAND --help`` gives its options.

One class per command, each in its module of this package, owning its options (benchmark/cli/base.py);
``COMMANDS`` is their list, in the order ``--help`` shows them.
"""

from __future__ import annotations

import argparse

from benchmark.cli.ablate import Ablate
from benchmark.cli.base import SubCommand
from benchmark.cli.check import Check
from benchmark.cli.compare import Compare
from benchmark.cli.curves import Curves
from benchmark.cli.latency import Latency
from benchmark.cli.listings import ListRuns, Methods, Stores
from benchmark.cli.online import Online
from benchmark.cli.plot import Plot
from benchmark.cli.report import Report
from benchmark.cli.reproduce import Reproduce
from benchmark.cli.run import Run
from benchmark.cli.stream import Stream
from benchmark.cli.transfer import Transfer
from benchmark.cli.tune import Tune
from datasets.common.cli import run_cli

COMMANDS: tuple[SubCommand, ...] = (
    Run(), Tune(), Transfer(), Curves(), Ablate(), Online(), Latency(), Stream(), Plot(), Report(),
    Reproduce(lambda argv: main(argv)), Compare(), Check(), ListRuns(), Stores(), Methods(),
)


def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n\n")[0].replace("``", "`")  # single quotes on a terminal
    parser = argparse.ArgumentParser(prog="python -m benchmark", description=summary)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (None: this process's); a given ``argv`` is what the records
    it writes name as their command (``python -m benchmark reproduce`` runs its stages so)."""
    if argv is None:
        return run_cli(build_parser(), argv)
    from benchmark.provenance import running

    with running(argv):
        return run_cli(build_parser(), argv)
