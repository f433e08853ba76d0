"""One method/seed pair: trained, selected on the held-out videos, evaluated once, recorded.

``compute(ctx, plan, seed)`` trains the plan's method under the run's budget on the training
split minus the held-out validation part, keeps the checkpoint the selection rule chooses on
that part (benchmark/protocol/selection.py), evaluates it once on the evaluation split (or,
in a selection run, on the validation part) and writes the pair's files (benchmark/results.py):
config, per-video scores and costs, weights, diagnostics, and last the record with their
checksums. ``load_trained`` gives back the weights of a pair, for the commands that evaluate
trained models again (online, latency, the evidence re-read, stream).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import provenance, results
from benchmark.context import RunContext
from benchmark.measurement import costs, evidence, metrics
from benchmark.plans import MethodPlan
from benchmark.protocol import selection
from benchmark.record import GFLOPS_UNIT, PairRecord
from benchmark.stores import dataset_fingerprint, method_dims
from benchmark.training import Evaluation, TrainStats, evaluate, fit, seed_everything
from datasets.common.atomic import atomic_write_bytes, json_text
from datasets.common.errors import UsageError
from datasets.store.reader import FeatureStore
from methods.base import VideoMethod
from methods.registry import resolve_method

log = logging.getLogger(__name__)


def validation_candidate(ctx: RunContext, plan: MethodPlan, method: VideoMethod, per_step: dict[str, float],
                         key: Any) -> selection.Candidate:
    """A checkpoint scored on the held-out validation rows of the training split (model
    selection): its mAP, resampled mAPs and mean GFLOPs there."""
    result = evaluate(method, ctx.bank(ctx.train_split), plan.train.eval_batch_size, rows=ctx.held_out.val_rows,
                      show_progress=False, precision=ctx.cfg.precision)
    return selection.candidate(key, result.scores, result.labels, float(ctx.gmacs(plan, result, per_step).mean()),
                               ctx.validation_counts)


def train(ctx: RunContext, plan: MethodPlan, seed: int) -> tuple[VideoMethod, TrainStats]:
    """Train and select one method on the training split alone (never the evaluation split)."""
    per_step = ctx.step_costs(plan)
    seed_everything(seed)
    method = ctx.build(plan)
    log.info("%s seed %d: training (%s, %s)", plan.name, seed, plan.train, ctx.cfg.budget)
    stats = fit(method, ctx.bank(ctx.train_split), plan.train, ctx.cfg.budget, seed=seed,
                rows=ctx.held_out.train_rows,
                validate=lambda m, step: validation_candidate(ctx, plan, m, per_step, step),
                show_progress=ctx.cfg.show_progress, precision=ctx.cfg.precision)
    return method, stats


def scored(ctx: RunContext, plan: MethodPlan, method: VideoMethod) -> Evaluation:
    """The trained method on the evaluation split (touched once, here), or, in a selection run,
    on the validation rows."""
    if ctx.eval_split is None:
        bank, rows = ctx.bank(ctx.train_split), ctx.held_out.val_rows
    else:
        bank, rows = ctx.bank(ctx.eval_split), None
    return evaluate(method, bank, plan.train.eval_batch_size, rows=rows, show_progress=ctx.cfg.show_progress,
                    precision=ctx.cfg.precision)


def record_of(ctx: RunContext, plan: MethodPlan, seed: int, method: VideoMethod, stats: TrainStats,
              result: Evaluation, gmacs: np.ndarray) -> PairRecord:
    """The pair's record: every number of the table and more, and where it was computed."""
    scores = metrics.score(result.scores, result.labels)
    classes = list(ctx.store.manifest.classes)
    ground_truth = ctx.evidence(result.video_ids)
    reads_vs_evidence = (
        evidence.read_statistics(result.read_masks["fine"], ground_truth, result.lengths)
        if ground_truth is not None and "fine" in plan.cls.streams else None
    )
    return PairRecord(
        method=plan.name,
        seed=seed,
        online=plan.cls.online,
        evaluated_on=ctx.scored_on,
        map=scores.map,
        map_interpolated=scores.map_interpolated,
        top1=scores.top1,
        classes_without_positives=[classes[c] for c in scores.classes_without_positives],
        per_class_ap=dict(zip(classes, scores.per_class_ap)),
        gflops=costs.distribution(gmacs),
        gflops_unit=GFLOPS_UNIT,
        per_frame_gmacs={s: ctx.per_frame[s] for s in plan.cls.streams},
        per_step_gmacs=ctx.step_costs(plan),
        frames_read={s: costs.distribution(result.frames_read[s]) for s in plan.cls.streams},
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
            **ctx.environment,
            "device": {**ctx.environment["device"], "torch_threads": torch.get_num_threads()},
            "platform": ctx.platform,
            "precision": ctx.cfg.precision,  # also in the pair's identity (config.json)
        },
        code=ctx.code(plan),
    )


def files_of(ctx: RunContext, plan: MethodPlan, seed: int, method: VideoMethod, result: Evaluation,
             gmacs: np.ndarray) -> dict[str, bytes]:
    """The pair's files but its record, as bytes (results.py names them)."""
    buffer = io.BytesIO()
    arrays = {"video_ids": np.asarray(result.video_ids), "scores": result.scores, "labels": result.labels,
              "gmacs": gmacs, "class_names": np.asarray(ctx.store.manifest.classes),
              **{f"frames_read_{s}": v for s, v in result.frames_read.items()},
              **{f"steps_{k}": v for k, v in result.step_counts.items()}}
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    files = {results.CONFIG: json_text(ctx.identity(plan, seed)).encode(), results.SCORES: buffer.getvalue()}
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    files[results.WEIGHTS] = buffer.getvalue()
    if result.diagnostics:
        files[results.DIAGNOSTICS] = results.pack_diagnostics(result.video_ids, result.diagnostics)
    return files


