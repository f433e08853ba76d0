"""``python -m benchmark tune``: the same tuning effort for every method, on validation only.

Each method declares what may be tuned (``VideoMethod.search_space``: setting -> candidate
values). For every method, ``trials`` settings are tried (``per_method`` may give some methods
another count: reproduce evens out what a method's own studies add, so that every method ends with
the same number of selection trainings): the first is the method's current
one (its defaults, preset and config file), the others are drawn without replacement from
the grid of its search space (seeded by ``--tune-seed`` and the method's name). Every trial
trains under the run's budget on the training split minus the held-out validation part,
and is scored on that validation part: tune is a selection run (benchmark/runner.py), so the
evaluation split is never named, and no process of it (workers, torchrun ranks) can load it.
Per method, the trial the selection rule chooses (benchmark/protocol/selection.py: the cheapest within
one paired-bootstrap standard error of the highest validation mAP, seeds pooled; ties go to
the earlier trial, so the current setting wins a tie) is written as a config file that
``run --config`` takes; a trial whose record says it was scored elsewhere is refused.

Written under ``results/<name>/`` (default ``<dataset>-tune``): the trials as an ordinary
run (resumable), ``tune.md`` / ``tune.json`` (every trial, its settings and scores, the
command, each trial's validation mAP, GFLOPs and verdict) and ``tuned.json`` (the chosen settings).
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import folder_summary, provenance, results, tables
from benchmark.config import MAX_SEED, TRAIN_PREFIX, RunConfig, as_config
from benchmark.context import RunContext
from benchmark.plans import MethodPlan, plan_methods
from benchmark.protocol import learned, selection
from benchmark.runner import Runner
from benchmark.stores import dataset_label, resolve_store
from datasets.common.atomic import atomic_write_json, atomic_write_text
from datasets.common.distributed import distributed_rank
from datasets.common.errors import UsageError
from datasets.store.reader import FeatureStore
from methods.base import TrainConfig, VideoMethod

#: The columns of a tuning run's own table of its trials (the folder's table.md).
TRIAL_COLUMNS = ["Method", "mAP (%)", "Top-1 (%)", "GFLOPs/video", "Fine frames/video"]


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
            raise UsageError(f"{cls.name}.search_space: {key!r} is neither a hyper-parameter ({sorted(hparams)}) "
                             f"nor 'train.<setting>' ({sorted(train)})")
        if not isinstance(values, tuple | list) or not values:
            raise UsageError(f"{cls.name}.search_space[{key!r}] must be a non-empty tuple of candidate values")
    return kinds


def current_setting(plan: MethodPlan, space: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan's value of every searched key."""
    hparams, train = plan.full_hparams(), asdict(plan.train)
    return {key: train[key[len(TRAIN_PREFIX):]] if kind == "train" else hparams[key]
            for key, kind in search_keys(plan.cls, space).items()}


def check_trials(trials: int) -> None:
    """``--trials``: the current setting is the first trial, so at least 1."""
    if trials < 1:
        raise UsageError(f"--trials {trials}: must be at least 1")


