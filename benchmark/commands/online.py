"""Online evaluation: top-1 accuracy against average cost under varying budgets (Figure 2).

Frames arrive one by one and a prediction is forced once a budget K is spent. Three kinds of
curves, all measured on the evaluation split with the read meter (costs are never computed
from K):

* every online method (``online = True``; LiteEval, LiteEval-RL, plug-ins) through its budget
  hook ``VideoMethod.forward_budget(batch, K)``: for LiteEval, K counts fine-feature reads
  (LiteEval-K); for a method that keeps the default hook, K counts the frames it has seen;
* Uniform-K: the trained frame classifier of UNIFORM averaged over K frames spread uniformly
  over the first K' frames of each video, where K' is where the horizon method (an online method,
  LiteEval) predicted under the same K on that same video (the meter's horizon). It needs
  K' from the future, so it is an upper reference, not an online method;
* Seq-K: the same frame classifier averaged over the first K consecutive frames.

Trained weights come from ``python -m benchmark run`` (``runs/<method>/seed<k>/model.pt``);
nothing is trained here. Results go to ``results/<name>/online.csv`` (one row per curve,
K and seed) and ``online.json`` (provenance).
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark import pair, provenance, results
from benchmark.commands.defaults import FRAME_MODEL, HORIZON_METHOD
from benchmark.context import RunContext
from benchmark.measurement import costs, metrics
from benchmark.plans import MethodPlan
from benchmark.results import SEQ_K, UNIFORM_K
from benchmark.training import Evaluation, evaluate
from datasets.common.atomic import atomic_write_bytes, atomic_write_json
from datasets.common.errors import UsageError
from datasets.common.progress import progress_bar
from datasets.loading.bank import FeatureBank
from datasets.loading.sampling import ConsecutiveFrames, UniformFrames
from methods.base import VideoMethod

log = logging.getLogger(__name__)

#: Columns of online.csv, in order.
COLUMNS = ("method", "display_name", "K", "budget_unit", "seed", "top1_percent", "mean_gflops",
           "mean_frames_seen", "mean_fine_frames", "videos")
#: Curve names (the ``method`` column) of the two frame-classifier baselines.


@dataclass(frozen=True)
class OnlineOptions:
    ks: tuple[int, ...] = tuple(range(1, 11))  # the online budgets K (frames); online.json calls them "budgets"
    horizon_method: str = HORIZON_METHOD
    frame_model: str = FRAME_MODEL


@dataclass(frozen=True)
class TrainedModels:
    """What the online sweep needs from a finished run, and nothing else: the run's methods and
    seeds, the evaluation bank, a loader of each pair's saved weights and the cost model."""

    plans: list[MethodPlan]
    seeds: list[int]
    bank: FeatureBank
    load: Callable[[MethodPlan, int], VideoMethod]
    gmacs: Callable[[MethodPlan, Evaluation, dict[str, float]], np.ndarray]
    show_progress: bool = True
    precision: str = "fp32"  # the run's (benchmark/precision.py)

    @classmethod
    def of(cls, ctx: RunContext) -> TrainedModels:
        return cls(plans=ctx.plans, seeds=ctx.cfg.seeds, bank=ctx.bank(ctx.eval_split),
                   load=functools.partial(pair.load_trained, ctx), gmacs=ctx.gmacs, show_progress=ctx.cfg.show_progress,
                   precision=ctx.cfg.precision)


def _row(trained: TrainedModels, name: str, display: str, k: int, unit: str, seed: int, plan: MethodPlan,
         result: Evaluation, per_step: dict[str, float]) -> dict[str, Any]:
    gmacs = trained.gmacs(plan, result, per_step)
    fine = result.frames_read.get("fine")
    return {
        "method": name, "display_name": display, "K": k, "budget_unit": unit, "seed": seed,
        "top1_percent": 100 * metrics.top1_accuracy(result.scores, result.labels),
        "mean_gflops": float(gmacs.mean()),
        "mean_frames_seen": float(result.frames_seen.mean()),
        "mean_fine_frames": float(fine.mean()) if fine is not None else 0.0,
        "videos": len(result.video_ids),
    }


def _plan(plans: list[MethodPlan], name: str, role: str) -> MethodPlan:
    for plan in plans:
        if plan.name == name:
            return plan
    raise UsageError(f"{role} {name!r} is not among the methods of this command ({[p.name for p in plans]})")


