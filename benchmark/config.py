"""Run configuration and the per-method config file.

The config file (JSON, or TOML on Python 3.11+) has one table per method: model
hyper-parameters at its top level and training settings under ``train``::

    [lstm]
    hidden = 256
    [lstm.train]
    epochs = 10
    lr = 0.0005

Unknown methods, hyper-parameters or training settings are errors, so a typo cannot be
silently ignored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunConfig:
    dataset: str = "default"  # a synthetic preset name or a store directory
    data_seed: int = 0  # seed of a synthetic store (the dataset, not the run)
    methods: list[str] | None = None  # None: every registered method
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    epochs: int | None = None  # overrides every method's epochs
    name: str | None = None  # results/<name>; default: the dataset's name
    config_file: str | None = None
    results_root: str = "results"
    train_split: str | None = None
    eval_split: str | None = None
    force: bool = False
    show_progress: bool = True
    jobs: int | None = None  # worker processes for the pairs; None: one per core on a CPU (benchmark/parallel.py)
    threads: int | None = None  # threads per pair; None: benchmark/parallel.py's DEFAULT_THREADS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_method_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read the per-method config file (``{}`` when there is none)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError as exc:  # Python 3.10
            raise ValueError(f"{path}: TOML config files need Python 3.11+; use JSON") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected one table (object) per method name")
    return data
