"""Which splits of a store this process may load: the structural guard of model selection.

A selection run (``python -m benchmark tune``, in its own process, every ``--jobs`` worker and
every torchrun rank) scores its candidates on the held-out part of the training split and must
not be able to read the evaluation split at all, not merely be asked not to. Inside
``only_splits(...)``, or in a process where ``restrict_splits(...)`` was called (a worker that
lives for one selection run), every ``FeatureBank`` of another split refuses to load, with one
line that names the split and why (exit code 2 at the command line). Outside, nothing is
restricted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from datasets.common.errors import StoreError

_readable: tuple[frozenset[str], str] | None = None  # (the splits that may load, why), or None: any


class SplitNotAllowedError(StoreError):
    """A split was asked for where only other splits may be read (a selection run)."""


def restrict_splits(splits: Iterable[str] | None, why: str = "") -> tuple[frozenset[str], str] | None:
    """From now on in this process, only ``splits`` may be loaded (None: any); returns the
    restriction it replaces, for ``only_splits`` to put back."""
    global _readable
    previous = _readable
    _readable = None if splits is None else (frozenset(splits), why)
    return previous


@contextmanager
def only_splits(splits: Iterable[str], why: str) -> Iterator[None]:
    """Within the block, only ``splits`` may be loaded (see the module docstring)."""
    global _readable
    previous = restrict_splits(splits, why)
    try:
        yield
    finally:
        _readable = previous


def check_split(split: str, store: Path | str) -> None:
    """Refuse ``split`` of ``store`` unless this process may load it."""
    if _readable is None:
        return
    allowed, why = _readable
    if split not in allowed:
        raise SplitNotAllowedError(
            f"{store}: split {split!r} may not be loaded here; {why} (readable: {', '.join(sorted(allowed))}). "
            "The evaluation split is read once, by `python -m benchmark run`")
