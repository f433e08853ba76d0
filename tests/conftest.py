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

