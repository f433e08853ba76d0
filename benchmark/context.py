"""A run's fixed facts, gathered once and handed to whoever needs them.

``RunContext.create(cfg)`` opens the store (generating a preset on first use), picks the
splits, carves the held-out validation part, plans the methods, chooses the device, counts
the per-frame backbone costs with ptflops, hashes the dataset and reads the package versions,
once; the git state is read afresh for every record that names it (``Environment``). The pair
(benchmark/pair.py), the summary (benchmark/folder_summary.py), the scheduler (benchmark/runner.py,
benchmark/parallel.py) and the commands built on a run (tune, ablate, online, latency) all take
the context; none of them re-opens or re-plans.

A *selection run* (``cfg.selection``: ``benchmark tune``) scores its pairs on the held-out
validation part: its context never names the evaluation split (``eval_split`` is None), and
``guard()`` keeps every bank of another split than the training split from loading while the
run runs, here and in its workers (datasets/loading/guard.py).
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator, MutableMapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import provenance, results
from benchmark.code_fingerprint import code_fingerprint
from benchmark.config import RunConfig
from benchmark.measurement import costs, evidence
from benchmark.plans import MethodPlan, plan_methods
from benchmark.precision import DEFAULT as DEFAULT_PRECISION
from benchmark.protocol import selection
from benchmark.protocol.splits import HeldOut, carve_validation
from benchmark.stores import (
    EVAL_SPLITS,
    TRAIN_SPLITS,
    dataset_fingerprint,
    dataset_label,
    method_dims,
    pick_split,
    resolve_store,
)
from benchmark.training import Evaluation
from datasets.common.errors import UsageError
from datasets.loading.bank import FeatureBank
from datasets.loading.device import resolve_device
from datasets.loading.guard import only_splits
from datasets.store.reader import FeatureStore
from methods.base import VideoMethod

#: Why a selection run may load only the training split (the guard's one line says it).
SELECTION_GUARD = ("a selection run (python -m benchmark tune) scores its trials on the held-out part of the training "
                   "split only")


class Environment(MutableMapping[str, Any]):
    """What a record says it was computed with: the package versions and the device, fixed for a
    run, and ``"git"``, the checkout's commit and whether its code differed from it, read each time
    it is asked for. A pair's record thus states the checkout at the moment that pair was computed,
    not when its run (or worker) began (issue 44: six pairs of results/default said ``dirty: false``
    although their method files then differed from the recorded commit)."""

    GIT = "git"

    def __init__(self, fixed: dict[str, Any]) -> None:
        self._fixed = dict(fixed)

    def __getitem__(self, key: str) -> Any:
        return provenance.git_state() if key == self.GIT else self._fixed[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == self.GIT:
            raise KeyError("the git state is read when asked for, never set")
        self._fixed[key] = value

    def __delitem__(self, key: str) -> None:
        del self._fixed[key]

    def __iter__(self) -> Iterator[str]:
        return iter([self.GIT, *self._fixed])

    def __len__(self) -> int:
        return len(self._fixed) + 1


@dataclass
class RunContext:
    """Everything a run's pairs share (see the module docstring)."""

    cfg: RunConfig
    store: FeatureStore
    plans: list[MethodPlan]
    train_split: str
    eval_split: str | None  # None: a selection run, which never names the evaluation split
    train_ids: list[str]
    held_out: HeldOut
    device: torch.device
    out: Path  # the results folder
    streams: list[str]  # the union of the methods' streams: what the banks load
    per_frame: dict[str, float]  # GMACs per frame of each stream
    fingerprint: str  # of the dataset
    environment: Environment  # git (read when asked), package versions, device
    platform: dict[str, Any]  # what must agree for two results to be bit-identical
    validation_counts: np.ndarray  # the paired resamples of the validation videos (selection)
    # Plug-ins that failed the conformance check and were trained under --unchecked: name -> what failed.
    unchecked: dict[str, str] = field(default_factory=dict)
    _banks: dict[str, FeatureBank] = field(default_factory=dict, repr=False)
    _evidence: dict[tuple[str, ...], np.ndarray | None] = field(default_factory=dict, repr=False)
    _code: dict[type, dict[str, Any]] = field(default_factory=dict, repr=False)
    _step_costs: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, cfg: RunConfig, plans: list[MethodPlan] | None = None, *,
               store: FeatureStore | None = None) -> RunContext:
        """The context of ``cfg``, with ``plans`` (default: the config's methods) and the store
        already opened by the caller, if any."""
        store = store or FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
        train_split = pick_split(store, cfg.train_split, TRAIN_SPLITS, "train")
        eval_split = None
        if cfg.selection:
            if train_split in EVAL_SPLITS:  # its validation part would be carved out of what tables evaluate on
                raise UsageError(f"--train-split {train_split}: a table evaluates on {train_split!r}, and a selection "
                                 "run (tune) never trains or selects on what a table evaluates on; leave "
                                 "--train-split out to choose on the training split")
        else:
            eval_split = pick_split(store, cfg.eval_split, EVAL_SPLITS, "eval")
            if eval_split == train_split:
                asked = "--train-split" if cfg.train_split is not None and cfg.eval_split is None else "--eval-split"
                raise UsageError(f"{asked} {eval_split!r}: the training and evaluation splits are both "
                                 f"{eval_split!r}; a model is never evaluated on what it trained on. Name "
                                 "different ones with --train-split and --eval-split")
        train_rows = store.split_rows(train_split)
        held_out = carve_validation(store.header.labels[train_rows], cfg.val_fraction, cfg.val_seed)
        plans = plans if plans is not None else plan_methods(cfg, store.manifest.name)
        streams = sorted({s for p in plans for s in p.cls.streams})
        device = resolve_device(cfg.device)
        environment = Environment({"versions": provenance.package_versions(), "device": provenance.device_info(device)})
        return cls(
            cfg=cfg, store=store, plans=plans, train_split=train_split, eval_split=eval_split,
            train_ids=store.header.video_ids[train_rows].tolist(), held_out=held_out, device=device,
            out=Path(cfg.results_root) / (cfg.name or dataset_label(cfg.dataset, store)), streams=streams,
            per_frame=costs.frame_costs(store.manifest, streams),
            fingerprint=dataset_fingerprint(store),  # constant over a run; it hashes every per-video array
            environment=environment,
            platform=provenance.platform_key(environment["device"], environment["versions"]),
            validation_counts=selection.resample_counts(len(held_out.val_rows)),
        )

    def use_device(self, device: torch.device) -> None:
        """Compute on ``device`` from now on (a torchrun rank's own GPU); banks are loaded anew."""
        self.device = device
        self.environment["device"] = provenance.device_info(device)
        self.platform = provenance.platform_key(self.environment["device"], self.environment["versions"])
        self._banks.clear()

    # ------------------------------------------------------------------ what the run is
    @property
    def selection(self) -> bool:
        return self.cfg.selection

    @property
    def scored_on(self) -> str:
        """What each pair's numbers are computed on: the evaluation split, or "validation"."""
        return "validation" if self.eval_split is None else self.eval_split

    @property
    def unused_splits(self) -> dict[str, int]:
        """The store's labelled splits a table neither trains nor evaluates on, with their sizes (a
        ``val`` split of a user's store: selection is on the part carved from the training split,
        the same for every store, so it would be left out without a word; the caption says so)."""
        if self.eval_split is None:  # a selection run: the splits it leaves alone are the point
            return {}
        return {name: spec.num_videos for name, spec in self.store.manifest.splits.items()
                if spec.labelled and name not in (self.train_split, self.eval_split)}

    def guard(self) -> Any:
        """While a selection run runs, only the training split may be loaded in this process
        (datasets/loading/guard.py); a run for the table is not restricted."""
        if not self.selection:
            return contextlib.nullcontext()
        return only_splits({self.train_split}, SELECTION_GUARD)

    def pair_dir(self, plan: MethodPlan, seed: int) -> Path:
        return results.pair_dir(self.out, plan.name, seed)

    def identity(self, plan: MethodPlan, seed: int) -> dict[str, Any]:
        """What a result depends on; a stored result with another identity is not reused."""
        return {
            "method": plan.name,
            "class": f"{plan.cls.__module__}:{plan.cls.__qualname__}",
            "hparams": plan.full_hparams(),
            "train": asdict(plan.train),
            "budget": self.cfg.budget.to_dict(len(self.held_out.train_rows)),
            "seed": seed,
            "dataset": {"name": self.store.manifest.name, "fingerprint": self.fingerprint},
            "train_split": self.train_split,
            "validation": self.validation_record(ids=False),
            "eval_split": self.scored_on,
            "streams": list(plan.cls.streams),  # the method's own, not the run's union
            "precision": self.cfg.precision,
        }

    def identity_difference(self, plan: MethodPlan, seed: int, stored: dict[str, Any] | None) -> str:
        """How a pair's stored config.json differs from this plan's identity, as "field: this
        command's value, the pair's value" for the first field that differs; "" when it does not.
        A hyper-parameter added to a method after the pair was computed is read as the value the
        pair was computed with: the one it had before (``added(default, before=...)``), else its
        default, which then keeps the method's behaviour; an older result is neither refused for
        not naming it nor taken for a result of a new behaviour."""
        if not isinstance(stored, dict):
            return "the pair's config.json is missing or unreadable"
        current = json.loads(json.dumps(self.identity(plan, seed)))
        # What a record that lacks a setting was computed with: its value before it was added
        # (methods/base.py ``added``), else its default.
        implied = json.loads(json.dumps({f.name: f.metadata.get("before", f.default) for f in fields(plan.cls.Hparams)
                                         if f.default is not MISSING}))
        hparams = dict(stored.get("hparams") or {})
        for key, value in implied.items():
            hparams.setdefault(key, value)
        # A pair from before precisions were recorded was computed in float32.
        return _first_difference(current, {"precision": DEFAULT_PRECISION, **stored, "hparams": hparams})

    def validation_record(self, *, ids: bool) -> dict[str, Any]:
        """The held-out part of the training split (its ids only where asked: provenance)."""
        record: dict[str, Any] = {
            "fraction": self.held_out.fraction, "seed": self.held_out.seed, "num_videos": len(self.held_out.val_rows),
            "num_train_videos": len(self.held_out.train_rows), "ids_sha256": self.held_out.digest(self.train_ids),
            "stratified_by": "first label",
        }
        if ids:
            record["video_ids"] = self.held_out.val_ids(self.train_ids)
        return record

    def command(self) -> str:
        """The ``run`` command line that writes this results folder (for hints)."""
        parts = ["python -m benchmark run"]
        if self.cfg.dataset != "default":
            parts.append(f"--dataset {self.cfg.dataset}")
        if self.cfg.name:
            parts.append(f"--name {self.cfg.name}")
        if self.cfg.results_root != "results":
            parts.append(f"--results-dir {self.cfg.results_root}")
        if self.cfg.config_file:
            parts.append(f"--config {self.cfg.config_file}")
        if self.cfg.overrides:
            parts.append("--set " + " ".join(shlex.quote(item) for item in self.cfg.overrides))
        return " ".join(parts)

    # ------------------------------------------------------------------ shared, computed once
    def bank(self, split: str | None) -> FeatureBank:
        """Each split is loaded once and shared by every method of the run."""
        if split is None:
            raise UsageError("a selection run (python -m benchmark tune) has no evaluation split to load; evaluate "
                             "with `python -m benchmark run`")
        if split not in self._banks:
            self._banks[split] = FeatureBank(self.store, split, device=self.device, streams=self.streams,
                                             show_progress=self.cfg.show_progress)
        return self._banks[split]

    def bank_bytes(self) -> int:
        """Host bytes of the run's banks (what each worker process loads)."""
        header, manifest = self.store.header, self.store.manifest
        splits = {self.train_split} if self.eval_split is None else {self.train_split, self.eval_split}
        frames = sum(int(header.lengths[self.store.split_rows(s)].sum()) for s in splits)
        return frames * sum(2 * manifest.streams[s].dim for s in self.streams)

    def evidence(self, video_ids: list[str]) -> np.ndarray | None:
        """The synthetic ground truth of ``video_ids``' frames (None for real data), read once."""
        key = tuple(video_ids)
        if key not in self._evidence:
            self._evidence[key] = evidence.store_evidence(self.store, video_ids)
        return self._evidence[key]

    def code(self, plan: MethodPlan) -> dict[str, Any]:
        """The code fingerprint of the plan's method and the harness (benchmark/code_fingerprint.py)."""
        if plan.cls not in self._code:
            self._code[plan.cls] = code_fingerprint(plan.cls)
        return self._code[plan.cls]

    def build(self, plan: MethodPlan) -> VideoMethod:
        """A fresh (untrained) instance of the plan's method on the run's device."""
        method = plan.cls(len(self.store.manifest.classes), method_dims(self.store, plan.cls),
                          **plan.hparams).to(self.device)
        method.frame_gmacs = {s: self.per_frame[s] for s in plan.cls.streams}
        return method

    def step_costs(self, plan: MethodPlan) -> dict[str, float]:
        """GMACs per run of each of the plan's modules, counted once per plan on an instance of
        its own (they depend on its settings, not on the weights); called before a pair seeds its
        generators, so counting never shifts the pair's random numbers."""
        if plan.name not in self._step_costs:
            self._step_costs[plan.name] = costs.step_costs(self.build(plan))
        return self._step_costs[plan.name]

    def gmacs(self, plan: MethodPlan, result: Evaluation, per_step: dict[str, float]) -> np.ndarray:
        """Per-video cost of an evaluation: the method's own streams, from the meter."""
        frames = {s: result.frames_read[s] for s in plan.cls.streams}
        return costs.video_gmacs(frames, result.step_counts, self.per_frame, per_step)


def _first_difference(current: Any, stored: Any, path: str = "") -> str:
    """The first field where two identities differ, as "field: this command's value, the pair's"."""
    if isinstance(current, dict) and isinstance(stored, dict):
        for key in sorted(set(current) | set(stored), key=str):
            found = _first_difference(current.get(key), stored.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return ""
    if current != stored:
        return f"{path}: this command {current!r}, the pair {stored!r}"
    return ""