def parse_trials(tokens: list[str]) -> tuple[int, dict[str, int]]:
    """``--trials N [METHOD=N ...]``: the count for every method, then any method's own count."""
    def count(text: str, given: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise UsageError(f"--trials {given}: not a count; give N, then METHOD=N for a method that takes "
                             "another (e.g. --trials 10 liteeval=6)") from None
        check_trials(n)
        return n

    first, *rest = tokens
    per_method: dict[str, int] = {}
    for token in rest:
        method, sep, n = token.partition("=")
        if not sep or not method:
            raise UsageError(f"--trials {token}: give METHOD=N after the count (e.g. --trials 10 liteeval=6)")
        per_method[method] = count(n, token)
    return count(first, first), per_method


def searched_spaces(space: dict[str, Any] | None, methods: list[str]) -> dict[str, dict[str, tuple[Any, ...]] | None]:
    """Each method's searched space: ``space`` for every method (setting -> candidate values), or,
    where every value of ``space`` is an object, each method's own (method -> its space: a design
    study of several methods in one tune); None: the method's declared ``search_space``."""
    if space is None:
        return dict.fromkeys(methods)
    if not isinstance(space, dict) or not space:
        raise UsageError("--space must be a JSON object of setting -> list of candidate values (or method -> such "
                         "an object)")
    def candidates(one: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {key: tuple(values) if isinstance(values, list) else values for key, values in one.items()}

    if not all(isinstance(v, dict) for v in space.values()):
        return dict.fromkeys(methods, candidates(space))
    if set(space) != set(methods):
        raise UsageError(f"--space gives the spaces of {', '.join(sorted(space))}, but the methods tuned are "
                         f"{', '.join(methods)}: give one space for each method tuned, or one for all of them")
    return {m: candidates(space[m]) for m in methods}


def trial_settings(plan: MethodPlan, trials: int, tune_seed: int,
                   space: dict[str, tuple[Any, ...]] | None = None) -> list[dict[str, Any]]:
    """The plan's current setting, then ``trials - 1`` others drawn from its grid (the
    method's ``search_space``, or ``space``)."""
    check_trials(trials)
    if not 0 <= tune_seed < MAX_SEED:
        raise UsageError(f"--tune-seed {tune_seed}: must lie in [0, 2**32)")
    space = plan.cls.search_space if space is None else space
    current = current_setting(plan, space)
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    others = [s for s in grid if s != current]
    rng = np.random.default_rng([tune_seed, zlib.crc32(plan.name.encode())])
    order = rng.permutation(len(others))
    if trials - 1 > len(others):
        raise UsageError(f"--trials {trials}: {plan.name}'s search space has only {len(others) + 1} settings")
    return [current] + [others[i] for i in order[: trials - 1]]


def apply_setting(plan: MethodPlan, setting: dict[str, Any], label: str, display: str) -> MethodPlan:
    kinds = search_keys(plan.cls, {k: (v,) for k, v in setting.items()})
    hparams = {**plan.hparams, **{k: v for k, v in setting.items() if kinds[k] == "hparam"}}
    train = replace(plan.train, **{k[len(TRAIN_PREFIX):]: v for k, v in setting.items() if kinds[k] == "train"})
    return MethodPlan(plan.spec, plan.cls, hparams, train, label=label, display=display)


@dataclass
class TuneResult:
    table: str
    config_path: Path
    ran: dict[str, dict[str, Any]]  # method -> every setting the chosen trial ran with beyond the class defaults


def given_settings(plan: MethodPlan, setting: dict[str, Any]) -> dict[str, Any]:
    """A trial's ``setting`` with what its ``plan`` sets beyond the class defaults, as a config
    file's table: a store's settings record must hold what its chosen trial ran with (a shipped
    design setting too), since a table run from the record starts from the class defaults
    (benchmark/plans.py)."""
    defaults = plan.cls.train_defaults
    train = {f"{TRAIN_PREFIX}{f.name}": getattr(plan.train, f.name) for f in fields(TrainConfig)
             if getattr(plan.train, f.name) != getattr(defaults, f.name)}
    return as_config({**plan.hparams, **train, **setting})


def tune(cfg: RunConfig, *, trials: int, tune_seed: int = 0, space: dict[str, list[Any]] | None = None,
         per_method: dict[str, int] | None = None) -> TuneResult | None:
    """Run the trials of every method of ``cfg`` (``trials`` each, or a method's count in
    ``per_method``); write and return the chosen settings.

    ``space`` replaces every method's declared search space (e.g. to compare readings of one
    method: ``--space '{"penalty": ["video", "batch"]}'``), or, keyed by method, each method's
    (``searched_spaces``). Under torchrun every rank computes
    its share of the trials and rank 0 alone chooses and writes (the other ranks return None)."""
    store = FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
    bases = plan_methods(cfg, store.manifest.name)
    spaces = searched_spaces(space, [b.name for b in bases])
    per_method = per_method or {}
    unknown = sorted(set(per_method) - {b.name for b in bases})
    if unknown:
        raise UsageError(f"--trials {' '.join(f'{m}={per_method[m]}' for m in unknown)}: not among the methods tuned "
                         f"({', '.join(b.name for b in bases)})")
    counts = {base.name: per_method.get(base.name, trials) for base in bases}
    plans: list[MethodPlan] = []
    settings: dict[str, tuple[str, int, dict[str, Any]]] = {}
    for base in bases:
        for k, setting in enumerate(trial_settings(base, counts[base.name], tune_seed, spaces[base.name])):
            label = f"{base.name}-trial{k}"
            settings[label] = (base.name, k, setting)
            shown = base.cls.shown_name()
            plans.append(apply_setting(base, setting, label, f"{shown} #{k}"))
    dataset = dataset_label(cfg.dataset, store)
    # A selection run: every trial, here, in workers or on ranks, is scored on validation (benchmark/context.py).
    cfg = replace(cfg, methods=None, name=cfg.name or f"{dataset}-tune", selection=True)
    ctx = RunContext.create(cfg, plans, store=store)  # the store opened once, for the plans and the run
    earlier = sorted(trials_of(ctx.out))
    dropped = sorted(set(earlier) - set(counts))
    if dropped and not cfg.force:  # tuned.json and tune.md hold one tune's choices: these would be lost
        raise UsageError(f"{ctx.out}: holds the choices of a tune of {', '.join(earlier)}; this tune of "
                         f"{', '.join(counts)} would replace them and lose those of {', '.join(dropped)}. Name "
                         "another folder (--name), tune those methods too, or pass --force to replace it")
    runner = Runner(cfg, context=ctx)
    rank, _, _ = distributed_rank()
    if rank != 0:  # this rank's share of the trials; rank 0 chooses once every rank is done
        runner.run(columns=TRIAL_COLUMNS)
        return None
    with runner.locked():  # the trials and tune.md/tuned.json are written under one lock
        runner.run(columns=TRIAL_COLUMNS)
        rows = trial_rows(ctx, settings)
        best = {row["method"]: row for row in rows if row["chosen"]}
        config = {method: as_config(row["setting"]) for method, row in best.items()}
        by_label = {plan.label: plan for plan in plans}
        ran = {method: given_settings(by_label[f"{method}-trial{row['trial']}"], row["setting"])
               for method, row in best.items()}
        config_path = ctx.out / results.TUNED_JSON
        atomic_write_json(config_path, config)
        atomic_write_json(ctx.out / results.TUNE_JSON, {
            results.SCHEMA_KEY: results.SCHEMA_VERSION, "command": provenance.invocation(),
            "trials_per_method": counts, "tune_seed": tune_seed, "seeds": cfg.seeds,
            "search_spaces": {b.name: {k: list(v) for k, v in (spaces[b.name] or b.cls.search_space).items()}
                              for b in bases},
            "scored_on": "validation",  # every trial's record says so (trial_rows refuses any other)
            "selection": selection.RULE,
            "validation": ctx.validation_record(ids=False),
            "budget": ctx.cfg.budget.to_dict(len(ctx.held_out.train_rows)),
            "trials": rows, "chosen": config,
        })
        table = tables.tune_markdown(rows) + (
            f"\n\n{_counted(counts)}, seeds {cfg.seeds}; chosen: {selection.RULE}. "
            f"{folder_summary.caption(ctx, with_differences=False)}\n")
        atomic_write_text(ctx.out / results.TUNE_MD, table)
        return TuneResult(table=table, config_path=config_path, ran=ran)


def trials_of(folder: Path) -> dict[str, int]:
    """The methods a tune folder chose settings for, with the trials of each (its tune.json; {}
    where it has none)."""
    data = results.read_json(folder / results.TUNE_JSON)
    counts = data.get("trials_per_method") if isinstance(data, dict) else None
    return {str(m): int(n) for m, n in counts.items()} if isinstance(counts, dict) else {}


def _counted(counts: dict[str, int]) -> str:
    """The trials per method, in words: "11 methods x 4 trials", or each method's count."""
    if len(set(counts.values())) == 1:
        return f"{len(counts)} methods x {next(iter(counts.values()))} trials"
    return "trials: " + ", ".join(f"{method} {n}" for method, n in counts.items())


def trial_rows(ctx: RunContext, settings: dict[str, tuple[str, int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every trial with its validation mAP and GFLOPs, and the selection rule's verdict per
    method (benchmark/protocol/selection.py). A trial whose record was scored on anything but the
    validation part is refused: a choice must never rest on the evaluation split."""
    records = folder_summary.records(ctx)
    wrong = [f"{label} seed {seed} ({record.evaluated_on})" for label, seeds in records.items()
             for seed, record in seeds.items() if record.evaluated_on != "validation"]
    if wrong:
        raise UsageError(f"{ctx.out}: trial(s) {', '.join(wrong)} were not scored on the validation part; tune "
                         "chooses only from validation scores. Recompute them with --force")
    rows: list[dict[str, Any]] = []
    candidates: dict[str, list[selection.Candidate]] = {}
    for label, (method, k, setting) in settings.items():
        per_seed = records[label]
        _, labels, scores = results.load_scores(ctx.out, label, per_seed)
        gflops = float(np.mean([r.gflops["mean"] for r in per_seed.values()]))
        candidates.setdefault(method, []).append(
            selection.candidate(k, scores, labels, gflops, ctx.validation_counts))
        rows.append({"method": method, "trial": k, "setting": setting,
                     "validation_map_per_seed_percent": [100 * r.map for r in per_seed.values()],
                     "did_not_learn": learned.row_verdict(per_seed)})
    verdicts = {(method, v.key): v for method, found in candidates.items() for v in selection.choose(found).verdicts}
    for row in rows:
        verdict = verdicts[row["method"], row["trial"]]
        row.update(validation_map_percent=100 * verdict.map, gflops=verdict.gflops,
                   gap_to_best_percent=100 * verdict.gap, standard_error_percent=100 * verdict.standard_error,
                   within_noise=verdict.within_noise, chosen=verdict.chosen)
    return rows
