"""Shared fixtures: a tiny synthetic store built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITEEVAL_PROGRESS", "0")  # no progress bars in test logs
# One process per run unless a test asks for --jobs: starting worker processes costs each run
# seconds, for pairs that take milliseconds. The worker paths have their own tests (--jobs 2).
os.environ.setdefault("LITEEVAL_JOBS", "1")


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` preset, seed 0. Read-only: copy it before planting defects."""
    from datasets.sources.synthetic import preset, synthesize

    out = tmp_path_factory.mktemp("stores") / "tiny"
    return synthesize(preset("tiny"), out, seed=0, name="tiny", preset_name="tiny", show_progress=False)


@pytest.fixture
def hand_store(tmp_path: Path) -> Path:
    """A 5-video hand-made store with known frame values (tests/helpers.py)."""
    from tests.helpers import write_store

    path = tmp_path / "hand"
    write_store(path)
    return path


@pytest.fixture(scope="session")
def current_ablation(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Table 2 folder (`default-ablate-sync`) the current code computed on the tiny store, two
    seeds: what `report` publishes (a committed folder may be stale while it is recomputed, and a
    stale folder is withheld). Read-only: copy it before planting defects."""
    from benchmark.__main__ import main

    root = tmp_path_factory.mktemp("current-ablation")
    assert main(["-q", "ablate", "sync", "--dataset", str(tiny_store), "--seeds", "0", "1", "--steps", "2",
                 "--jobs", "1", "--results-dir", str(root), "--name", "default-ablate-sync"]) == 0
    return root / "default-ablate-sync"



#: The command lines' entry points: a test that calls one (itself, or through a helper of its
#: module) runs a command end to end and is marked ``e2e``; ``pytest -m "not e2e and not perf"``
#: is the quick loop (``-m`` replaces the default ``not perf``).
def _entry_points() -> tuple[object, ...]:
    from benchmark.cli import main as benchmark_main
    from datasets.__main__ import main as datasets_main

    return benchmark_main, datasets_main


def _codes(code):  # a function's code and that of the functions defined inside it
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            yield from _codes(const)


#: A CLI entry imported inside a test's body: `from benchmark.__main__ import main`.
_ENTRY_MODULES = {"benchmark.__main__", "benchmark.cli", "datasets.__main__"}


def _runs_a_command(func, namespace: dict, entries: tuple[object, ...], seen: set) -> bool:
    if id(func) in seen or not hasattr(func, "__code__"):
        return False
    seen.add(id(func))
    for code in _codes(func.__code__):
        if "main" in code.co_names and _ENTRY_MODULES & set(code.co_names):
            return True
        for name in code.co_names:
            target = namespace.get(name)
            if any(target is entry for entry in entries):
                return True
            if callable(target) and getattr(target, "__module__", None) == namespace.get("__name__") \
                    and _runs_a_command(target, namespace, entries, seen):
                return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    entries = _entry_points()
    for item in items:
        func = getattr(item, "function", None)
        if func is not None and _runs_a_command(func, func.__globals__, entries, set()):
            item.add_marker(pytest.mark.e2e)
