"""Where the shipped presets were chosen, and on which split.

The methods' ``default`` presets carry their provenance as data (methods/base.py ``Preset``,
``Origin``; methods/presets.py): the committed tuning record that chose each setting, the split
its trials were scored on and the date. Whether a record chose on validation is read from its
trials' own records (``evaluated_on``), never assumed: tests/benchmark/test_selection.py checks
that each declared split agrees with its record, and ``report --check`` names a tuning folder
whose trials were scored on anything else ("selection on test"). Until the selection-integrity
fix (issue 24) ``tune`` with worker processes scored on the test split; every shipped choice has
been made again on validation since, and ``tune`` now refuses any other split, so no row rests
on a choice made on test (the marks and audit tables for such rows were removed in issue 47).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.config import as_config
from benchmark.record import summary_records
from benchmark.results import TUNED_JSON, read_json
from datasets.common.gitinfo import REPO
from methods.base import Origin, Preset
from methods.registry import available_methods

RESULTS = REPO / "results"
#: The preset (dataset name) whose origins the tables are checked against: the embedded default's.
PRESET = "default"


def scored_on(folder: Path) -> str:
    """What a tuning record's trials were scored on, from the trials' own records: "validation",
    "test", or several joined with " and " ("" when the folder holds no trial record)."""
    splits = sorted({record.evaluated_on for seeds in summary_records(folder).values()
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
