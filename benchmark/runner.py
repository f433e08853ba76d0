"""The main job: train and evaluate methods on a dataset and write the comparison table.

The layout of ``results/<run name>/`` is described in benchmark/results.py.

A run holds the folder's lock (benchmark/results.py). An interrupted run started again keeps
every complete pair computed with the same config on the same kind of machine (results from
another machine are recomputed and compared, never silently reused) and computes the rest;
``force`` redoes every pair. Every file is written atomically; docs/guarantees.md lists what a
run promises and the tests that check it.

Model selection never reads the evaluation split: each method trains on the training split
minus a held-out validation part (benchmark/splits.py), keeps the checkpoint the selection rule
chooses on it (benchmark/selection.py) within the run's budget (benchmark/budget.py), and is
evaluated once, at the end. A *selection run* (``RunConfig.selection``: ``benchmark tune``)
scores its trials on that validation part instead: it never names the evaluation split, and
while it runs, here, in its worker processes and on its torchrun ranks, no bank of another split
than the training split can be loaded (datasets/loading/guard.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import (
    bootstrap,
    costs,
    evidence,
    metrics,
    parallel,
    preset_origin,
    provenance,
    reference,
    results,
    selection,
    tables,
)
from benchmark.code_fingerprint import code_fingerprint, stale_reason
from benchmark.config import RunConfig
from benchmark.plans import MethodPlan, plan_methods
from benchmark.record import GFLOPS_UNIT, PairRecord
from benchmark.splits import carve_validation
from benchmark.stores import EVAL_SPLITS, TRAIN_SPLITS, dataset_fingerprint, dataset_label, pick_split, resolve_store
from benchmark.training import Evaluation, TrainStats, evaluate, fit, seed_everything
from datasets.common.atomic import atomic_write_bytes, atomic_write_json, json_text
from datasets.common.distributed import barrier, distributed_rank, finish, rank_device
from datasets.common.errors import UsageError
from datasets.loading.bank import FeatureBank
from datasets.loading.device import resolve_device
from datasets.loading.guard import only_splits
from datasets.store.reader import FeatureStore
from methods.base import VideoMethod

log = logging.getLogger(__name__)

#: Why a selection run may load only the training split (the guard's one line says it).
SELECTION_GUARD = ("a selection run (python -m benchmark tune) scores its trials on the held-out part of the training "
                   "split only")


class Runner:
    """Runs one configuration end to end; see the module docstring for what it writes."""

    def __init__(self, cfg: RunConfig, plans: list[MethodPlan] | None = None) -> None:
        """With ``cfg.selection`` (``benchmark tune``) each trained model is scored on the
        validation rows, and the evaluation split is neither named (``eval_split`` is None)
        nor loadable while the run runs."""
        self.cfg = cfg
        self.selection = cfg.selection
        self.store = FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
        self.train_split = pick_split(self.store, cfg.train_split, TRAIN_SPLITS, "train")
        self.eval_split: str | None = None
        if not self.selection:
            self.eval_split = pick_split(self.store, cfg.eval_split, EVAL_SPLITS, "eval")
            if self.eval_split == self.train_split:
                asked = "--train-split" if cfg.train_split is not None and cfg.eval_split is None else "--eval-split"
                raise UsageError(f"{asked} {self.eval_split!r}: the training and evaluation splits are both "
                                 f"{self.eval_split!r}; a model is never evaluated on what it trained on. Name "
                                 "different ones with --train-split and --eval-split")
        train_rows = self.store.split_rows(self.train_split)
        self.train_ids: list[str] = self.store.header.video_ids[train_rows].tolist()
        self.held_out = carve_validation(self.store.header.labels[train_rows], cfg.val_fraction, cfg.val_seed)
        self.validation_counts = selection.resample_counts(len(self.held_out.val_rows))  # paired resamples
        self.budget = cfg.budget
        self.plans = plans if plans is not None else plan_methods(cfg, self.store.manifest.name)
        self.device = resolve_device(cfg.device)
        name = cfg.name or dataset_label(cfg.dataset, self.store)
        self.out = Path(cfg.results_root) / name
        self.streams = sorted({s for p in self.plans for s in p.cls.streams})
        self.per_frame = costs.frame_costs(self.store.manifest, self.streams)
        # Constant over a run, so computed once (the fingerprint hashes every per-video array).
        self.fingerprint = dataset_fingerprint(self.store)
        self.environment = {"git": provenance.git_state(), "versions": provenance.package_versions(),
                            "device": provenance.device_info(self.device)}
        self.platform = provenance.platform_key(self.environment["device"], self.environment["versions"])
        self._banks: dict[str, FeatureBank] = {}
        self._evidence: dict[tuple[str, ...], np.ndarray | None] = {}
        self._code: dict[type, dict[str, Any]] = {}
        self._step_costs: dict[str, dict[str, float]] = {}
        # Called before a pair's files are written: a worker process checks that the run holding the
        # folder's lock is still there (benchmark/parallel.py).
        self.before_write: Callable[[], None] = lambda: None
        self.execution: dict[str, Any] = {}  # how the last run() computed its pairs (benchmark/parallel.py)
        self._lock_depth = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the results folder's lock (benchmark/results.py); re-entrant within a Runner."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        with results.folder_lock(self.out):
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0

    # ------------------------------------------------------------------ helpers
    def bank(self, split: str | None) -> FeatureBank:
        """Each split is loaded once and shared by every method of the run."""
        if split is None:
            raise UsageError("a selection run (python -m benchmark tune) has no evaluation split to load; evaluate "
                             "with `python -m benchmark run`")
        if split not in self._banks:
            self._banks[split] = FeatureBank(self.store, split, device=self.device, streams=self.streams,
                                             show_progress=self.cfg.show_progress)
        return self._banks[split]

    def pair_dir(self, plan: MethodPlan, seed: int) -> Path:
        return results.pair_dir(self.out, plan.name, seed)

    def identity(self, plan: MethodPlan, seed: int) -> dict[str, Any]:
        """What a result depends on; a stored result with another identity is not reused."""
        return {
            "method": plan.name,
            "class": f"{plan.cls.__module__}:{plan.cls.__qualname__}",
            "hparams": plan.full_hparams(),
            "train": asdict(plan.train),
            "budget": self.budget.to_dict(len(self.held_out.train_rows)),
            "seed": seed,
            "dataset": {"name": self.store.manifest.name, "fingerprint": self.fingerprint},
            "train_split": self.train_split,
            "validation": self.validation_record(ids=False),
            "eval_split": self.scored_on,
            "streams": list(plan.cls.streams),  # the method's own, not the run's union
        }

    @property
    def scored_on(self) -> str:
        """What each pair's numbers are computed on: the evaluation split, or "validation"."""
        return "validation" if self.eval_split is None else self.eval_split

    def guard(self) -> Any:
        """While a selection run runs, only the training split may be loaded in this process
        (datasets/loading/guard.py); a run for the table is not restricted."""
        if not self.selection:
            return contextlib.nullcontext()
        return only_splits({self.train_split}, SELECTION_GUARD)

    def code(self, plan: MethodPlan) -> dict[str, Any]:
        """The code fingerprint of the plan's method and the harness (benchmark/code_fingerprint.py)."""
        if plan.cls not in self._code:
            self._code[plan.cls] = code_fingerprint(plan.cls)
        return self._code[plan.cls]

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

    def is_done(self, plan: MethodPlan, seed: int) -> bool:
        """Complete (every file there and consistent), computed with this configuration on this
        kind of machine, and no --force. Anything incomplete is computed again."""
        folder = self.pair_dir(plan, seed)
        state = results.pair_state(folder)
        if not state.done:
            if state.reason != "not computed":
                log.warning("%s seed %d: %s in %s; computing it again", plan.name, seed, state.reason, folder)
            return False
        if state.config != json.loads(json.dumps(self.identity(plan, seed))):
            if self.cfg.force:
                return False
            raise UsageError(
                f"{folder} holds a result computed with a different configuration. Re-run with --force to "
                "replace it, or choose another --name"
            )
        if reference.computed_elsewhere(folder, self.platform):
            log.warning("%s seed %d: the result in %s was computed on another kind of machine; recomputing it here "
                        "(%s), then comparing", plan.name, seed, folder, self.platform)
            return False
        if self.cfg.force:
            return False
        stale = stale_reason(PairRecord.load(folder / results.DONE_MARKER).code)
        if stale:
            log.warning("%s seed %d: kept, but STALE: %s. Its row is marked stale; recompute it with --force",
                        plan.name, seed, stale)
        return True

    def build(self, plan: MethodPlan) -> VideoMethod:
        """A fresh (untrained) instance of the plan's method on the run's device."""
        dims = {s: self.store.manifest.streams[s].dim for s in self.streams}
        method = plan.cls(len(self.store.manifest.classes), dims, **plan.hparams).to(self.device)
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

    def command(self) -> str:
        """The ``run`` command line that writes this runner's results folder (for hints)."""
        parts = ["python -m benchmark run"]
        if self.cfg.dataset != "default":
            parts.append(f"--dataset {self.cfg.dataset}")
        if self.cfg.name:
            parts.append(f"--name {self.cfg.name}")
        if self.cfg.results_root != "results":
            parts.append(f"--results-dir {self.cfg.results_root}")
        if self.cfg.config_file:
            parts.append(f"--config {self.cfg.config_file}")
        return " ".join(parts)

    def load_trained(self, plan: MethodPlan, seed: int) -> VideoMethod:
        """The method trained by an earlier ``run`` with this configuration (no training here)."""
        folder = self.pair_dir(plan, seed)
        retrain = f"`{self.command()} --methods {plan.spec} --seeds {seed}` (with this command's budget flags)"
        state = results.pair_state(folder)
        if not state.done:
            raise FileNotFoundError(
                f"{folder}: no complete trained {plan.name} (seed {seed}) here ({state.reason}). "
                f"Train it with {retrain}")
        if state.config != json.loads(json.dumps(self.identity(plan, seed))):
            raise UsageError(
                f"{folder} was trained with a different configuration than this command asks for; pass the same "
                "--dataset/--config/--epochs/--name as the run that trained it"
            )
        method = self.build(plan)
        method.load_state_dict(results.load_weights(folder, self.device))
        return method.eval()

    # ------------------------------------------------------------------ one pair
    def evidence(self, video_ids: list[str]) -> np.ndarray | None:
        """The synthetic ground truth of ``video_ids``' frames (None for real data), read once."""
        key = tuple(video_ids)
        if key not in self._evidence:
            self._evidence[key] = evidence.store_evidence(self.store, video_ids)
        return self._evidence[key]

    def validation_candidate(self, plan: MethodPlan, method: VideoMethod, per_step: dict[str, float],
                             key: Any) -> selection.Candidate:
        """A checkpoint scored on the held-out validation rows of the training split (model
        selection, benchmark/selection.py): its mAP, resampled mAPs and mean GFLOPs there."""
        result = evaluate(method, self.bank(self.train_split), plan.train.eval_batch_size, rows=self.held_out.val_rows,
                          show_progress=False)
        return selection.candidate(key, result.scores, result.labels, float(self.gmacs(plan, result, per_step).mean()),
                                   self.validation_counts)

    def train_pair(self, plan: MethodPlan, seed: int) -> tuple[VideoMethod, TrainStats]:
        """Train and select one method on the training split alone (never the evaluation split)."""
        per_step = self.step_costs(plan)
        seed_everything(seed)
        method = self.build(plan)
        log.info("%s seed %d: training (%s, %s)", plan.name, seed, plan.train, self.budget)
        stats = fit(method, self.bank(self.train_split), plan.train, self.budget, seed=seed,
                    rows=self.held_out.train_rows,
                    validate=lambda m, step: self.validation_candidate(plan, m, per_step, step),
                    show_progress=self.cfg.show_progress)
        return method, stats

    def run_pair(self, plan: MethodPlan, seed: int) -> PairRecord:
        method, stats = self.train_pair(plan, seed)
        per_step = self.step_costs(plan)
        if self.eval_split is None:  # a selection run: the validation rows, never the evaluation split
            eval_bank, rows = self.bank(self.train_split), self.held_out.val_rows
        else:
            eval_bank, rows = self.bank(self.eval_split), None  # touched once, here
        result = evaluate(method, eval_bank, plan.train.eval_batch_size, rows=rows,
                          show_progress=self.cfg.show_progress)
        frames = {s: result.frames_read[s] for s in plan.cls.streams}
        gmacs = self.gmacs(plan, result, per_step)
        scored = metrics.score(result.scores, result.labels)
        classes = eval_bank.class_names
        ground_truth = self.evidence(result.video_ids)
        reads_vs_evidence = (
            evidence.read_statistics(result.read_masks["fine"], ground_truth, result.lengths)
            if ground_truth is not None and "fine" in plan.cls.streams else None
        )
        record = PairRecord(
            method=plan.name,
            seed=seed,
            online=plan.cls.online,
            evaluated_on=self.scored_on,
            map=scored.map,
            map_interpolated=scored.map_interpolated,
            top1=scored.top1,
            classes_without_positives=[classes[c] for c in scored.classes_without_positives],
            per_class_ap=dict(zip(classes, scored.per_class_ap)),
            gflops=costs.distribution(gmacs),
            gflops_unit=GFLOPS_UNIT,
            per_frame_gmacs={s: self.per_frame[s] for s in plan.cls.streams},
            per_step_gmacs=per_step,
            frames_read={s: costs.distribution(v) for s, v in frames.items()},
            steps={k: costs.distribution(v) for k, v in result.step_counts.items()},
            # Synthetic stores only: where the fine reads land against the evidence frames.
            fine_reads_vs_evidence=reads_vs_evidence,
            params=int(sum(p.numel() for p in method.parameters() if p.requires_grad)),
            train_seconds=stats.seconds,
            train_steps=stats.steps,
            budget_steps=stats.budget_steps,
            epochs=stats.epochs,
            selection=stats.selection_record(),
            final_train_loss=stats.final_loss,
            train_history=stats.history,
            eval_seconds=result.seconds,
            eval_videos_per_second=len(result.video_ids) / max(result.seconds, 1e-9),
            num_eval_videos=len(result.video_ids),
            hparams=method.hparams(),
            train=asdict(plan.train),
            # Where and with what this pair was computed (a resumed run keeps older pairs); the
            # thread count is this pair's own (it fixes the floating-point results on a CPU).
            computed={
                "at": provenance.now(),
                **self.environment,
                "device": {**self.environment["device"], "torch_threads": torch.get_num_threads()},
                "platform": self.platform,
            },
            code=self.code(plan),
        )
        buffer = io.BytesIO()
        arrays = {"video_ids": np.asarray(result.video_ids), "scores": result.scores, "labels": result.labels,
                  "gmacs": gmacs, "class_names": np.asarray(classes),
                  **{f"frames_read_{s}": v for s, v in result.frames_read.items()},
                  **{f"steps_{k}": v for k, v in result.step_counts.items()}}
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
        files = {results.CONFIG: json_text(self.identity(plan, seed)).encode(), results.SCORES: buffer.getvalue()}
        buffer = io.BytesIO()
        torch.save(method.state_dict(), buffer)
        files[results.WEIGHTS] = buffer.getvalue()
        if result.diagnostics:
            files[results.DIAGNOSTICS] = results.pack_diagnostics(result.video_ids, result.diagnostics)
        folder = self.pair_dir(plan, seed)
        self.before_write()
        results.start_pair(folder)  # not done from here until metrics.json is back
        for name, data in files.items():
            atomic_write_bytes(folder / name, data)
        record.files = {name: results.sha256_bytes(data) for name, data in files.items()}
        record.save(folder / results.DONE_MARKER)  # last: marks the pair as done
        return record

    # ------------------------------------------------------------------ whole run
    def run(self, columns: list[str] | None = None) -> dict[str, str]:
        """Compute what is missing, then write metrics, provenance and the table.

        Pending pairs run here, in ``--jobs`` worker processes, or spread over torchrun's
        ranks (benchmark/parallel.py); rank 0 writes the table once all are done, and the
        other ranks return an empty dict. Where results were already here, the texts also
        hold "reference_check": how the recomputed ones compare (benchmark/reference.py)."""
        rank, world, local_rank, started_group = distributed_rank()
        with self.guard():
            if rank != 0:
                return self._run(columns, rank, world, local_rank, started_group)
            with self.locked():  # one writer per results folder; also proves it writable before training
                return self._run(columns, rank, world, local_rank, started_group)

    def _run(self, columns: list[str] | None, rank: int, world: int, local_rank: int,
             started_group: bool) -> dict[str, str]:
        if world > 1:
            self.device = rank_device(self.cfg.device, local_rank)
            self.environment["device"] = provenance.device_info(self.device)
            self.platform = provenance.platform_key(self.environment["device"], self.environment["versions"])
        try:
            pending, foreign = [], False
            for index, plan in enumerate(self.plans):
                for seed in self.cfg.seeds:
                    if self.is_done(plan, seed):
                        log.info("%s seed %d: done already (%s), kept", plan.name, seed, self.pair_dir(plan, seed))
                    else:
                        pending.append((index, seed))
                        foreign = foreign or reference.computed_elsewhere(self.pair_dir(plan, seed), self.platform)
            earlier = reference.load(self.out) if pending and rank == 0 and not self.selection else None
            if earlier is not None and foreign:
                reference.keep(self.out, earlier)  # a resumed run still compares with the same reference
            if world > 1:
                barrier()  # every rank has seen the same pending pairs before any is written
            self.execution = parallel.schedule(self, pending, jobs=self.cfg.jobs, threads=self.cfg.threads,
                                               bytes_per_worker=self.bank_bytes(), rank=rank, world=world)
            if world > 1:
                barrier()
                if rank != 0:
                    return {}
            if self.cfg.reread_evidence:
                self.reread_evidence()
            texts = self.write_results(columns)
            if earlier is not None:
                check = reference.compare(earlier, json.loads((self.out / results.SUMMARY).read_text()),
                                          self.fingerprint)
                if foreign:
                    atomic_write_json(self.out / results.CROSSCHECK, check)
                texts["reference_check"] = reference.describe(check)
            return texts
        finally:
            finish(started_group)

    def reread_evidence(self) -> None:
        """Recompute every pair's ``fine_reads_vs_evidence`` (benchmark/evidence.py) from its saved
        model, for results written before the statistic's current definition.

        Each model is evaluated again on the evaluation split (evaluation is deterministic);
        the frames it reads must equal, video by video, the fine frames its saved scores.npz
        records, else nothing is changed and the run stops. Only that entry of the pair's
        metrics.json is replaced (atomically), with a note of when and by which commit."""
        for plan in self.plans:
            if "fine" not in plan.cls.streams:
                continue
            for seed in self.cfg.seeds:
                folder = self.pair_dir(plan, seed)
                method = self.load_trained(plan, seed)
                result = evaluate(method, self.bank(self.eval_split), plan.train.eval_batch_size,
                                  show_progress=self.cfg.show_progress, desc=f"re-read {plan.name} seed {seed}")
                with np.load(folder / results.SCORES) as saved:
                    same = (saved["video_ids"].tolist() == result.video_ids
                            and np.array_equal(saved["frames_read_fine"], result.frames_read["fine"]))
                if not same:
                    raise RuntimeError(f"{folder}: evaluating the saved model again read other fine frames than the "
                                       "saved result records; its evidence statistics were left as they were")
                ground_truth = self.evidence(result.video_ids)
                if ground_truth is None:
                    raise UsageError(f"--reread-evidence: {self.store.path} has no ground truth of evidence frames "
                                     "(only synthetic stores have one)")
                record = PairRecord.load(folder / results.DONE_MARKER)
                record.fine_reads_vs_evidence = evidence.read_statistics(result.read_masks["fine"], ground_truth,
                                                                         result.lengths)
                record.extra["fine_reads_vs_evidence_recomputed"] = {
                    "at": provenance.now(), "commit": self.environment["git"].get("commit"),
                    "how": "python -m benchmark ... --reread-evidence: the saved model evaluated again; its fine "
                           "reads equal the saved frames_read_fine video by video"}
                record.save(folder / results.DONE_MARKER)
                lift = record.evidence_lift
                log.info("%s seed %d: evidence statistics recomputed (lift %.2f)", plan.name, seed,
                         float("nan") if lift is None else lift)

    def bank_bytes(self) -> int:
        """Host bytes of the run's banks (what each worker process loads)."""
        header, manifest = self.store.header, self.store.manifest
        splits = {self.train_split} if self.eval_split is None else {self.train_split, self.eval_split}
        frames = sum(int(header.lengths[self.store.split_rows(s)].sum()) for s in splits)
        return frames * sum(2 * manifest.streams[s].dim for s in self.streams)

    def records(self) -> dict[str, dict[str, PairRecord]]:
        """Every pair's saved record, by method and seed."""
        records: dict[str, dict[str, PairRecord]] = {}
        for plan in self.plans:
            for seed in self.cfg.seeds:
                folder = self.pair_dir(plan, seed)
                if not (folder / results.DONE_MARKER).is_file():
                    raise RuntimeError(f"{folder}: no {results.DONE_MARKER} after the pair was computed")
                records.setdefault(plan.name, {})[str(seed)] = PairRecord.load(folder / results.DONE_MARKER)
        return records

    def other_pairs(self) -> tuple[dict[str, dict[str, PairRecord]], dict[str, str]]:
        """Pairs in the folder that this invocation did not ask for (e.g. an earlier run with
        other --methods): the methods to tabulate too (every seed of this run there, complete,
        computed with the same dataset, split, validation part and budget) and, for the rest,
        why they are left out. The table of a folder thus covers every pair in it or says
        which it leaves out, and never shrinks silently to the last command's methods."""
        asked = {(p.name, seed) for p in self.plans for seed in self.cfg.seeds}
        found: dict[str, list[int]] = {}
        for name, seed in results.pairs_on_disk(self.out):
            if (name, seed) not in asked:
                found.setdefault(name, []).append(seed)
        shared = ("dataset", "train_split", "validation", "eval_split", "budget")
        reference_identity = self.identity(self.plans[0], self.cfg.seeds[0]) if self.plans else {}
        reference_shared = json.loads(json.dumps({k: reference_identity.get(k) for k in shared}))
        include: dict[str, dict[str, PairRecord]] = {}
        left_out: dict[str, str] = {}
        for name, seeds in sorted(found.items()):
            label = f"{name} (seeds {', '.join(map(str, sorted(seeds)))})"
            if name in {p.name for p in self.plans}:
                left_out[label] = f"seeds outside this run's {self.cfg.seeds}"
                continue
            missing = [s for s in self.cfg.seeds if s not in seeds]
            if missing:
                left_out[label] = f"no result for seed(s) {missing} of this run"
                continue
            records, reason = {}, ""
            for seed in self.cfg.seeds:
                folder = results.pair_dir(self.out, name, seed)
                state = results.pair_state(folder)
                if not state.done:
                    reason = f"seed {seed}: {state.reason}"
                    break
                differing = [k for k in shared if (state.config or {}).get(k) != reference_shared[k]]
                if differing:
                    reason = f"computed with another {', '.join(differing)}"
                    break
                records[str(seed)] = PairRecord.load(folder / results.DONE_MARKER)
            if reason:
                left_out[label] = reason
            else:
                include[name] = records
        return include, left_out

    def differences(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each method's mAP difference to the table's baseline with its paired bootstrap
        interval over the evaluated videos, seeds pooled (benchmark/bootstrap.py)."""
        names = names if names is not None else [p.name for p in self.plans]
        if tables.BASELINE not in names or self.selection:
            return {}
        per_method: dict[str, np.ndarray] = {}
        labels: np.ndarray | None = None
        ids: np.ndarray | None = None
        for name in names:
            videos, labels, per_method[name] = results.load_scores(self.out, name, self.cfg.seeds)
            if ids is None:
                ids = videos
            elif not np.array_equal(ids, videos):
                raise RuntimeError(f"{name}: scored other videos than the rest of the run")
        if ids is None or labels is None:
            return {}
        counts = bootstrap.resample_counts(bootstrap.resample_indices(len(ids)), len(ids))
        draws = {name: bootstrap.resampled_maps(scores, labels, counts) for name, scores in per_method.items()}
        base = tables.BASELINE
        return {
            name: bootstrap.paired_difference(per_method[name], per_method[base], labels, counts,
                                              method_draws=draws[name], reference_draws=draws[base]).to_dict()
            for name in names if name != base
        }

    def caption(self, *, with_differences: bool, left_out: dict[str, str] | None = None) -> str:
        n_train = len(self.held_out.train_rows)
        seeds = self.cfg.seeds
        evaluated = (f"scored on the {len(self.held_out.val_rows)} validation videos (tuning: the evaluation split "
                     "was not read)" if self.eval_split is None else
                     f"evaluated once on {self.eval_split} ({self.store.manifest.splits[self.eval_split].num_videos} "
                     "videos)")
        spread = (f"mean ± std over {len(seeds)} seeds {seeds}" if len(seeds) > 1 else
                  f"one seed ({seeds[0]}): no spread, no conclusion")
        delta = (f" Δ mAP vs Uniform: paired bootstrap {int(100 * bootstrap.CONFIDENCE)}% interval over the evaluated "
                 f"videos ({bootstrap.RESAMPLES} resamples), seeds pooled." if with_differences else "")
        outside = ("" if not left_out else " Also in this folder, not in the table: "
                   + "; ".join(f"{pair}: {why}" for pair, why in left_out.items()) + ".")
        return (
            f"{self.store.manifest.name}: trained on {self.train_split} minus a held-out validation part "
            f"({n_train} + {len(self.held_out.val_rows)} videos; selection on the held-out part only), "
            f"{evaluated}; {spread}. Budget: {self.budget.describe(n_train)}.{delta}{outside}"
        )

    def write_results(self, columns: list[str] | None = None, *, invocation: bool = True) -> dict[str, str]:
        """metrics.json, provenance.json and the tables, from every pair's saved metrics.

        ``invocation=False`` (``python -m benchmark latency``, which only adds a column) keeps the
        folder's provenance.json, which describes the run that computed the table."""
        records = self.records()
        others, left_out = self.other_pairs()
        records.update(others)
        online = {p.name: p.cls.online for p in self.plans}
        online.update({name: next(iter(seeds.values())).online for name, seeds in others.items()})
        differences = self.differences(list(records))
        summary = tables.summary_frame(records, online, {p.name: p.display or p.cls.shown_name() for p in self.plans},
                                       differences, self.latency())
        document: dict[str, Any] = {"summary": tables.summary_records(summary, differences),
                                    "per_seed": {name: {seed: r.to_json() for seed, r in seeds.items()}
                                                 for name, seeds in records.items()}}
        if left_out:
            document["left_out"] = left_out
        atomic_write_json(self.out / results.SUMMARY, document)
        if invocation:
            atomic_write_json(self.out / results.PROVENANCE, self.provenance())
        caption = self.caption(with_differences=bool(differences), left_out=left_out)
        stale = {r["display_name"]: r["stale"] for r in summary.to_dict("records") if tables.is_stale(r)}
        marks = [tables.stale_note(stale, len(summary))]
        if not self.selection:  # a tune re-chooses presets; a table says which of its rows rest on test-chosen ones
            marks.append(preset_origin.note(preset_origin.chosen_on_test(preset_origin.folder_rows(self.out))))
        latency = self.latency()
        if latency is not None:
            from benchmark.latency import caption_note

            caption += " " + caption_note(latency)
        return tables.write_tables(summary, self.out, caption, columns=columns, marks=" ".join(filter(None, marks)))

    def latency(self) -> dict[str, Any] | None:
        """The folder's latency.json (benchmark/latency.py) when it was measured on this dataset."""
        from benchmark.latency import LATENCY_FILE, device_label

        record = results.read_json(self.out / LATENCY_FILE)
        if not isinstance(record, dict) or (record.get("dataset") or {}).get("fingerprint") != self.fingerprint:
            return None
        return {**record, "device_label": device_label(record)}

    def provenance(self) -> dict[str, Any]:
        """This invocation's provenance; each pair's own is in its metrics.json ("computed")."""
        return {
            "written": provenance.now(),
            "command": provenance.invocation(),
            "note": "describes the last invocation; runs/<method>/seed<k>/metrics.json says where each "
            "result was computed ('computed'), since a resumed run keeps earlier results",
            "config": self.cfg.to_dict(),
            "seeds": self.cfg.seeds,
            "budget": {**self.budget.to_dict(len(self.held_out.train_rows)),
                       "rule": self.budget.describe(len(self.held_out.train_rows))},
            "validation": self.validation_record(ids=True),
            "methods": {p.name: {"spec": p.spec, "class": f"{p.cls.__module__}:{p.cls.__qualname__}",
                                 "hparams": p.full_hparams(), "train": asdict(p.train)} for p in self.plans},
            "dataset": {
                "path": str(self.store.path.resolve()),
                "name": self.store.manifest.name,
                "fingerprint": self.fingerprint,
                "provenance": self.store.manifest.provenance,
                "train_split": self.train_split,
                "eval_split": "validation (held out of the training split)" if self.selection else self.eval_split,
            },
            "cost_model": {"per_frame_gmacs": self.per_frame, "backend": costs.COST_BACKEND},
            "execution": self.execution,
            "platform": self.platform,
            **self.environment,
        }


def run(cfg: RunConfig) -> dict[str, str]:
    """Run ``cfg``; return the written tables' texts (table.md, table.csv, table.tex)."""
    torch.backends.cudnn.benchmark = False
    return Runner(cfg).run()
