"""``python -m benchmark curves``: every method along its cost knob, under the run's protocol.

A method declares how its cost moves (methods/base.py ``CostKnob``). The sweep of run
``results/<name>`` lives in ``results/<name>-curves``:

* methods with an evaluation-time knob (a frame count, an exit threshold) train once per seed,
  as in the run, and the trained model is evaluated at every point (``points/<method>/<point>/
  seed<k>/``: its per-video scores and a record); a point costs seconds, so none is thinned, and
  a frame count is measured at every count from 1 to its largest point (``evaluation_values``);
  a continuous one (a threshold) is also measured where its cost meets each matched budget
  (``budget_values``: bisection between the declared points that bracket it);
* methods with a training-time knob (a usage target, a cost weight) train once per point and
  seed (``runs/<method>@<setting>=<value>/seed<k>/``), under the same budget, selection and
  resume rules as ``run``: they are plans of one run (benchmark/runner.py), computed in parallel
  like pairs;
* a method without a knob is its one point.

Where a point is the method's own setting, the run's pair is copied in, not trained again (its
identity is checked as a resumed run checks it). Every point's row goes to ``curves.csv``
(method, point, seed, mAP, GFLOPs, fine frames); benchmark/presentation/curves.py reads them at matched
budgets.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import pair, results
from benchmark.config import RunConfig
from benchmark.context import RunContext
from benchmark.curves.matching import SHARES
from benchmark.measurement import metrics
from benchmark.plans import MethodPlan, plan_methods
from benchmark.protocol.knobs import at_point, knob_of
from benchmark.record import PairRecord
from benchmark.runner import Runner, is_current
from benchmark.stores import dataset_label, resolve_store
from benchmark.tables import BASELINE
from benchmark.training import evaluate
from datasets.common.atomic import atomic_write_bytes, atomic_write_json, file_sha256
from datasets.common.distributed import barrier, distributed_rank
from datasets.common.errors import UsageError
from datasets.store.reader import FeatureStore
from methods.base import VideoMethod, check_setting_types

log = logging.getLogger(__name__)

#: The curve every other is read against (benchmark/presentation/curves.py), and its own operating point.
REFERENCE, REFERENCE_POINT = BASELINE, 25
#: curves.csv's columns, in order.
COLUMNS = ("method", "display_name", "online", "knob", "at", "point", "seed", "map_percent", "gflops", "fine_frames",
           "where")


@dataclass(frozen=True)
class Point:
    """One operating point of one method: where its numbers live."""

    method: str  # the method's name
    display: str
    online: bool
    knob: str  # the setting, "" for a method without a knob
    at: str  # "evaluation", "training" or "" (no knob)
    value: Any  # the setting's value (None without a knob)
    plan: MethodPlan  # the trained plan behind it


def check_points(points: int) -> None:
    """``--points``: a curve needs at least its first and last point."""
    if points < 2:
        raise UsageError(f"--points {points}: a curve needs at least 2 points")


def thinned(points: tuple[Any, ...], keep: int | None) -> tuple[Any, ...]:
    """``keep`` of the declared points, evenly spread, the first and last always among them."""
    if keep is None or keep >= len(points):
        return points
    check_points(keep)
    picks = sorted({round(i * (len(points) - 1) / (keep - 1)) for i in range(keep)})
    return tuple(points[i] for i in picks)


def label_of(name: str, setting: str, value: Any) -> str:
    return f"{name}@{setting}={value}"


def evaluation_values(cls: type[VideoMethod], setting: str, points: tuple[Any, ...]) -> tuple[Any, ...]:
    """An evaluation-time knob's values: every declared point, never thinned (a point costs an
    evaluation, seconds), and for a count (integer points, a number of frames) every count from 1
    to the largest declared one, so that a cell read at a matched budget lies between two measured
    neighbours, not on a straight line across a bend (issue 44: Uniform's 25% cell was read off
    the chord between its 3- and 12-frame points of a concave curve)."""
    if not is_count(points):
        return points
    values = tuple(range(1, max(points) + 1))
    for value in values:
        check_setting_types(cls.Hparams, {setting: value}, where=f"method {cls.name!r}'s cost_knob point")
    return values


def is_count(points: Sequence[Any]) -> bool:
    """Whether a knob's points are counts (integers: frames), not a continuous setting (a threshold)."""
    return all(isinstance(p, int) and not isinstance(p, bool) for p in points)


