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
* files under their old names renamed (``results.OLD_NAMES``), checksums added to pairs written
  before them where their files agree (``adopt_legacy_pair``), code fingerprints of an earlier
  hashing scheme restamped where the code they name is the current code (``restamp_code``).
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.code_fingerprint import SCHEME, restamped
from benchmark.results import (
    CONFIG,
    CURVES_CSV,
    OLD_NAMES,
    ONLINE_CSV,
    OPTIONAL_FILES,
    RECORD,
    REQUIRED_FILES,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    SCORES,
    SUMMARY,
    TABLE_CSV,
    TRANSFER_JSON,
    TUNE_JSON,
    folder_lock,
    numbers_disagreement,
    pair_dir,
    pairs_on_disk,
    read_json,
    record_path,
    summary_pairs,
)
from datasets.common.atomic import atomic_write_json, atomic_write_text, file_sha256

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


def migrate(root: Path) -> tuple[list[str], list[str]]:
    """Bring every results folder under ``root`` up to the current layout and schema (module
    docstring), each under its lock. Returns what was done, and the pairs left as they were,
    with why."""
    done: list[str] = []
    refused: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        pairs = [pair_dir(folder, name, seed) for name, seed in pairs_on_disk(folder)]
        renames = [(place, name) for place in [folder, *pairs] for name in OLD_NAMES
                   if not (place / name).is_file() and (place / OLD_NAMES[name]).is_file()
                   and (name != RECORD or place != folder)]  # the folder's own metrics.json is its summary
        legacy = [pair for pair in pairs
                  if isinstance(record := read_json(record_path(pair)), dict) and record.get("files") is None]
        if not renames and not legacy and not _earlier_scheme(folder, pairs) and not older_schema(folder):
            continue  # nothing to do: its lock is not taken (a run may hold it)
        with folder_lock(folder):
            for place, name in renames:
                os.replace(place / OLD_NAMES[name], place / name)
                done.append(f"{place / OLD_NAMES[name]} -> {name}")
            for pair in legacy:
                why = adopt_legacy_pair(pair)
                if why:
                    refused.append(f"{pair}: {why}")
                else:
                    done.append(f"{pair}: checksums added")
            if _earlier_scheme(folder, pairs):
                records, entries = restamp_code(folder, pairs)
                if records or entries:
                    done.append(f"{folder}: code fingerprints restamped to scheme {SCHEME} in {records} pair "
                                f"record(s) and {entries} entr{'y' if entries == 1 else 'ies'} of {SUMMARY} (the "
                                "code they name is the current code; benchmark/code_fingerprint.py)")
            done += upgrade_schema(folder)
    return done, refused


def adopt_legacy_pair(folder: Path) -> str:
    """Add the checksums to a pair written before they were recorded, if its files agree (see
    ``_legacy_disagreement`` and ``numbers_disagreement``); returns why not ("" when added).
    The record notes when and how (``checksums_added``). Call it under the folder's lock."""
    marker = record_path(folder)
    record = read_json(marker)
    config = read_json(folder / CONFIG)
    if not isinstance(record, dict) or not isinstance(config, dict):
        return f"{marker.name} or config.json is missing or corrupt"
    if record.get("files") is not None:
        return "it has checksums already"
    problem = _legacy_disagreement(folder, record, config) or numbers_disagreement(folder, record, marker.name)
    if problem:
        return problem
    names = [*REQUIRED_FILES, *(f for f in OPTIONAL_FILES if (folder / f).is_file())]
    record["files"] = {name: file_sha256(folder / name) for name in names}
    record["checksums_added"] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "by": "python -m benchmark migrate",
        "checked": "its files agree with each other (method, seed, settings, budget, videos) and every number of the "
                   "record equals what its scores.npz gives"}
    atomic_write_json(marker, record)
    return ""


def _legacy_disagreement(folder: Path, record: dict[str, Any], config: dict[str, Any]) -> str:
    """For pairs written before checksums (metrics.json without "files"), before ``migrate``
    adds them: every file present and readable, and what metrics.json says it was computed
    with equal to config.json (method, seed, hyper-parameters, training settings, budget), and
    the scores cover as many videos as it says. "" when they agree, else the first disagreement."""
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            return f"{name} is missing"
    budget = config.get("budget") or {}
    checks = {"method": (record.get("method"), config.get("method")), "seed": (record.get("seed"), config.get("seed")),
              "hparams": (record.get("hparams"), config.get("hparams")),
              "train": (record.get("train"), config.get("train")),
              "budget": (record.get("budget_steps"), budget.get("total_steps"))}
    for what, (recorded, configured) in checks.items():
        if recorded != configured:
            return f"the record and config.json disagree on {what} (an interrupted rewrite?)"
    try:
        with np.load(folder / SCORES) as data:
            videos = len(data["video_ids"])
    except Exception:  # noqa: BLE001 - any failure to read it means the file is not complete
        return "scores.npz is unreadable"
    if videos != record.get("num_eval_videos"):
        return f"scores.npz has {videos} videos, the record says {record.get('num_eval_videos')}"
    return ""


def _summary_records(folder: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The folder's summary (as read) and the pair records it holds (``per_seed``)."""
    summary = read_json(folder / SUMMARY)
    per_seed = summary.get("per_seed") if isinstance(summary, dict) else None
    return summary, [record for seeds in (per_seed or {}).values() if isinstance(seeds, dict)
                     for record in seeds.values() if isinstance(record, dict)]


def _earlier_scheme(folder: Path, pairs: list[Path]) -> bool:
    """Whether a pair record or the summary of ``folder`` holds a code fingerprint of an earlier
    scheme (``restamp_code`` may have work to do)."""
    records = [read_json(record_path(pair)) for pair in pairs]
    records += [record for seeds in summary_pairs(folder).values() for record in seeds.values()]
    return any(isinstance(r, dict) and isinstance(r.get("code"), dict) and r["code"].get("scheme", 1) != SCHEME
               for r in records)


def restamp_code(folder: Path, pairs: list[Path]) -> tuple[int, int]:
    """Rewrite, in the pairs' records and in the folder's summary, each code fingerprint of an
    earlier scheme whose files are the current files, under the current scheme
    (``code_fingerprint.restamped``); a stale one keeps its old hashes, so that it stays stale.
    Returns how many pair records and summary entries were rewritten. Call it under the folder's
    lock."""
    records = entries = 0
    for pair in pairs:
        record = read_json(record_path(pair))
        if isinstance(record, dict) and (code := restamped(record.get("code"))) is not None:
            atomic_write_json(record_path(pair), {**record, "code": code})
            records += 1
    summary, held = _summary_records(folder)
    for record in held:
        if (code := restamped(record.get("code"))) is not None:
            record["code"] = code
            entries += 1
    if entries:
        atomic_write_json(folder / SUMMARY, summary)
    return records, entries
