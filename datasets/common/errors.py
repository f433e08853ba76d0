"""Errors raised by the data layer.

Every error names the file it is about and, where one exists, the fix, because the user
who reads it is usually looking at a store someone else built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One finding of a store check: where, what, and how to fix it."""

    file: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.file}: {self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


class UserError(Exception):
    """An error the user can fix, whose message names the input and the fix.

    The command lines print it as one ``error: ...`` line with exit code 2
    (datasets/common/cli.py); anything else is a bug, and keeps its traceback."""


class UsageError(UserError, ValueError):
    """A bad argument, setting, name or plug-in (a ValueError, as callers of the library expect)."""


class StoreError(UserError):
    """A feature store cannot be read or written as asked."""


class WriteError(StoreError):
    """A file could not be written (a full disk, a read-only folder, no permission).

    Raised by the atomic writers with the file's path and the system's reason, so that
    "No space left on device" never arrives without saying where."""


class StoreValidationError(StoreError):
    """A store failed its checks; ``problems`` lists every finding."""

    def __init__(self, path: Path | str, problems: list[Problem]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:20])
        more = len(self.problems) - 20
        if more > 0:
            shown += f"\n  ... and {more} more (run `python -m datasets validate {self.path}`)"
        super().__init__(f"feature store {self.path} failed {len(self.problems)} check(s):\n{shown}")

    def __reduce__(self) -> tuple[type, tuple[Path, list[Problem]]]:
        # Raised in a worker process (--jobs), it must cross to the parent as itself: the default
        # pickling passes only the message and fails on this __init__.
        return (type(self), (self.path, self.problems))


class IngestError(StoreError):
    """Ingest found problems in the inputs and was not allowed to drop anything."""