#: ``budget_values``: a point within this share of a budget's cost is at the budget; the most
#: bisection steps per budget.
AT_BUDGET, BISECTION_STEPS = 0.01, 10


def budget_values(values: Sequence[float], cost: Callable[[float], float], budgets: Sequence[float]) -> list[float]:
    """The values of a continuous evaluation-time knob to measure so that each budget has a point
    at it (within ``AT_BUDGET`` of its cost), found by bisection between the two measured values
    whose costs bracket it; a budget no two values bracket is outside the knob's reach and gets no
    point (never extrapolated). ``cost``: the seeds' mean GFLOPs at a value, measured (no labels:
    a cost is what the model reads, not how it scores, so nothing is chosen on the test split's
    labels). Returns the values measured, in order; every one is a point of the curve."""
    known = {float(v): cost(float(v)) for v in values}
    measured: list[float] = []
    for budget in budgets:
        ordered = sorted(known)
        pairs = [(a, b) for a, b in zip(ordered, ordered[1:], strict=False)
                 if min(known[a], known[b]) <= budget <= max(known[a], known[b])]
        if not pairs or any(abs(c - budget) <= AT_BUDGET * budget for c in known.values()):
            continue
        low, high = pairs[0]
        for _ in range(BISECTION_STEPS):
            middle = round((low + high) / 2, 6)
            if middle in (low, high):
                break
            known[middle] = cost(middle)
            measured.append(middle)
            if abs(known[middle] - budget) <= AT_BUDGET * budget:
                break
            if (known[low] - budget) * (known[middle] - budget) <= 0:
                high = middle
            else:
                low = middle
    return measured


def sweep_points(base_plans: list[MethodPlan], keep: int | None) -> tuple[list[MethodPlan], list[Point]]:
    """The plans the sweep trains and the points it reports."""
    plans: list[MethodPlan] = []
    points: list[Point] = []
    for base in base_plans:
        knob = knob_of(base.cls)
        display = base.display or base.cls.shown_name()
        if knob is None:
            plans.append(base)
            points.append(Point(base.name, display, base.cls.online, "", "", None, base))
            continue
        own = base.full_hparams()[knob.setting]
        if knob.at == "evaluation":
            values = evaluation_values(base.cls, knob.setting, knob.points)
            plans.append(base)
            points += [Point(base.name, display, base.cls.online, knob.setting, knob.at, v, base) for v in values]
            continue
        for value in thinned(knob.points, keep):
            plan = base if value == own else MethodPlan(
                base.spec, base.cls, {**base.hparams, knob.setting: value}, base.train,
                label=label_of(base.name, knob.setting, value), display=f"{display} ({knob.setting} {value})")
            plans.append(plan)
            points.append(Point(base.name, display, base.cls.online, knob.setting, knob.at, value, plan))
    return plans, points


def reuse_run_pairs(ctx: RunContext, run_out: Path, plans: list[MethodPlan]) -> int:
    """Copy the run's current pairs of these plans (a method at its own setting) into the sweep's
    folder where the sweep's own pair is not current (missing, from other settings, another kind
    of machine or older code), so that a sweep after a new table trains only the points the table
    lacks; the runner then checks the copies as any kept pair."""
    copied = 0
    for plan in plans:
        if plan.label is not None:
            continue
        for seed in ctx.cfg.seeds:
            source, target = results.pair_dir(run_out, plan.name, seed), ctx.pair_dir(plan, seed)
            if is_current(ctx, plan, seed, target) or not is_current(ctx, plan, seed, source):
                continue
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target)
            copied += 1
    return copied


def evaluated(ctx: RunContext, point: Point, seed: int) -> dict[str, Any] | None:
    """The point's record where this trained model's point was evaluated already, else None."""
    folder = results.point_dir(ctx.out, point.method, f"{point.knob}={point.value}", seed)
    source = results.record_path(ctx.pair_dir(point.plan, seed))
    record = results.read_json(folder / results.POINT_RECORD)
    done = (isinstance(record, dict) and source.is_file()
            and record.get("trained_record_sha256") == file_sha256(source))
    return record if done and (folder / results.SCORES).is_file() else None


