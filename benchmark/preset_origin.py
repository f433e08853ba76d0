"""Where the shipped presets were chosen, and on which split: what a table must say about its rows.

The methods' ``default`` presets carry their provenance as data (methods/base.py ``Preset``,
``Origin``; methods/presets.py): the committed tuning record that chose each setting, the split
its trials were scored on and the date. Whether a record chose on validation is read from its
trials' own records (``evaluated_on``), never assumed (tests/benchmark/test_selection.py checks that the
declared split agrees): until the selection-integrity fix (issue 24), ``tune`` with worker
processes scored every trial on the *test* split, so four committed records chose on test
accuracy. Every table row computed with a setting chosen that way says so in its caption
(``note``; the run's table.md, the README's headline and docs/results.md), until the presets
are chosen again on validation and their origins name the new records.

For those records, ``audit_rows`` also shows what validation said of the very same trained
trials (each trial's record keeps the validation mAP of the checkpoint it kept), so a reader
sees which choices validation would have made differently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.config import as_config
from benchmark.results import CONFIG, SUMMARY, TUNE_JSON, TUNED_JSON, pair_dir, read_json, summary_pairs
from datasets.common.gitinfo import REPO
from methods.base import Origin, Preset
from methods.registry import available_methods, display_name

RESULTS = REPO / "results"
ISSUE = "issue 24"
#: The preset (dataset name) whose origins the tables are checked against: the embedded default's.
PRESET = "default"


def scored_on(folder: Path) -> str:
    """What a tuning record's trials were scored on, from the trials' own records: "validation",
    "test", or several joined with " and " ("" when the folder holds no trial record)."""
    splits = sorted({str(record.get("evaluated_on")) for seeds in summary_pairs(folder).values()
                     for record in seeds.values()})
    return " and ".join(splits)


def origins(preset: str = PRESET) -> dict[str, tuple[Origin, ...]]:
    """Each registered method's origins of its ``preset`` (methods without one are left out)."""
    found = {}
    for name, cls in available_methods().items():
        chosen = cls.presets.get(preset)
        if isinstance(chosen, Preset) and chosen.origins:
            found[name] = chosen.origins
    return found


@dataclass(frozen=True)
class Choice:
    """One method's settings as a committed tuning record chose them."""

    method: str
    folder: str  # the record, results/<folder>
    setting: dict[str, Any]  # as the config file has it (hyper-parameters; training settings under "train")
    scored_on: str  # what the record's trials say
    declared: str  # what the preset's origin says
    keys: tuple[str, ...] = ()  # the origin's keys that no later origin of the method chooses again


def choices(preset: str = PRESET, results: Path = RESULTS) -> list[Choice]:
    """The choices behind ``preset``'s shipped settings: each origin's keys, with the values its
    record chose and the split its trials were scored on (read from the record). A setting two
    origins name is the later one's: a study runs on top of the tune before it and chooses
    again (benchmark/commands/studies.py), so the earlier record's choice of it is not shipped."""
    out = []
    for method, found in origins(preset).items():
        claimed: set[str] = set()
        mine = []
        for origin in reversed(found):
            keys = tuple(k for k in origin.keys if k not in claimed)
            claimed.update(origin.keys)
            mine.append((origin, keys))
        for origin, keys in reversed(mine):
            folder = results / origin.record
            tuned = read_json(folder / TUNED_JSON)
            chosen = tuned.get(method) if isinstance(tuned, dict) else None
            if not isinstance(chosen, dict):
                continue
            flat = {k: v for k, v in chosen.items() if k != "train"}
            flat.update({f"train.{k}": v for k, v in (chosen.get("train") or {}).items()})
            setting = as_config({k: flat[k] for k in keys if k in flat})
            out.append(Choice(method, origin.record, setting, scored_on(folder) or "an unrecorded split",
                              origin.scored_on, keys))
    return out


