"""``python -m benchmark tune``: the same tuning effort for every method, on validation only.

Each method declares what may be tuned (``VideoMethod.search_space``: setting -> candidate
values). For every method, ``trials`` settings are tried: the first is the method's current
one (its defaults, preset and config file), the others are drawn without replacement from
the grid of its search space (seeded by ``--tune-seed`` and the method's name). Every trial
trains under the run's budget on the training split minus the held-out validation part,
and is scored on that validation part; the evaluation split is never loaded. The best trial
per method (highest mean validation mAP over the seeds; ties go to the earlier trial, so
the current setting wins a tie) is written as a config file that ``run --config`` takes.

Written under ``results/<name>/`` (default ``<dataset>-tune``): the trials as an ordinary
run (resumable), ``tune.md`` / ``tune.json`` (every trial, its settings and scores, the
command) and ``tuned.json`` (the chosen settings).
"""

from __future__ import annotations

import itertools
import sys
import zlib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.config import RunConfig
from benchmark.plans import MethodPlan, plan_methods
from benchmark.runner import Runner
from benchmark.stores import dataset_label, resolve_store
from datasets.common.atomic import atomic_write_json, atomic_write_text
from datasets.store.reader import FeatureStore
from methods.base import TrainConfig, VideoMethod
from methods.registry import display_name

TRAIN_PREFIX = "train."


def search_keys(cls: type[VideoMethod], space: dict[str, Any] | None = None) -> dict[str, str]:
    """Each key of ``space`` (default ``cls.search_space``) -> "hparam" or "train"; unknown keys
    are errors."""
    hparams = {f.name for f in fields(cls.Hparams)}
    train = {f.name for f in fields(TrainConfig)}
    kinds = {}
    for key, values in (cls.search_space if space is None else space).items():
        if key.startswith(TRAIN_PREFIX) and key[len(TRAIN_PREFIX):] in train:
            kinds[key] = "train"
        elif key in hparams:
            kinds[key] = "hparam"
        else:
            raise ValueError(f"{cls.name}.search_space: {key!r} is neither a hyper-parameter ({sorted(hparams)}) "
                             f"nor 'train.<setting>' ({sorted(train)})")
        if not isinstance(values, tuple | list) or not values:
            raise ValueError(f"{cls.name}.search_space[{key!r}] must be a non-empty tuple of candidate values")
    return kinds