def without_weights(ctx: RunContext, points: list[Point]) -> list[tuple[MethodPlan, int]]:
    """The trained pairs with an evaluation-time point still to evaluate and no weights here
    (weights are not committed to git: a fresh clone has the pairs' records and scores only)."""
    found: dict[tuple[str, int], tuple[MethodPlan, int]] = {}

    def weightless(plan: MethodPlan, seed: int) -> bool:
        folder = ctx.pair_dir(plan, seed)
        return (folder / results.RECORD).is_file() and not results.has_weights(folder)

    for point in points:
        for seed in ctx.cfg.seeds if point.at == "evaluation" else ():
            if weightless(point.plan, seed) and evaluated(ctx, point, seed) is None:
                found[point.plan.name, seed] = (point.plan, seed)
    missing: list[MethodPlan] = []  # the budget points, walked through what is evaluated already
    at_budgets(ctx, points, missing=missing)
    for plan in missing:
        for seed in ctx.cfg.seeds:
            if weightless(plan, seed):
                found[plan.name, seed] = (plan, seed)
    return list(found.values())


class NotEvaluated(Exception):
    """A point not evaluated yet, met where only evaluated ones may be read."""

    def __init__(self, plan: MethodPlan) -> None:
        super().__init__(plan.name)
        self.plan = plan


def at_budgets(ctx: RunContext, points: list[Point], *, missing: list[MethodPlan] | None = None) -> list[Point]:
    """The points of each continuous evaluation-time knob at the matched budgets (``budget_values``),
    evaluated on the way. Given ``missing``, only what is evaluated already is read, and the plan
    of each method whose walk meets a point not evaluated yet is added to it (what will need the
    trained model)."""

    def mean_cost(point: Point) -> float:
        costs = []
        for seed in ctx.cfg.seeds:
            record = evaluated(ctx, point, seed) if missing is not None else evaluate_point(ctx, point, seed)
            if record is None:
                raise NotEvaluated(point.plan)
            costs.append(float(record["gflops"]))
        return float(np.mean(costs))

    reference = [p for p in points if p.method == REFERENCE and p.at == "evaluation" and p.value == REFERENCE_POINT]
    continuous: dict[str, list[Point]] = {}
    for point in points:
        if point.at == "evaluation" and point.method != REFERENCE:
            continuous.setdefault(point.method, []).append(point)
    continuous = {m: group for m, group in continuous.items() if not is_count([p.value for p in group])}
    if not reference or not continuous:
        return []
    def walked(measure: Callable[[], Any]) -> Any:
        """``measure()``; None where it met a point not evaluated yet (only read, never raised,
        when ``missing`` is given: evaluate_point evaluates it)."""
        try:
            return measure()
        except NotEvaluated as gap:
            if missing is None:
                raise
            missing.append(gap.plan)
            return None

    base = walked(lambda: mean_cost(reference[0]))
    if base is None:
        return []
    budgets = [share * base for share in SHARES]
    found: list[Point] = []
    for group in continuous.values():
        template = group[0]
        values = walked(lambda: budget_values([p.value for p in group],  # noqa: B023 - called at once
                                              lambda v: mean_cost(replace(template, value=v)), budgets))
        found += [replace(template, value=v) for v in values or ()]
    return found


def evaluate_point(ctx: RunContext, point: Point, seed: int) -> dict[str, Any]:
    """An evaluation-time point of a trained pair: evaluated once, kept, and read back after."""
    folder = results.point_dir(ctx.out, point.method, f"{point.knob}={point.value}", seed)
    trained = file_sha256(results.record_path(ctx.pair_dir(point.plan, seed)))
    record = evaluated(ctx, point, seed)
    if record is not None:  # this trained model's point, evaluated already
        return record
    method = at_point(pair.load_trained(ctx, point.plan, seed), point.knob, point.value)
    bank = ctx.bank(ctx.eval_split)
    result = evaluate(method, bank, point.plan.train.eval_batch_size, show_progress=ctx.cfg.show_progress,
                      desc=f"{point.method} {point.knob}={point.value} seed {seed}", precision=ctx.cfg.precision)
    gmacs = ctx.gmacs(point.plan, result, ctx.step_costs(point.plan))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, video_ids=np.asarray(result.video_ids), scores=result.scores, labels=result.labels,
                        gmacs=gmacs, **{f"frames_read_{s}": v for s, v in result.frames_read.items()})  # type: ignore[arg-type]
    scores = buffer.getvalue()
    fine = result.frames_read.get("fine")
    record = {"method": point.method, "knob": point.knob, "value": point.value, "seed": seed,
              "map": metrics.score(result.scores, result.labels).map,
              "gflops": float(np.mean(gmacs)),  # GMACs per video, the table's "GFLOPs" (benchmark/record.py)
              "fine_frames": float(np.mean(fine)) if fine is not None else 0.0,
              "trained_record_sha256": trained, "scores_sha256": results.sha256_bytes(scores)}
    atomic_write_bytes(folder / results.SCORES, scores)
    atomic_write_json(folder / results.POINT_RECORD, record)  # last: marks the point as done
    return record