def compute(ctx: RunContext, plan: MethodPlan, seed: int,
            before_write: Callable[[], None] = lambda: None) -> PairRecord:
    """Train, select, evaluate and write one pair (see the module docstring). ``before_write``
    is called just before its files are written (a worker checks that its run is still there)."""
    method, stats = train(ctx, plan, seed)
    result = scored(ctx, plan, method)
    gmacs = ctx.gmacs(plan, result, ctx.step_costs(plan))
    record = record_of(ctx, plan, seed, method, stats, result, gmacs)
    files = files_of(ctx, plan, seed, method, result, gmacs)
    folder = ctx.pair_dir(plan, seed)
    before_write()
    results.start_pair(folder)  # not done from here until the record is back
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
    record.files = {name: results.sha256_bytes(data) for name, data in files.items()}
    record.save(folder / results.RECORD)  # last: marks the pair as done
    return record


# ---------------------------------------------------------------------- trained pairs, loaded again
def load_trained(ctx: RunContext, plan: MethodPlan, seed: int) -> VideoMethod:
    """The method trained by an earlier ``run`` with this configuration (no training here)."""
    folder = ctx.pair_dir(plan, seed)
    command = f"{ctx.command()} --methods {plan.spec} --seeds {seed}"
    retrain = f"`{command}` (with this command's budget flags)"
    state = results.pair_state(folder)
    if not state.done:
        raise FileNotFoundError(
            f"{folder}: no complete trained {plan.name} (seed {seed}) here ({state.reason}). Train it with {retrain}")
    difference = ctx.identity_difference(plan, seed, state.config)
    if difference:
        raise UsageError(
            f"{folder} was trained with a different configuration than this command asks for ({difference}); "
            "give the settings of the run that trained it (the commands that follow a run read them from its folder "
            "with --name alone)")
    method = ctx.build(plan)
    method.load_state_dict(results.load_weights(folder, ctx.device, f"`{command} --force` (with this command's budget "
                                                                    "flags)"))
    return method.eval()


def load_saved(folder: Path, store: FeatureStore, device: torch.device) -> VideoMethod:
    """A pair's model as its config.json says it was built (the class it was trained as, its
    hyper-parameters), for a store checked to be the one it was trained on (``stream``)."""
    config = json.loads((folder / results.CONFIG).read_text())
    cls = resolve_method(config["class"])  # "module:Class", plug-ins too
    fingerprint = dataset_fingerprint(store)
    if config["dataset"]["fingerprint"] != fingerprint:
        raise UsageError(f"{folder} was trained on dataset {config['dataset']['name']!r} (fingerprint "
                         f"{config['dataset']['fingerprint']}), not on the store at {store.path} ({fingerprint}): "
                         "the store there changed since (extracted again?). Pass the store the run was trained on "
                         "with --store if you kept it, else train a run on this store and stream that one")
    model = cls(len(store.manifest.classes), method_dims(store, cls), **config["hparams"]).to(device)
    model.load_state_dict(results.load_weights(folder, device))
    return model.eval()


def reread_evidence(ctx: RunContext, plan: MethodPlan, seed: int) -> PairRecord:
    """Recompute a pair's ``fine_reads_vs_evidence`` (benchmark/measurement/evidence.py) from its
    saved model, for results written before the statistic's current definition.

    The model is evaluated again on the evaluation split (evaluation is deterministic); the
    frames it reads must equal, video by video, the fine frames its saved scores record, else
    nothing is changed and the run stops. Only that entry of the pair's record is replaced
    (atomically), with a note of when and by which commit."""
    folder = ctx.pair_dir(plan, seed)
    method = load_trained(ctx, plan, seed)
    result = evaluate(method, ctx.bank(ctx.eval_split), plan.train.eval_batch_size,
                      show_progress=ctx.cfg.show_progress, desc=f"re-read {plan.name} seed {seed}",
                      precision=ctx.cfg.precision)
    with np.load(folder / results.SCORES) as saved:
        same = (saved["video_ids"].tolist() == result.video_ids
                and np.array_equal(saved["frames_read_fine"], result.frames_read["fine"]))
    if not same:
        raise RuntimeError(f"{folder}: evaluating the saved model again read other fine frames than the saved "
                           "result records; its evidence statistics were left as they were")
    ground_truth = ctx.evidence(result.video_ids)
    if ground_truth is None:
        raise UsageError(f"--reread-evidence: {ctx.store.path} has no ground truth of evidence frames (only synthetic "
                         "stores have one)")
    record = PairRecord.load(results.record_path(folder))
    record.fine_reads_vs_evidence = evidence.read_statistics(result.read_masks["fine"], ground_truth, result.lengths)
    record.extra["fine_reads_vs_evidence_recomputed"] = {
        "at": provenance.now(), "commit": ctx.environment["git"].get("commit"),
        "how": "python -m benchmark ... --reread-evidence: the saved model evaluated again; its fine reads equal the "
               "saved frames_read_fine video by video"}
    record.save(folder / results.RECORD)
    results.retire_old_name(folder, results.RECORD)
    return record
