"""``python -m benchmark migrate``: results folders written by an earlier version, brought up to date.

Every reader of a results folder reads the current layout and schema only (benchmark/results.py);
what an earlier version wrote is converted here, once, under the folder's lock, and the readers
of a file with a schema refuse an older one with this command (``results.read_current``):

* **schema 1 -> 2** (``SCHEMA_VERSION``): every percentage is named ``*_percent``
  (``PERCENT_RENAMES``): the summary's ``map``/``map_interpolated``/``top1``, the tunes' and the
  choice across stores' ``validation_map``, ``gap_to_best``, ``standard_error``, ``worst_gap``,
  curves.csv's ``map``, online.csv's ``top1_accuracy`` and table.csv's ``map_mean``, ``top1_mean``,
  ``delta_map``... (``CSV_RENAMES``); every file with a schema gets
  ``schema_version``. Only names change: no number is recomputed, so no pair becomes stale. A
  folder's earlier.json (another machine's summary, kept as it was) is left as written and read
  in either schema (benchmark/crosscheck.py).

What versions before schema 1's last one wrote (a pair's record under metrics.json, pairs without
checksums, code fingerprints of hashing scheme 1) is no longer converted: no committed folder holds
any, and such a pair is not done (``results.pair_state``) or stale (``code_fingerprint``), so a run
computes it again.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from benchmark.results import (
    CURVES_CSV,
    ONLINE_CSV,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    SUMMARY,
    TABLE_CSV,
    TRANSFER_JSON,
    TUNE_JSON,
    folder_lock,
    pair_dir,
    pairs_on_disk,
    read_json,
    record_path,
)
from datasets.common.atomic import atomic_write_json, atomic_write_text

#: Schema 1's names of percentages -> schema 2's, wherever they are keys (summary rows, trial
#: rows, the choice's rows) or CSV columns.
PERCENT_RENAMES = {
    "map": "map_percent", "map_interpolated": "map_interpolated_percent", "top1": "top1_percent",
    "validation_map": "validation_map_percent", "validation_map_per_seed": "validation_map_per_seed_percent",
    "gap_to_best": "gap_to_best_percent", "standard_error": "standard_error_percent",
    "worst_gap": "worst_gap_percent", "top1_accuracy": "top1_percent",
}
#: Schema 1's CSV columns in percent, per file.
CSV_RENAMES = {
    CURVES_CSV: {"map": "map_percent"}, ONLINE_CSV: {"top1_accuracy": "top1_percent"},
    TABLE_CSV: {f"{old}_{stat}": f"{new}_{stat}" for old, new in (("map", "map_percent"), ("top1", "top1_percent"),
                                                                  ("map_interpolated", "map_interpolated_percent"))
                for stat in ("mean", "std")}
    | {"delta_map": "delta_map_percent", "delta_map_ci_low": "delta_map_ci_low_percent",
       "delta_map_ci_high": "delta_map_ci_high_percent"},
}


def renamed(row: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 row (a summary row, a trial, a candidate) with its percentages named so."""
    return {PERCENT_RENAMES.get(key, key): value for key, value in row.items()}


def summary_rows(summary: dict[str, Any], schema: int) -> dict[str, Any]:
    """A folder summary's rows (``metrics.json``'s ``summary``) in the current schema, from one
    written in ``schema``."""
    return summary if schema == SCHEMA_VERSION else {name: renamed(row) if isinstance(row, dict) else row
                                                     for name, row in summary.items()}


def _schema(data: Any) -> int:
    return data.get(SCHEMA_KEY, 1) if isinstance(data, dict) else SCHEMA_VERSION


def _pair_record(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, SCHEMA_KEY: SCHEMA_VERSION}


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    per_seed = {name: {seed: _pair_record(r) if isinstance(r, dict) else r for seed, r in seeds.items()}
                if isinstance(seeds, dict) else seeds for name, seeds in (data.get("per_seed") or {}).items()}
    rows = {"summary": summary_rows(data["summary"] or {}, 1)} if "summary" in data else {}
    return {SCHEMA_KEY: SCHEMA_VERSION, **data, "per_seed": per_seed, **rows}


def _tune(data: dict[str, Any]) -> dict[str, Any]:
    trials = {"trials": [renamed(t) for t in data["trials"]]} if "trials" in data else {}
    return {SCHEMA_KEY: SCHEMA_VERSION, **data, **trials}


def _choice(data: dict[str, Any]) -> dict[str, Any]:
    methods = {"methods": {m: [renamed(c) for c in found] for m, found in data["methods"].items()}} \
        if "methods" in data else {}
    return {SCHEMA_KEY: SCHEMA_VERSION, **data, **methods}


#: A folder's JSON files with a schema, each with its schema 1 -> 2 conversion (a pair's record:
#: ``_pair_record``).
JSON_UPGRADES = {SUMMARY: _summary, TUNE_JSON: _tune, TRANSFER_JSON: _choice}


def _csv_header(path: Path) -> list[str]:
    return next(csv.reader(io.StringIO(path.read_text(encoding="utf-8").partition("\n")[0])), [])


def older_schema(folder: Path) -> list[Path]:
    """The files of ``folder`` written in an earlier schema (what ``upgrade_schema`` rewrites),
    the CSV files among them."""
    files = [folder / name for name in JSON_UPGRADES]
    files += [record_path(pair_dir(folder, name, seed)) for name, seed in pairs_on_disk(folder)]
    older = [p for p in files if isinstance(data := read_json(p), dict) and data and _schema(data) != SCHEMA_VERSION]
    return older + [folder / name for name, columns in CSV_RENAMES.items()
                    if (folder / name).is_file() and any(old in _csv_header(folder / name) for old in columns)]


def upgrade_schema(folder: Path) -> list[str]:
    """Bring ``folder``'s files of schema 1 to the current schema (module docstring); returns what
    was rewritten. Call it under the folder's lock."""
    done: list[str] = []
    for path in older_schema(folder):
        if path.name in CSV_RENAMES:
            columns = CSV_RENAMES[path.name]
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow([columns.get(n, n) for n in _csv_header(path)])
            body = path.read_text(encoding="utf-8").partition("\n")[2]
            atomic_write_text(path, out.getvalue() + "\n" + body)
            done.append(f"{path}: columns in percent named *_percent")
        elif path.parent == folder:  # the folder's own files: their percentages are renamed
            atomic_write_json(path, JSON_UPGRADES[path.name](read_json(path)))
            done.append(f"{path}: schema {SCHEMA_VERSION} (percentages named *_percent)")
        else:
            atomic_write_json(path, _pair_record(read_json(path)))
            done.append(f"{path}: schema {SCHEMA_VERSION}")
    return done


def migrate(root: Path) -> list[str]:
    """Bring every results folder under ``root`` up to the current schema (module docstring), each
    under its lock. Returns what was done."""
    done: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        if older_schema(folder):  # else nothing to do: its lock is not taken (a run may hold it)
            with folder_lock(folder):
                done += upgrade_schema(folder)
    return done
