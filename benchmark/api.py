"""A small Python API for what the command line reads: the runs, a run's table, a comparison.

For notebooks and scripts that read results rather than parse Markdown::

    from benchmark import api

    api.runs()                                   # every results folder, as `list-runs` prints it
    table = api.table("default")                 # one row per method; units in the column names
    table.loc["liteeval", "map_percent"]         # mean mAP over seeds, in percent
    c = api.compare("default", "liteeval", "uniform")
    c.difference.estimate, c.difference.low, c.difference.high   # A - B, mAP as a fraction (0..1)

A run is named as every command names it: its name under ``results_dir``, or a folder's path.
It reads the committed files (the folder's ``metrics.json`` and the pairs' scores) and writes
nothing; what each field means is in docs/results-format.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark import results as layout
from benchmark.presentation import compare as comparing
from benchmark.presentation import runs as listing
from datasets.common.errors import UsageError

#: The columns of ``table``: name -> (the summary's field, its statistic, the factor to the unit named).
_TABLE = {
    "map_percent": ("map_percent", "mean", 1.0), "map_std_percent": ("map_percent", "std", 1.0),
    "top1_percent": ("top1_percent", "mean", 1.0),
    "gflops": ("gflops", "mean", 1.0), "gflops_std": ("gflops", "std", 1.0),
    "fine_frames": ("fine_frames", "mean", 1.0),
    "delta_map_vs_uniform_percent": ("delta_map_vs_uniform", "estimate", 100.0),
    "delta_low_percent": ("delta_map_vs_uniform", "ci_low", 100.0),
    "delta_high_percent": ("delta_map_vs_uniform", "ci_high", 100.0),
}


def folder(run: str | Path, results_dir: str | Path = "results") -> Path:
    """The results folder of ``run``: a folder's path, or its name under ``results_dir``."""
    found = layout.run_folder(run, results_dir)
    if not (found / layout.SUMMARY).is_file():
        raise UsageError(f"{run}: no results folder with a {layout.SUMMARY} under {results_dir} (nor at that path); "
                         "`python -m benchmark list-runs` lists them")
    return found


def runs(results_dir: str | Path = "results") -> pd.DataFrame:
    """Every results folder under ``results_dir``: what ``python -m benchmark list-runs`` prints."""
    return listing.frame(Path(results_dir))


def table(run: str | Path, results_dir: str | Path = "results") -> pd.DataFrame:
    """A run's table, one row per method (indexed by its result name), from the folder's summary.

    mAP and top-1 in percent (mean and std over seeds); the difference from Uniform and its 95%
    paired bootstrap interval in percentage points; GFLOPs (GMACs) and fine frames per video."""
    data = layout.read_current(folder(run, results_dir) / layout.SUMMARY)
    summary = (data or {}).get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, dict) or not summary:
        raise UsageError(f"{run}: its {layout.SUMMARY} has no table (a selection run's trials are in tune.json)")
    rows = {}
    for method, entry in summary.items():
        row: dict[str, object] = {"display_name": entry.get("display_name", method), "online": entry.get("online"),
                                  "seeds": entry.get("seeds")}
        for column, (key, stat, factor) in _TABLE.items():
            value = entry.get(key)
            row[column] = factor * value[stat] if isinstance(value, dict) and value.get(stat) is not None else None
        rows[method] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def compare(run: str | Path, a: str, b: str, results_dir: str | Path = "results",
            against: str | Path | None = None) -> comparing.Comparison:
    """Row ``a`` against row ``b`` (of ``against``, default the same run): what ``python -m
    benchmark compare`` prints, as an object (``describe`` gives its text)."""
    other = None if against is None else folder(against, results_dir)
    return comparing.compare(folder(run, results_dir), a, b, other)


describe = comparing.describe