def trained_point(ctx: RunContext, point: Point, seed: int) -> dict[str, Any]:
    record = PairRecord.load(results.record_path(ctx.pair_dir(point.plan, seed)))
    return {"map": record.map, "gflops": record.gflops["mean"], "fine_frames": record.fine_frames}


def curves(cfg: RunConfig, *, keep: int | None = None) -> Path | None:
    """Train what the sweep needs, evaluate every point, write curves.csv; return the sweep's
    folder. Under torchrun the ranks share the trained points and rank 0 alone copies the run's
    pairs, evaluates the points and writes (the other ranks return None)."""
    store = FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
    run_name = cfg.name or dataset_label(cfg.dataset, store)
    base_plans = plan_methods(cfg, store.manifest.name)
    if REFERENCE not in {p.name for p in base_plans}:  # refused before training, not after every point (issue 45)
        raise UsageError(f"--methods {' '.join(p.spec for p in base_plans)}: the sweep is read at budgets matched to "
                         f"{REFERENCE}'s curve; add {REFERENCE} to --methods")
    plans, points = sweep_points(base_plans, keep)
    sweep_cfg = replace(cfg, methods=None, name=run_name + results.CURVES_SUFFIX)
    ctx = RunContext.create(sweep_cfg, plans, store=store)
    runner = Runner(sweep_cfg, context=ctx)
    rank, _, _ = distributed_rank()
    if rank != 0:  # under torchrun: this rank's share of the trained points, once rank 0 has copied
        barrier()
        runner.run()
        return None
    with runner.locked():  # one writer for the whole sweep (rank 0 for all ranks): pairs, points, table
        copied = reuse_run_pairs(ctx, ctx.out.parent / run_name, plans)
        if copied:
            log.info("%d pair(s) of results/%s reused (the methods at their own settings)", copied, run_name)
        weightless = without_weights(ctx, points)
        if weightless:  # found before anything trains, not after the last trained point (a fresh clone)
            log.warning("%d trained pair(s) have evaluation-time points to evaluate and no weights here (not "
                        "committed to git): trained again first: %s", len(weightless),
                        ", ".join(f"{plan.name} seed {seed}" for plan, seed in weightless))
            for plan, seed in weightless:
                results.start_pair(ctx.pair_dir(plan, seed))
        barrier()  # every rank sees the copies before the ranks agree on the pairs left
        runner.run()
        write_points(ctx, points, base_plans, run_name, keep)
    return ctx.out


def write_points(ctx: RunContext, points: list[Point], base_plans: list[MethodPlan], run_name: str,
                 keep: int | None) -> None:
    """Evaluate the evaluation-time points still missing, those at the matched budgets too
    (``at_budgets``), and write curves.csv from every point."""
    cfg = ctx.cfg
    budget_points = at_budgets(ctx, points)
    points = points + budget_points
    rows = []
    for point in points:
        for seed in cfg.seeds:
            if point.at == "evaluation":
                found = evaluate_point(ctx, point, seed)
                where = results.point_dir(ctx.out, point.method, f"{point.knob}={point.value}", seed)
            else:
                found, where = trained_point(ctx, point, seed), ctx.pair_dir(point.plan, seed)
            rows.append({"method": point.method, "display_name": point.display, "online": point.online,
                         "knob": point.knob, "at": point.at, "point": "" if point.value is None else str(point.value),
                         "seed": seed, "map_percent": 100 * found["map"], "gflops": found["gflops"],
                         "fine_frames": found["fine_frames"], "where": where.relative_to(ctx.out).as_posix()})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    atomic_write_bytes(ctx.out / results.CURVES_CSV, table.to_csv(index=False, float_format="%.4f").encode())
    atomic_write_json(ctx.out / results.CURVES_JSON, {
        "run": run_name, "points_per_method": keep, "seeds": cfg.seeds,
        "knobs": {p.name: (json.loads(json.dumps(vars(k))) if (k := knob_of(p.cls)) else None) for p in base_plans},
        "at_budgets": {"shares": list(SHARES), "within": AT_BUDGET,
                       "values": {m: [p.value for p in budget_points if p.method == m]
                                  for m in dict.fromkeys(p.method for p in budget_points)}},
    })