def evaluate_online(trained: TrainedModels, options: OnlineOptions) -> pd.DataFrame:
    """Every curve for every seed of the run; one row per (curve, K, seed)."""
    if not options.ks or min(options.ks) < 1:
        raise UsageError(f"online budgets K must be integers >= 1, got {list(options.ks)}")
    online = [p for p in trained.plans if p.cls.online]
    if not online:
        raise UsageError(f"none of the methods here ({', '.join(p.name for p in trained.plans)}) runs online "
                         "(online = True): nothing to sweep; add an online method (liteeval, liteeval_rl) to the "
                         "run, or name one with --methods")
    names = [p.name for p in online]
    pacer = (_plan(trained.plans, options.horizon_method, "--horizon-method") if options.horizon_method in names
             else None)
    if pacer is None:
        log.warning("horizon method %r is not an online method of this command: Uniform-K is left out",
                    options.horizon_method)
    frame_plan = _plan(trained.plans, options.frame_model, "--frame-model")
    show = trained.show_progress
    rows: list[dict[str, Any]] = []
    # The whole sweep's progress (its ETA, in a log file): one unit per method and seed.
    with progress_bar(total=len(trained.seeds) * (len(online) + 1), desc="online curves", unit="model",
                      enable=show) as overall:
        for seed in trained.seeds:
            _sweep_seed(trained, options, seed, online, pacer, frame_plan, rows, overall.update)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _sweep_seed(trained: TrainedModels, options: OnlineOptions, seed: int, online: list[MethodPlan],
                pacer: MethodPlan | None, frame_plan: MethodPlan, rows: list[dict[str, Any]],
                advance: Callable[[], object]) -> None:
    """One seed's curves: every online method at every budget, then Seq-K and Uniform-K."""
    show = trained.show_progress
    bank = trained.bank
    horizons: dict[int, np.ndarray] = {}
    for plan in online:
        method = trained.load(plan, seed)
        per_step = costs.step_costs(method)
        display = plan.display or plan.cls.shown_name()
        for k in options.ks:
            result = evaluate(method, bank, plan.train.eval_batch_size, show_progress=show,
                              forward=functools.partial(method.forward_budget, budget=k),
                              desc=f"{display}-{k}", precision=trained.precision)
            rows.append(_row(trained, plan.name, f"{display}-K", k, plan.cls.budget_unit, seed, plan, result,
                             per_step))
            if plan is pacer:
                horizons[k] = np.maximum(result.frames_seen, 1)
        advance()
    classifier = trained.load(frame_plan, seed)
    per_step = costs.step_costs(classifier)
    batch_size = frame_plan.train.eval_batch_size
    for k in options.ks:
        result = evaluate(classifier, bank, batch_size, sampler=ConsecutiveFrames(k), show_progress=show,
                          desc=f"Seq-{k}", precision=trained.precision)
        rows.append(_row(trained, SEQ_K, "Seq-K", k, "consecutive frames", seed, frame_plan, result, per_step))
        if pacer is not None:
            result = evaluate(classifier, bank, batch_size, sampler=UniformFrames(k), horizons=horizons[k],
                              show_progress=show, desc=f"Uniform-{k}", precision=trained.precision)
            rows.append(_row(trained, UNIFORM_K, "Uniform-K", k, "frames", seed, frame_plan, result, per_step))
    advance()


def run_online(ctx: RunContext, options: OnlineOptions) -> pd.DataFrame:
    """Evaluate every curve and write online.csv and online.json under the run's folder."""
    table = evaluate_online(TrainedModels.of(ctx), options)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.4f")
    atomic_write_bytes(ctx.out / results.ONLINE_CSV, buffer.getvalue().encode())
    atomic_write_json(ctx.out / results.ONLINE_JSON, {
        "written": provenance.now(),
        "command": provenance.invocation(),
        "what": "online.csv: top-1 accuracy (%) and mean cost per video (GMACs, from the read meter) when the "
                "prediction is forced after a budget K; see benchmark/commands/online.py",
        "config": ctx.cfg.to_dict(),
        "budgets": list(options.ks),
        "horizon_method": options.horizon_method,
        "frame_model": options.frame_model,
        "eval_split": ctx.eval_split,
        "dataset": {"name": ctx.store.manifest.name, "fingerprint": ctx.fingerprint},
        "weights": {f"{p.name}/seed{s}": str(ctx.pair_dir(p, s) / results.WEIGHTS)
                    for p in ctx.plans if p.cls.online or p.name == options.frame_model for s in ctx.cfg.seeds},
        **ctx.environment,
    })
    return table
