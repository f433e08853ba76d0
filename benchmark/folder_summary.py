"""A results folder's summary: every pair's record, the differences, the caption, the tables.

``write(ctx)`` reads the records of the run's pairs (and of every other pair of the folder
computed under the same protocol, so the table covers the folder), computes each row's paired
bootstrap difference to Uniform, and writes the folder's summary (metrics.json), its
provenance and its tables, with the caption and the marks a table owes (stale rows, methods
that did not learn, failed pairs). Nothing here trains or evaluates.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np

from benchmark import provenance, results, tables
from benchmark import store_settings as settings
from benchmark.config import available_cores
from benchmark.context import RunContext
from benchmark.measurement import bootstrap, costs
from benchmark.plans import MethodPlan
from benchmark.protocol import learned
from benchmark.record import PairRecord
from datasets.common.atomic import atomic_write_json
from datasets.sources.ingest import DECLARED_KEY
from methods.registry import is_builtin

Records = dict[str, dict[str, PairRecord]]


#: The key of ``write``'s texts that holds what a command prints (the table's main columns).
TERMINAL = "terminal"


def records(ctx: RunContext, failed: set[str] | frozenset[str] = frozenset()) -> Records:
    """Every pair of the run's saved record, by method and seed (not the methods in ``failed``)."""
    found: Records = {}
    for plan in ctx.plans:
        if plan.name in failed:
            continue
        for seed in ctx.cfg.seeds:
            folder = ctx.pair_dir(plan, seed)
            if not results.record_path(folder).is_file():
                raise RuntimeError(f"{folder}: no {results.RECORD} after the pair was computed")
            found.setdefault(plan.name, {})[str(seed)] = PairRecord.load(results.record_path(folder))
    return found


def other_pairs(ctx: RunContext) -> tuple[Records, dict[str, str]]:
    """Pairs in the folder that this invocation did not ask for (e.g. an earlier run with
    other --methods): the methods to tabulate too (every seed of this run there, complete,
    computed with the same dataset, split, validation part and budget) and, for the rest,
    why they are left out. The table of a folder thus covers every pair in it or says
    which it leaves out, and never shrinks silently to the last command's methods."""
    seeds_asked = ctx.cfg.seeds
    asked = {(p.name, seed) for p in ctx.plans for seed in seeds_asked}
    found: dict[str, list[int]] = {}
    for name, seed in results.pairs_on_disk(ctx.out):
        if (name, seed) not in asked:
            found.setdefault(name, []).append(seed)
    shared = ("dataset", "train_split", "validation", "eval_split", "budget")
    identity = ctx.identity(ctx.plans[0], seeds_asked[0]) if ctx.plans else {}
    expected = json.loads(json.dumps({k: identity.get(k) for k in shared}))
    include: Records = {}
    left_out: dict[str, str] = {}
    for name, seeds in sorted(found.items()):
        label = f"{name} (seeds {', '.join(map(str, sorted(seeds)))})"
        if name in {p.name for p in ctx.plans}:
            left_out[label] = f"seeds outside this run's {seeds_asked}"
            continue
        missing = [s for s in seeds_asked if s not in seeds]
        if missing:
            left_out[label] = f"no result for seed(s) {missing} of this run"
            continue
        kept, reason = {}, ""
        for seed in seeds_asked:
            folder = results.pair_dir(ctx.out, name, seed)
            state = results.pair_state(folder)
            if not state.done:
                reason = f"seed {seed}: {state.reason}"
                break
            differing = [k for k in shared if (state.config or {}).get(k) != expected[k]]
            if differing:
                reason = f"computed with another {', '.join(differing)}"
                break
            kept[str(seed)] = PairRecord.load(results.record_path(folder))
        if reason:
            left_out[label] = reason
        else:
            include[name] = kept
    return include, left_out


def resampled_maps(per_method: dict[str, np.ndarray], labels: np.ndarray,
                   counts: np.ndarray) -> dict[str, np.ndarray]:
    """``bootstrap.resampled_maps`` of every method, the methods in threads: numpy releases the
    GIL in the sorts, gathers and cumulative sums that are almost all of it, so the run's cores,
    idle once its pairs are done, share the table's 1000 resamples (each method's draws are
    computed as in one thread: the same numbers)."""
    workers = max(1, min(len(per_method), available_cores()))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(bootstrap.resampled_maps, scores, labels, counts)
                   for name, scores in per_method.items()}
        return {name: future.result() for name, future in futures.items()}