def current_setting(plan: MethodPlan, space: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan's value of every searched key."""
    hparams, train = plan.full_hparams(), asdict(plan.train)
    return {key: train[key[len(TRAIN_PREFIX):]] if kind == "train" else hparams[key]
            for key, kind in search_keys(plan.cls, space).items()}


def trial_settings(plan: MethodPlan, trials: int, tune_seed: int,
                   space: dict[str, tuple[Any, ...]] | None = None) -> list[dict[str, Any]]:
    """The plan's current setting, then ``trials - 1`` others drawn from its grid (the
    method's ``search_space``, or ``space``)."""
    if trials < 1:
        raise ValueError(f"--trials {trials}: must be at least 1")
    space = plan.cls.search_space if space is None else space
    current = current_setting(plan, space)
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    others = [s for s in grid if s != current]
    rng = np.random.default_rng([tune_seed, zlib.crc32(plan.name.encode())])
    order = rng.permutation(len(others))
    if trials - 1 > len(others):
        raise ValueError(f"--trials {trials}: {plan.name}'s search space has only {len(others) + 1} settings")
    return [current] + [others[i] for i in order[: trials - 1]]


def apply_setting(plan: MethodPlan, setting: dict[str, Any], label: str, display: str) -> MethodPlan:
    kinds = search_keys(plan.cls, {k: (v,) for k, v in setting.items()})
    hparams = {**plan.hparams, **{k: v for k, v in setting.items() if kinds[k] == "hparam"}}
    train = replace(plan.train, **{k[len(TRAIN_PREFIX):]: v for k, v in setting.items() if kinds[k] == "train"})
    return MethodPlan(plan.spec, plan.cls, hparams, train, label=label, display=display)


def as_config(setting: dict[str, Any]) -> dict[str, Any]:
    """A setting as a method's table of the config file (benchmark/config.py)."""
    section: dict[str, Any] = {k: v for k, v in setting.items() if not k.startswith(TRAIN_PREFIX)}
    train = {k[len(TRAIN_PREFIX):]: v for k, v in setting.items() if k.startswith(TRAIN_PREFIX)}
    if train:
        section["train"] = train
    return section


@dataclass
class TuneResult:
    table: str
    config_path: Path
    best: dict[str, dict[str, Any]]


def tune(cfg: RunConfig, *, trials: int, tune_seed: int = 0, space: dict[str, list[Any]] | None = None) -> TuneResult:
    """Run the trials of every method of ``cfg``; write and return the chosen settings.

    ``space`` replaces every method's declared search space (e.g. to compare readings of one
    method: ``--space '{"penalty": ["video", "batch"]}'``)."""
    store = FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
    bases = plan_methods(cfg, store.manifest.name)
    searched: dict[str, tuple[Any, ...]] | None = None
    if space is not None:
        if not isinstance(space, dict) or not space:
            raise ValueError("--space must be a JSON object of setting -> list of candidate values")
        searched = {key: tuple(values) if isinstance(values, list) else values for key, values in space.items()}
    plans: list[MethodPlan] = []
    settings: dict[str, tuple[str, int, dict[str, Any]]] = {}
    for base in bases:
        for k, setting in enumerate(trial_settings(base, trials, tune_seed, searched)):
            label = f"{base.name}-trial{k}"
            settings[label] = (base.name, k, setting)
            shown = base.cls.shown_name()
            plans.append(apply_setting(base, setting, label, f"{shown} #{k}"))
    dataset = dataset_label(cfg.dataset, store)
    cfg = replace(cfg, methods=None, name=cfg.name or f"{dataset}-tune")
    runner = Runner(cfg, plans=plans, select_only=True)
    with runner.locked():  # the trials and tune.md/tuned.json are written under one lock
        runner.run(columns=["Method", "mAP (%)", "Top-1 (%)", "GFLOPs/video", "Fine frames/video"])
        records = runner.records()

        rows: list[dict[str, Any]] = []
        best: dict[str, dict[str, Any]] = {}
        for label, (method, k, setting) in settings.items():
            maps = [100 * r.map for r in records[label].values()]
            gflops = [r.gflops["mean"] for r in records[label].values()]
            rows.append({"method": method, "trial": k, "setting": setting, "validation_map": float(np.mean(maps)),
                         "validation_map_per_seed": maps, "gflops": float(np.mean(gflops))})
            if method not in best or rows[-1]["validation_map"] > best[method]["validation_map"]:
                best[method] = rows[-1]
        config = {method: as_config(row["setting"]) for method, row in best.items()}
        config_path = runner.out / "tuned.json"
        atomic_write_json(config_path, config)
        atomic_write_json(runner.out / "tune.json", {
            "command": "python -m benchmark " + " ".join(sys.argv[1:]) if sys.argv[1:] else None,
            "trials_per_method": trials, "tune_seed": tune_seed, "seeds": cfg.seeds,
            "search_spaces": {b.name: {k: list(v) for k, v in (searched or b.cls.search_space).items()} for b in bases},
            "selection": "highest mean validation mAP over seeds; ties: the earlier trial (trial 0 = current settings)",
            "validation": runner.validation_record(ids=False),
            "budget": runner.budget.to_dict(len(runner.held_out.train_rows)),
            "trials": rows, "chosen": config,
        })
        frame = pd.DataFrame([{
            "Method": display_name(r["method"]), "Trial": r["trial"],
            "Setting": ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["setting"].items()),
            "Validation mAP (%)": f"{r['validation_map']:.1f}", "GFLOPs/video": f"{r['gflops']:.1f}",
            "Chosen": "yes" if best[r["method"]] is r else "",
        } for r in rows])
        table = (frame.to_markdown(index=False, disable_numparse=True)
                 + f"\n\n{len(bases)} methods x {trials} trials, seeds {cfg.seeds}; "
                 + f"{runner.caption(with_differences=False)}\n")
        atomic_write_text(runner.out / "tune.md", table)
        return TuneResult(table=table, config_path=config_path, best=config)
