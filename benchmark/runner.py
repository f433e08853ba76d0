"""The main job: train and evaluate methods on a dataset and write the comparison table.

Layout of ``results/<run name>/``::

    table.md table.csv table.tex   the comparison table (rows in the paper's order)
    metrics.json                   per method and seed: every number of the table and more
    provenance.json                config, seeds, versions, git commit, device, dataset, costs
    runs/<method>/seed<k>/
        config.json                what this result was computed with (resume checks it)
        scores.npz                 per-video class scores, labels, costs, frames read
        model.pt                   the trained weights (state_dict), for online evaluation
        diagnostics.npz            per-video extras a method reports, if any (see pack_diagnostics)
        metrics.json               written last: its presence marks the pair as done

An interrupted run started again skips every method/seed pair whose metrics.json exists
with the same config, and redoes pairs only with ``force``. Every file is written
atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import costs, metrics, parallel, provenance, tables
from benchmark.config import RunConfig, load_method_config
from benchmark.training import Evaluation, evaluate, fit, seed_everything
from datasets.atomic import atomic_write_bytes, atomic_write_json
from datasets.bank import FeatureBank
from datasets.device import resolve_device
from datasets.distributed import barrier, distributed_rank, finish, rank_device
from datasets.store import FeatureStore
from datasets.synthetic import PRESETS, matching_store, preset, synthesize
from methods.base import TrainConfig, VideoMethod
from methods.registry import available_methods, resolve_method

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
TRAIN_SPLITS = ("train", "training")
EVAL_SPLITS = ("test", "testing", "validation", "val")


def data_root() -> Path:
    """Where synthetic stores are cached: ``$LITEEVAL_DATA`` or ``data/`` in the repository."""
    return Path(os.environ.get("LITEEVAL_DATA", REPO / "data"))


def resolve_store(dataset: str, data_seed: int, *, show_progress: bool = True) -> Path:
    """A store directory for ``dataset``: a preset is generated on first use and cached."""
    if dataset in PRESETS:
        path = data_root() / "synthetic" / f"{dataset}-seed{data_seed}"
        cfg = preset(dataset)
        if not matching_store(path, cfg, data_seed):
            if path.exists():
                log.warning("cached store %s was made with other settings; regenerating it", path)
            log.info("generating the %r synthetic store (seed %d) at %s", dataset, data_seed, path)
            synthesize(cfg, path, seed=data_seed, name=dataset, preset_name=dataset, overwrite=path.exists(),
                       show_progress=show_progress)
        return path
    path = Path(dataset)
    if not path.is_dir():
        raise ValueError(
            f"--dataset {dataset!r} is neither a synthetic preset ({', '.join(PRESETS)}) nor a store directory"
        )
    return path


def pick_split(store: FeatureStore, asked: str | None, candidates: tuple[str, ...], role: str) -> str:
    splits = store.manifest.splits
    if asked is not None:
        if asked not in splits:
            raise ValueError(f"--{role}-split {asked!r}: the store has splits {sorted(splits)}")
        return asked
    for name in candidates:
        if name in splits and splits[name].labelled:
            return name
    raise ValueError(f"no labelled {role} split among {sorted(splits)}; name one with --{role}-split")


@dataclass
class MethodPlan:
    """One method with its resolved hyper-parameters and training settings."""

    spec: str
    cls: type[VideoMethod]
    hparams: dict[str, Any]
    train: TrainConfig
    label: str | None = None  # result name of a variant (ablations); default: the method's name
    display: str | None = None  # row name in the table; default: the method's display name

    @property
    def name(self) -> str:
        return self.label or self.cls.name

    def __reduce__(self):
        # Worker processes (--jobs) re-resolve the class from its spec: a plug-in loaded from a
        # file lives in a module that only exists in the process that loaded it.
        return _rebuild_plan, (self.spec, self.hparams, self.train, self.label, self.display)

    def full_hparams(self) -> dict[str, Any]:
        """Every hyper-parameter, defaults included (a changed default changes identity)."""
        return asdict(self.cls.Hparams(**self.hparams))


def _rebuild_plan(spec: str, hparams: dict[str, Any], train: TrainConfig, label: str | None,
                  display: str | None) -> MethodPlan:
    return MethodPlan(spec, resolve_method(spec), hparams, train, label, display)


def plan_methods(cfg: RunConfig, dataset_name: str) -> list[MethodPlan]:
    """Resolve methods and their settings: class defaults, then the method's preset for
    ``dataset_name``, then the config file, then ``--epochs``."""
    specs = cfg.methods or tables.order_methods(list(available_methods()))
    file_config = load_method_config(cfg.config_file)
    plans, names = [], set()
    for spec in specs:
        cls = resolve_method(spec)
        if cls.name in names:
            raise ValueError(f"method {cls.name!r} is listed twice")
        names.add(cls.name)
        section: dict[str, Any] = {}
        train_overrides: dict[str, Any] = {}
        for source in (cls.presets.get(dataset_name, {}), file_config.get(cls.name, {})):
            source = dict(source)
            train_overrides.update(source.pop("train", {}))
            section.update(source)
        train = cls.train_defaults.updated(train_overrides, where=f"settings of {cls.name!r} (train)")
        if cfg.epochs is not None:
            train = train.updated({"epochs": cfg.epochs}, where="--epochs")
        plans.append(MethodPlan(spec, cls, section, train))
    unknown = sorted(set(file_config) - names - set(available_methods()))
    if unknown:
        raise ValueError(f"config file {cfg.config_file}: unknown method(s) {unknown}")
    return plans


def dataset_fingerprint(store: FeatureStore) -> str:
    """A content hash of a store that does not depend on where it lies or who made it.

    It covers the manifest without its provenance (classes, streams, dims, costs, splits),
    the per-video arrays (ids, splits, labels, offsets) and, for synthetic stores, the
    generator version, parameters and seed. So the same data found at another path, or
    regenerated by another commit of the suite, is recognised; frame values are not hashed
    (that would read the whole store).
    """
    manifest = store.manifest.to_dict()
    origin = manifest.pop("provenance")
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
    if origin.get("kind") == "synthetic":
        digest.update(json.dumps({k: origin.get(k) for k in ("generator_version", "params", "seed")},
                                 sort_keys=True).encode())
    header = store.header
    for array in (header.video_ids, header.splits):
        digest.update("\n".join(array.tolist()).encode())
    for array in (header.labels, header.offsets):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def pack_diagnostics(video_ids: list[str], diagnostics: dict[str, list]) -> bytes:
    """Per-video diagnostics as a compressed .npz: for each name, the values of every video
    flattened and concatenated (``<name>``) and where each video's values start
    (``<name>_offsets``, N + 1 entries). Read them back with ``unpack_diagnostics``."""
    arrays: dict[str, np.ndarray] = {"video_ids": np.asarray(video_ids)}
    for name, values in diagnostics.items():
        flat = [np.asarray(v).reshape(-1) for v in values]
        arrays[name] = np.concatenate(flat) if flat else np.zeros(0)
        arrays[f"{name}_offsets"] = np.concatenate([[0], np.cumsum([len(v) for v in flat])]).astype(np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def unpack_diagnostics(path: Path | str) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    """The inverse of ``pack_diagnostics``: video ids and, per name, one array per video."""
    with np.load(path) as data:
        ids = data["video_ids"].tolist()
        names = [k for k in data.files if k != "video_ids" and not k.endswith("_offsets")]
        out = {}
        for name in names:
            values, offsets = data[name], data[f"{name}_offsets"]
            out[name] = [values[offsets[i] : offsets[i + 1]] for i in range(len(ids))]
    return ids, out


class Runner:
    """Runs one configuration end to end; see the module docstring for what it writes."""

    def __init__(self, cfg: RunConfig, plans: list[MethodPlan] | None = None) -> None:
        self.cfg = cfg
        self.store = FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
        self.train_split = pick_split(self.store, cfg.train_split, TRAIN_SPLITS, "train")
        self.eval_split = pick_split(self.store, cfg.eval_split, EVAL_SPLITS, "eval")
        self.plans = plans if plans is not None else plan_methods(cfg, self.store.manifest.name)
        self.device = resolve_device(cfg.device)
        name = cfg.name or (cfg.dataset if cfg.dataset in PRESETS else self.store.manifest.name)
        self.out = Path(cfg.results_root) / name
        self.streams = sorted({s for p in self.plans for s in p.cls.streams})
        self.per_frame = costs.frame_costs(self.store.manifest, self.streams)
        # Constant over a run, so computed once (the fingerprint hashes every per-video array).
        self.fingerprint = dataset_fingerprint(self.store)
        self.environment = {"git": provenance.git_state(), "versions": provenance.package_versions(),
                            "device": provenance.device_info(self.device)}
        self._banks: dict[str, FeatureBank] = {}
        self.execution: dict[str, Any] = {}  # how the last run() computed its pairs (benchmark/parallel.py)

    # ------------------------------------------------------------------ helpers
    def bank(self, split: str) -> FeatureBank:
        """Each split is loaded once and shared by every method of the run."""
        if split not in self._banks:
            self._banks[split] = FeatureBank(self.store, split, device=self.device, streams=self.streams,
                                             show_progress=self.cfg.show_progress)
        return self._banks[split]

    def pair_dir(self, plan: MethodPlan, seed: int) -> Path:
        return self.out / "runs" / plan.name / f"seed{seed}"

    def identity(self, plan: MethodPlan, seed: int) -> dict[str, Any]:
        """What a result depends on; a stored result with another identity is not reused."""
        return {
            "method": plan.name,
            "class": f"{plan.cls.__module__}:{plan.cls.__qualname__}",
            "hparams": plan.full_hparams(),
            "train": asdict(plan.train),
            "seed": seed,
            "dataset": {"name": self.store.manifest.name, "fingerprint": self.fingerprint},
            "train_split": self.train_split,
            "eval_split": self.eval_split,
            "streams": list(plan.cls.streams),  # the method's own, not the run's union
        }

    def is_done(self, plan: MethodPlan, seed: int) -> bool:
        folder = self.pair_dir(plan, seed)
        if not (folder / "metrics.json").is_file():
            return False
        stored = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else None
        if stored != json.loads(json.dumps(self.identity(plan, seed))):
            if self.cfg.force:
                return False
            raise ValueError(
                f"{folder} holds a result computed with a different configuration. Re-run with --force to "
                "replace it, or choose another --name"
            )
        return not self.cfg.force

    def build(self, plan: MethodPlan) -> VideoMethod:
        """A fresh (untrained) instance of the plan's method on the run's device."""
        dims = {s: self.store.manifest.streams[s].dim for s in self.streams}
        return plan.cls(len(self.store.manifest.classes), dims, **plan.hparams).to(self.device)

    def gmacs(self, plan: MethodPlan, result: Evaluation, per_step: dict[str, float]) -> np.ndarray:
        """Per-video cost of an evaluation: the method's own streams, from the meter."""
        frames = {s: result.frames_read[s] for s in plan.cls.streams}
        return costs.video_gmacs(frames, result.step_counts, self.per_frame, per_step)

    def load_trained(self, plan: MethodPlan, seed: int) -> VideoMethod:
        """The method trained by an earlier ``run`` with this configuration (no training here)."""
        folder = self.pair_dir(plan, seed)
        command = "python -m benchmark run" + (f" --dataset {self.cfg.dataset}" if self.cfg.dataset != "default" else "")
        if not (folder / "metrics.json").is_file():
            raise FileNotFoundError(
                f"{folder}: no trained {plan.name} (seed {seed}) here. Train it first with `{command} "
                f"--methods {plan.spec} --seeds {seed}` (with the same --name/--config/--epochs as this command)"
            )
        stored = json.loads((folder / "config.json").read_text())
        if stored != json.loads(json.dumps(self.identity(plan, seed))):
            raise ValueError(
                f"{folder} was trained with a different configuration than this command asks for; pass the same "
                "--dataset/--config/--epochs/--name as the run that trained it"
            )
        if not (folder / "model.pt").is_file():
            raise FileNotFoundError(
                f"{folder}: the result has no model.pt (it predates saved weights). Retrain it with `{command} "
                f"--methods {plan.spec} --seeds {seed} --force`"
            )
        method = self.build(plan)
        state = torch.load(folder / "model.pt", map_location=self.device, weights_only=True)
        method.load_state_dict(state)
        return method.eval()

    # ------------------------------------------------------------------ one pair
    def run_pair(self, plan: MethodPlan, seed: int) -> dict[str, Any]:
        train_bank, eval_bank = self.bank(self.train_split), self.bank(self.eval_split)
        seed_everything(seed)
        method = self.build(plan)
        per_step = costs.step_costs(method)
        log.info("%s seed %d: training (%s)", plan.name, seed, plan.train)
        stats = fit(method, train_bank, plan.train, seed=seed, show_progress=self.cfg.show_progress)
        result = evaluate(method, eval_bank, plan.train.eval_batch_size, show_progress=self.cfg.show_progress)
        frames = {s: result.frames_read[s] for s in plan.cls.streams}
        gmacs = self.gmacs(plan, result, per_step)
        scored = metrics.score(result.scores, result.labels)
        classes = eval_bank.class_names
        record = {
            "method": plan.name,
            "seed": seed,
            "online": plan.cls.online,
            "map": scored.map,
            "map_interpolated": scored.map_interpolated,
            "top1": scored.top1,
            "classes_without_positives": [classes[c] for c in scored.classes_without_positives],
            "per_class_ap": dict(zip(classes, scored.per_class_ap)),
            "gflops": costs.distribution(gmacs),
            "gflops_unit": "GMACs per video (multiply-accumulates / 1e9), counted with ptflops (aten backend)",
            "per_frame_gmacs": {s: self.per_frame[s] for s in plan.cls.streams},
            "per_step_gmacs": per_step,
            "frames_read": {s: costs.distribution(v) for s, v in frames.items()},
            "steps": {k: costs.distribution(v) for k, v in result.step_counts.items()},
            "params": int(sum(p.numel() for p in method.parameters() if p.requires_grad)),
            "train_seconds": stats.seconds,
            "epochs": stats.epochs,
            "final_train_loss": stats.final_loss,
            "train_history": stats.history,
            "eval_seconds": result.seconds,
            "eval_videos_per_second": len(result.video_ids) / max(result.seconds, 1e-9),
            "num_eval_videos": len(result.video_ids),
            "hparams": method.hparams(),
            "train": asdict(plan.train),
            # Where and with what this pair was computed (a resumed run keeps older pairs); the
            # thread count is this pair's own (it fixes the floating-point results on a CPU).
            "computed": {
                "at": provenance.now(),
                **self.environment,
                "device": {**self.environment["device"], "torch_threads": torch.get_num_threads()},
            },
        }
        folder = self.pair_dir(plan, seed)
        atomic_write_json(folder / "config.json", self.identity(plan, seed))
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, video_ids=np.asarray(result.video_ids), scores=result.scores, labels=result.labels,
            gmacs=gmacs, class_names=np.asarray(classes),
            **{f"frames_read_{s}": v for s, v in result.frames_read.items()},
            **{f"steps_{k}": v for k, v in result.step_counts.items()},
        )
        atomic_write_bytes(folder / "scores.npz", buffer.getvalue())
        buffer = io.BytesIO()
        torch.save(method.state_dict(), buffer)
        atomic_write_bytes(folder / "model.pt", buffer.getvalue())
        if result.diagnostics:
            atomic_write_bytes(folder / "diagnostics.npz", pack_diagnostics(result.video_ids, result.diagnostics))
        atomic_write_json(folder / "metrics.json", record)  # last: marks the pair as done
        return record

    # ------------------------------------------------------------------ whole run
    def run(self, columns: list[str] | None = None) -> dict[str, str]:
        """Compute what is missing, then write metrics, provenance and the table.

        Pending pairs run here, in ``--jobs`` worker processes, or spread over torchrun's
        ranks (benchmark/parallel.py); rank 0 writes the table once all are done, and the
        other ranks return an empty dict."""
        rank, world, local_rank, started_group = distributed_rank()
        if world > 1:
            self.device = rank_device(self.cfg.device, local_rank)
            self.environment["device"] = provenance.device_info(self.device)
        try:
            pending = []
            for index, plan in enumerate(self.plans):
                for seed in self.cfg.seeds:
                    if self.is_done(plan, seed):
                        log.info("%s seed %d: done already (%s), kept", plan.name, seed, self.pair_dir(plan, seed))
                    else:
                        pending.append((index, seed))
            if world > 1:
                barrier()  # every rank has seen the same pending pairs before any is written
            self.execution = parallel.schedule(self, pending, jobs=self.cfg.jobs, threads=self.cfg.threads,
                                               bytes_per_worker=self.bank_bytes(), rank=rank, world=world)
            if world > 1:
                barrier()
                if rank != 0:
                    return {}
            return self.write_results(columns)
        finally:
            finish(started_group)

    def bank_bytes(self) -> int:
        """Host bytes of the run's two banks (what each worker process loads)."""
        header, manifest = self.store.header, self.store.manifest
        frames = sum(int(header.lengths[self.store.split_rows(s)].sum()) for s in {self.train_split, self.eval_split})
        return frames * sum(2 * manifest.streams[s].dim for s in self.streams)

    def write_results(self, columns: list[str] | None = None) -> dict[str, str]:
        """metrics.json, provenance.json and the tables, from every pair's saved metrics."""
        records: dict[str, dict[str, dict[str, Any]]] = {}
        for plan in self.plans:
            for seed in self.cfg.seeds:
                folder = self.pair_dir(plan, seed)
                if not (folder / "metrics.json").is_file():
                    raise RuntimeError(f"{folder}: no metrics.json after the pair was computed")
                records.setdefault(plan.name, {})[str(seed)] = json.loads((folder / "metrics.json").read_text())
        atomic_write_json(self.out / "metrics.json", records)
        atomic_write_json(self.out / "provenance.json", self.provenance())
        summary = tables.summary_frame(records, {p.name: p.cls.online for p in self.plans},
                                       {p.name: p.display for p in self.plans if p.display})
        caption = (
            f"{self.store.manifest.name}: trained on {self.train_split} "
            f"({self.store.manifest.splits[self.train_split].num_videos} videos), evaluated on {self.eval_split} "
            f"({self.store.manifest.splits[self.eval_split].num_videos} videos); seeds {self.cfg.seeds}."
        )
        return tables.write_tables(summary, self.out, caption, columns=columns)

    def provenance(self) -> dict[str, Any]:
        """This invocation's provenance; each pair's own is in its metrics.json ("computed")."""
        return {
            "written": provenance.now(),
            "note": "describes the last invocation; runs/<method>/seed<k>/metrics.json says where each "
            "result was computed ('computed'), since a resumed run keeps earlier results",
            "config": self.cfg.to_dict(),
            "seeds": self.cfg.seeds,
            "methods": {p.name: {"spec": p.spec, "class": f"{p.cls.__module__}:{p.cls.__qualname__}",
                                 "hparams": p.full_hparams(), "train": asdict(p.train)} for p in self.plans},
            "dataset": {
                "path": str(self.store.path.resolve()),
                "name": self.store.manifest.name,
                "fingerprint": self.fingerprint,
                "provenance": self.store.manifest.provenance,
                "train_split": self.train_split,
                "eval_split": self.eval_split,
            },
            "cost_model": {"per_frame_gmacs": self.per_frame, "backend": costs.COST_BACKEND},
            "execution": self.execution,
            **self.environment,
        }


def run(cfg: RunConfig) -> dict[str, str]:
    """Run ``cfg``; return the written tables' texts (table.md, table.csv, table.tex)."""
    torch.backends.cudnn.benchmark = False
    return Runner(cfg).run()
