"""Fixtures shared by the benchmarks: the `default` store they all measure on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def store_path(tmp_path_factory) -> Path:
    """``LITEEVAL_BENCH_STORE`` if set, else the `default` preset (seed 0) generated once."""
    given = os.environ.get("LITEEVAL_BENCH_STORE")
    if given:
        return Path(given)
    from datasets.sources.synthetic import preset, synthesize

    return synthesize(preset("default"), tmp_path_factory.mktemp("bench") / "default", seed=0, show_progress=False)