def uses(setting: Mapping[str, Any], hparams: Mapping[str, Any], train: Mapping[str, Any]) -> bool:
    """Whether a pair's ``hparams`` and ``train`` have every value ``setting`` chose."""
    for key, value in setting.items():
        if key == "train":
            if any(train.get(k) != v for k, v in value.items()):
                return False
        elif hparams.get(key) != value:
            return False
    return True


def chosen_on_test(rows: Iterable[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]],
                preset: str = "default", results: Path = RESULTS) -> dict[str, list[str]]:
    """Of ``rows`` (row name, registered method, hyper-parameters, training settings), those that
    use a setting chosen on anything but validation -> the records that chose them."""
    found = [c for c in choices(preset, results) if c.scored_on != "validation"]
    marked: dict[str, list[str]] = {}
    for row, method, hparams, train in rows:
        for choice in found:
            if choice.method == method and uses(choice.setting, hparams, train):
                marked.setdefault(row, []).append(choice.folder)
    return marked


def note(marked: Mapping[str, list[str]]) -> str:
    """The caption sentence for rows resting on settings chosen on the test split ("" for none)."""
    if not marked:
        return ""
    folders = sorted({f for names in marked.values() for f in names})
    where = ", ".join(f"results/{f}" for f in folders)
    return (f"Presets chosen on the test split ({ISSUE}; see {where}): {', '.join(marked)} ran with settings that "
            "a tune picked by test accuracy, not validation; they stay marked until chosen again on validation.")


def folder_rows(folder: Path) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(row name, registered method, hyper-parameters, training settings) of every pair in a
    results folder, from its records (seed by seed; the method from the pair's config.json)."""
    classes = {f"{c.__module__}:{c.__qualname__}": name for name, c in available_methods().items()}
    rows = []
    for label, seeds in summary_pairs(folder).items():
        for seed, record in seeds.items():
            config = read_json(pair_dir(folder, label, seed) / CONFIG)
            method = classes.get(str((config or {}).get("class")))
            if method is None:  # not a registered method (a plug-in by path): no shipped preset to compare
                continue
            rows.append((display_of(folder, label) or display_name(label), method, record.get("hparams") or {},
                         record.get("train") or {}))
    return rows


def display_of(folder: Path, label: str) -> str | None:
    """A row's name as the folder's summary shows it."""
    data = read_json(folder / SUMMARY)
    entry = ((data or {}).get("summary") or {}).get(label) if isinstance(data, dict) else None
    return entry.get("display_name") if isinstance(entry, dict) else None


def audit_rows(folder: Path) -> list[dict[str, Any]] | None:
    """The trials of a tuning record that chose on something else than validation, as
    ``tables.tune_markdown`` shows them: the mAP that chose (``validation_map_percent``, the record's own
    key, holds the score the trials were ranked by), the validation mAP of the checkpoint each
    trial kept, and which trial validation would have picked (highest of those, ties to the
    earlier, as the record's rule ranked; GFLOPs on validation were not recorded, so the
    cost-aware rule cannot be applied to them). None for a record that chose on validation."""
    tune = read_json(folder / TUNE_JSON)
    split = scored_on(folder)
    if not isinstance(tune, dict) or not split or split == "validation":
        return None
    per_seed = summary_pairs(folder)
    chosen = tune.get("chosen") or {}
    rows = []
    for trial in tune.get("trials") or []:
        label = f"{trial['method']}-trial{trial['trial']}"
        kept = [r["selection"]["best_validation_map"] for r in (per_seed.get(label) or {}).values()]
        kept_map = 100 * sum(kept) / len(kept) if kept else float("nan")
        rows.append({**trial, "kept_checkpoint_validation_map_percent": kept_map,
                     "chosen": json.dumps(as_config(trial["setting"]), sort_keys=True)
                     == json.dumps(chosen.get(trial["method"]), sort_keys=True)})
    for method in dict.fromkeys(r["method"] for r in rows):
        trials = [r for r in rows if r["method"] == method]
        pick = max(trials, key=lambda r: (r["kept_checkpoint_validation_map_percent"], -r["trial"]))
        for r in trials:
            r["validation_pick"] = r is pick
    return rows

