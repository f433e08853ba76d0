"""The Python API reads what the command line reads (benchmark/api.py), from the committed results."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from benchmark import api
from datasets.common.errors import UsageError
from datasets.common.gitinfo import REPO

RESULTS = REPO / "results"


def test_a_runs_table_and_a_comparison_as_the_commands_give_them():
    table = api.table("default", RESULTS)
    summary = json.loads((RESULTS / "default" / "metrics.json").read_text())["summary"]
    assert set(table.index) == set(summary)
    assert table.loc["liteeval", "map_percent"] == pytest.approx(summary["liteeval"]["map_percent"]["mean"])
    assert table.loc["liteeval", "delta_map_vs_uniform_percent"] == pytest.approx(
        100 * summary["liteeval"]["delta_map_vs_uniform"]["estimate"])
    assert pd.isna(table.loc["uniform", "delta_map_vs_uniform_percent"])  # the reference row: no difference
    c = api.compare("default", "liteeval", "uniform", RESULTS)
    assert 100 * c.difference.estimate == pytest.approx(table.loc["liteeval", "delta_map_vs_uniform_percent"])
    assert "LiteEval" in api.describe(c)



def test_the_runs_are_what_list_runs_lists(tmp_path):
    import shutil

    shutil.copytree(RESULTS / "small-liteeval-rl", tmp_path / "small-liteeval-rl")
    found = api.runs(tmp_path)
    assert found["Run"].tolist() == ["small-liteeval-rl"] and found["State"].tolist() == ["ok"]


def test_a_run_that_is_not_there_is_one_clear_error(tmp_path):
    with pytest.raises(UsageError, match="nosuch: no results folder"):
        api.table("nosuch", tmp_path)