def differences(ctx: RunContext, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each method's mAP difference to the table's baseline with its paired bootstrap
    interval over the evaluated videos, seeds pooled (benchmark/measurement/bootstrap.py)."""
    if tables.BASELINE not in names or ctx.selection:
        return {}
    per_method: dict[str, np.ndarray] = {}
    labels: np.ndarray | None = None
    ids: np.ndarray | None = None
    for name in names:
        videos, labels, per_method[name] = results.load_scores(ctx.out, name, ctx.cfg.seeds)
        if ids is None:
            ids = videos
        elif not np.array_equal(ids, videos):
            raise RuntimeError(f"{name}: scored other videos than the rest of the run")
    if ids is None or labels is None:
        return {}
    counts = bootstrap.resample_counts(bootstrap.resample_indices(len(ids)), len(ids))
    draws = resampled_maps(per_method, labels, counts)
    base = tables.BASELINE
    return {
        name: bootstrap.paired_difference(per_method[name], per_method[base], labels, counts,
                                          method_draws=draws[name], reference_draws=draws[base]).to_dict()
        for name in names if name != base
    }


def caption(ctx: RunContext, *, with_differences: bool, left_out: dict[str, str] | None = None) -> str:
    """What the table is: data, splits, evaluation, seeds, budget, intervals, what it leaves out."""
    n_train = len(ctx.held_out.train_rows)
    seeds = ctx.cfg.seeds
    evaluated = (f"scored on the {len(ctx.held_out.val_rows)} validation videos (tuning: the evaluation split "
                 "was not read)" if ctx.eval_split is None else
                 f"evaluated once on {ctx.eval_split} ({ctx.store.manifest.splits[ctx.eval_split].num_videos} "
                 "videos)")
    spread = (f"mean ± std over {len(seeds)} seeds {seeds}" if len(seeds) > 1 else
              f"one seed ({seeds[0]}): no spread, no conclusion")
    delta = (f" Δ mAP vs Uniform: paired bootstrap {int(100 * bootstrap.CONFIDENCE)}% interval over the evaluated "
             f"videos ({bootstrap.RESAMPLES} resamples), seeds pooled." if with_differences else "")
    outside = ("" if not left_out else " Also in this folder, not in the table: "
               + "; ".join(f"{pair}: {why}" for pair, why in left_out.items()) + ".")
    return (
        f"{ctx.store.manifest.name}: trained on {ctx.train_split} minus a held-out validation part "
        f"({n_train} + {len(ctx.held_out.val_rows)} videos; selection on the held-out part only), "
        f"{evaluated}; {spread}. Budget: {ctx.cfg.budget.describe(n_train)}.{delta}{outside}{declared_costs(ctx)}"
        f"{unused_words(ctx)}"
    )


def unused_words(ctx: RunContext) -> str:
    """The caption's sentence (and the run's warning) for labelled splits the table does not use."""
    unused = ctx.unused_splits
    if not unused:
        return ""
    named = ", ".join(f"{name} ({n} videos)" for name, n in unused.items())
    return (f" Not used: the store's labelled split{'s' if len(unused) > 1 else ''} {named}; selection is "
            f"on the part held out of {ctx.train_split}, as on every store (--eval-split NAME evaluates on another "
            "split).")


def declared_costs(ctx: RunContext) -> str:
    """The caption's sentence for features ingested, not extracted here: their costs are those of
    the backbones declared to ingest, which the features' widths may contradict."""
    ingested = {s: spec for s, spec in ctx.store.manifest.streams.items()
                if s in ctx.streams and (spec.provenance or {}).get("kind") == "ingest"}
    if not ingested:
        return ""
    given = {s: spec.provenance[DECLARED_KEY] for s, spec in ingested.items()
             if isinstance(spec.provenance.get(DECLARED_KEY), dict)}
    named = ", ".join(f"{s}: {spec.backbone}@{spec.resolution}" + (
        f", {given[s]['gmacs']:g} GMACs per frame declared ({given[s]['source']})" if s in given else "")
        for s, spec in ingested.items())
    contradicted = [f"{s} ({spec.provenance['width_mismatch']})" for s, spec in ingested.items()
                    if spec.provenance.get("width_mismatch")]
    text = f" Costs are those of the backbones declared when the features were ingested ({named}), not verified."
    if given:
        text += (f" The {' and '.join(given)} cost{'s' if len(given) > 1 else ''} could not be counted here (a "
                 "backbone the suite cannot build): as declared, as the field's papers report them.")
    if contradicted:
        text += (f" The features' widths contradict the declaration for {'; '.join(contradicted)}: these costs are "
                 "not the features' own.")
    return text


def latency(ctx: RunContext) -> dict[str, Any] | None:
    """The folder's latency record (benchmark/commands/latency.py) when it was measured on this dataset."""
    record = results.read_json(ctx.out / results.LATENCY_JSON)
    if not isinstance(record, dict) or (record.get("dataset") or {}).get("fingerprint") != ctx.fingerprint:
        return None
    return {**record, "device_label": tables.device_label(record)}


def plugin_source(ctx: RunContext, plan: MethodPlan) -> dict[str, Any]:
    """For a plug-in, where its code came from: its file and that file's hash, and the installed
    package with its version for an entry point (each pair's record has the full fingerprint)."""
    if is_builtin(plan.cls):
        return {}
    code = ctx.code(plan)
    source = {"file": code["method_file"], "sha256": code["files"].get(code["method_file"])}
    return {"source": {**source, **({"package": code["package"]} if "package" in code else {})}}


