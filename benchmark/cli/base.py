"""One class per command (lm-evaluation-harness's shape): a command owns its subparser and runs it.

A command is a ``SubCommand`` with a ``name``, a one-line ``help``, its ``add_arguments`` and its
``execute``; benchmark/cli/__init__.py lists them, in the order ``--help`` shows them. Commands that
are not ``rank_aware`` are refused under torchrun, where every rank would run the whole command and
all but one would stop at the results folder's lock (or write the same files twice).
"""

from __future__ import annotations

import argparse
from typing import Any, ClassVar

from datasets.common.errors import UsageError

#: The commands that split their work over torchrun ranks (rank 0 holds the folder's lock and writes
#: the tables); every other command runs in one process.
RANK_AWARE = ("run", "tune", "curves", "ablate")


class SubCommand:
    """A command of ``python -m benchmark``: its options and what it does with them."""

    name: ClassVar[str]
    help: ClassVar[str]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The command's options (none by default)."""

    def execute(self, args: argparse.Namespace) -> int:
        """Run the command; the exit code."""
        raise NotImplementedError

    def register(self, sub: Any) -> argparse.ArgumentParser:
        """Add the command's subparser to ``sub`` (argparse's subparsers action)."""
        parser = sub.add_parser(self.name, help=self.help)
        self.add_arguments(parser)
        parser.set_defaults(func=self.execute if self.name in RANK_AWARE else self._in_one_process)
        return parser

    def _in_one_process(self, args: argparse.Namespace) -> int:
        from datasets.common.distributed import launched_world

        world = launched_world()
        if world > 1:
            raise UsageError(f"`{self.name}` runs in one process and does not split its work over torchrun's "
                             f"{world} ranks; run it as `python -m benchmark {self.name} ...` (torchrun splits "
                             f"{', '.join(RANK_AWARE)})")
        return self.execute(args)