def provenance_of(ctx: RunContext, execution: dict[str, Any]) -> dict[str, Any]:
    """This invocation's provenance; each pair's own is in its record ("computed")."""
    n_train = len(ctx.held_out.train_rows)
    return {
        "written": provenance.now(),
        "command": provenance.invocation(),
        "note": "describes the last invocation; each pair's record (runs/<method>/seed<k>/) says where its result was "
                "computed ('computed'), since a resumed run keeps earlier results",
        "config": ctx.cfg.to_dict(),
        "seeds": ctx.cfg.seeds,
        "budget": {**ctx.cfg.budget.to_dict(n_train), "rule": ctx.cfg.budget.describe(n_train)},
        "validation": ctx.validation_record(ids=True),
        "methods": {p.name: {"spec": p.spec, "class": f"{p.cls.__module__}:{p.cls.__qualname__}",
                             "hparams": p.full_hparams(), "train": asdict(p.train), **plugin_source(ctx, p)}
                    for p in ctx.plans},
        "dataset": {
            "path": str(ctx.store.path.resolve()),
            "name": ctx.store.manifest.name,
            "fingerprint": ctx.fingerprint,
            "provenance": ctx.store.manifest.provenance,
            "train_split": ctx.train_split,
            "eval_split": "validation (held out of the training split)" if ctx.selection else ctx.eval_split,
        },
        "cost_model": {"per_frame_gmacs": ctx.per_frame, "backend": costs.COST_BACKEND},
        "execution": execution,
        "unchecked_plugins": ctx.unchecked,
        "platform": ctx.platform,
        **ctx.environment,
    }


def write(ctx: RunContext, columns: list[str] | None = None, *,
          execution: dict[str, Any] | None = None, failed: dict[str, str] | None = None) -> dict[str, str]:
    """The folder's summary (metrics.json), provenance and tables, from every pair's saved record;
    the tables' texts are returned. ``execution`` (how this invocation computed its pairs) writes
    provenance.json; without it (``python -m benchmark latency``, which only adds a column) the
    folder's provenance.json, which describes the run that computed the table, is kept. ``failed``
    ("method seed k" -> why): pairs that failed; their methods have no row, and the marks say why."""
    failed = failed or {}
    failed_methods = {p.name for p in ctx.plans for key in failed if key.rsplit(" seed ", 1)[0] == p.name}
    found = records(ctx, failed_methods)
    others, left_out = other_pairs(ctx)
    found.update(others)
    online = {p.name: p.cls.online for p in ctx.plans}
    online.update({name: next(iter(seeds.values())).online for name, seeds in others.items()})
    diffs = differences(ctx, list(found))
    measured = latency(ctx)
    origin = settings.Origin.from_dict(ctx.cfg.settings_origin)
    summary = tables.summary_frame(found, online, {p.name: p.display or p.cls.shown_name() for p in ctx.plans},
                                   diffs, measured, origin.marked() if origin else None)
    document: dict[str, Any] = {results.SCHEMA_KEY: results.SCHEMA_VERSION,
                                "summary": tables.summary_records(summary, diffs),
                                "per_seed": {name: {seed: r.to_json() for seed, r in seeds.items()}
                                             for name, seeds in found.items()}}
    if left_out:
        document["left_out"] = left_out
    if failed:
        document["failed"] = failed
    atomic_write_json(ctx.out / results.SUMMARY, document)
    if execution is not None:
        atomic_write_json(ctx.out / results.PROVENANCE, provenance_of(ctx, execution))
    text = caption(ctx, with_differences=bool(diffs), left_out=left_out)
    if origin is not None:
        text += " " + origin.sentence()
    if measured is not None:
        text += " " + tables.caption_note(measured)
    stale = {r["display_name"]: r["stale"] for r in summary.to_dict("records") if tables.is_stale(r)}
    marks = [tables.stale_note(stale, len(summary)),
             learned.note({r["display_name"]: r["did_not_learn"] for r in summary.to_dict("records")
                           if tables.did_not_learn(r)})]
    if ctx.unchecked:
        names = {p.name: p.display or p.cls.shown_name() for p in ctx.plans}
        marks.append("Not checked: " + "; ".join(
            f"{names.get(name, name)} is a plug-in that failed the conformance check ({problem}) and was trained "
            "with --unchecked, so its numbers may not be what they claim" for name, problem in ctx.unchecked.items())
            + ".")
    marks.append(tables.failed_note(failed))
    texts = tables.write_tables(summary, ctx.out, text, columns=columns, marks=" ".join(filter(None, marks)))
    return {**texts, TERMINAL: tables.terminal_table(texts[results.TABLE_MD], ctx.out / results.TABLE_MD)}
