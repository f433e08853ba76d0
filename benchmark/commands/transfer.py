"""The shipped defaults: one setting per method, chosen across stores of different shapes by one rule.

A store's own selection (benchmark/commands/tune.py) picks what fits that store. What a method
starts from on a store nobody has chosen on (the first trial of that store's selection, and the
settings of a try-out store) should instead be what holds up across stores (issue 43: settings
chosen on the default store alone left seven of eleven methods far below their reach on a small
one). So the same candidates of each method are trained on several stores, each scored on that
store's validation part only, and one setting per method is chosen by ``RULE``:

1. on every store, each candidate's verdict is the store's own selection rule's
   (benchmark/protocol/selection.py, as its tune recorded it): its gap to the store's best
   validation mAP, that gap's paired-bootstrap standard error, and whether it is within the noise;
2. among the candidates within the noise on *every* store, the chosen one is the cheapest by its
   cost relative to each store's best candidate (validation GFLOPs per video over the best's,
   averaged over stores); ties: the smaller worst gap, then the earlier trial;
3. where no candidate is within the noise everywhere, the chosen one has the best worst case:
   the smallest largest gap over the stores; ties: the cheaper, then the earlier;
4. a candidate that did not learn on some store (benchmark/protocol/learned.py, as its tune
   recorded) is chosen only where every candidate did not learn on some store: a default must
   not be one that collapsed somewhere (found: FastForward's best worst case memorised `small`).

On one store the rule is that store's own selection rule. Every method gets the same effort: the
same candidates on every store (``python -m benchmark tune --tune-seed 0 --no-presets``, so the
candidates are the class defaults and the same draws from the method's search space, in the same
order whatever the number drawn). Where one store's tune drew more trials of a method than
another's (the default store's tune evens out its studies: benchmark/reproduce.py), the method's
candidates are the trials every store holds, the first ones, and each store's verdicts on them are
computed again among those alone from the trials' validation scores, as a tune of that many trials
records them. The tunes' records are read, never retrained; a tune scored on anything but
validation, or whose candidates differ from another store's, is refused.

``python -m benchmark transfer RUN RUN ...`` writes results/<name>/: ``transfer.json`` (the stores,
the rule, every candidate's numbers on every store and its verdict), ``transfer.md`` (each
method's validation mAP on each store, and every candidate), and ``tuned.json`` (the chosen
settings, a config file). methods/shipped.py repeats the choice (a test holds it to the record).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import provenance, tables
from benchmark.config import as_config
from benchmark.protocol import selection
from benchmark.results import (
    GROUP,
    PROVENANCE,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    TRANSFER_JSON,
    TRANSFER_MD,
    TUNE_JSON,
    TUNED_JSON,
    load_scores,
    read_current,
    read_json,
)
from datasets.common.atomic import atomic_write_json, atomic_write_text
from datasets.common.errors import UsageError
from datasets.common.gitinfo import git_state

#: What every record of a choice across stores says about how it was made (module docstring).
RULE = ("the same candidates on every store, each store's verdicts by its own selection rule (validation only, "
        "one paired-bootstrap standard error); among the candidates that learned on every store (all of them where "
        "none did), those within the noise on every store, the cheapest by GFLOPs relative to each store's best "
        "candidate, averaged over the stores (ties: the smaller worst gap, then the earlier trial); where none is, "
        "the smallest worst gap over the stores (ties: the cheaper, then the earlier)")
#: Where transfer.json names the tunes it read (one per store, in order).
TUNES_KEY = "tunes"
#: The budget rule every tune must share (the total steps follow from each store's size).
SHARED_BUDGET = ("batch_size", "epochs", "min_steps", "patience", "steps", "validations")


@dataclass(frozen=True)
class StoreTrials:
    """One store's tune, as its records hold it."""

    run: str  # the tune's results folder name (several: joined by GROUP)
    store: str  # the store's name
    fingerprint: str | None
    validation_videos: int | None
    tune: dict[str, Any]  # the tune's tune.json (several: their trials together)
    folders: dict[str, Path] = field(default_factory=dict)  # method -> where its trials' pairs are (for ``first``)

    def trials(self, method: str) -> list[dict[str, Any]]:
        return sorted((t for t in self.tune["trials"] if t["method"] == method), key=lambda t: t["trial"])

    def first(self, method: str, n: int) -> list[dict[str, Any]]:
        """The method's first ``n`` trials, with the verdicts a tune of ``n`` trials records: its
        own where it drew ``n``, else computed again among those ``n`` from their pairs' scores."""
        rows = self.trials(method)
        if len(rows) == n:
            return rows
        folder = self.folders.get(method)
        if folder is None:
            raise UsageError(f"{self.run}: its pairs are needed to compare its first {n} trials of {method}")
        rows, counts, found = rows[:n], None, []
        for row in rows:
            _, labels, scores = load_scores(folder, f"{method}-trial{row['trial']}", self.tune["seeds"])
            counts = selection.resample_counts(scores.shape[1]) if counts is None else counts
            found.append(selection.candidate(row["trial"], scores, labels, row["gflops"], counts))
        return [{**row, "validation_map_percent": 100 * v.map, "gap_to_best_percent": 100 * v.gap,
                 "standard_error_percent": 100 * v.standard_error, "within_noise": v.within_noise,
                 "chosen": v.chosen} for row, v in zip(rows, selection.choose(found).verdicts, strict=True)]


@dataclass(frozen=True)
class Standing:
    """One candidate of one method across the stores, and what the rule made of it."""

    trial: int
    setting: dict[str, Any]
    maps: tuple[float, ...]  # validation mAP (%) on each store
    gaps: tuple[float, ...]  # the store's best's mAP minus this one's (points)
    errors: tuple[float, ...]  # each gap's paired-bootstrap standard error (points)
    within: tuple[bool, ...]  # within the noise on each store
    relative_cost: float  # validation GFLOPs over each store's best candidate's, averaged
    learned: bool = True  # no store's tune marked it "did not learn"
    chosen: bool = False

    @property
    def worst_gap(self) -> float:
        return max(self.gaps)

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "setting": self.setting, "validation_map_percent": list(self.maps),
                "gap_to_best_percent": list(self.gaps), "standard_error_percent": list(self.errors),
                "within_noise": list(self.within), "worst_gap_percent": self.worst_gap,
                "relative_cost": self.relative_cost, "learned": self.learned,
                "chosen": self.chosen}


def read_store(tunes: Path | Sequence[Path]) -> StoreTrials:
    """One store's tune (``python -m benchmark tune``), or its several tunes read as one (the default
    store's design studies are one tune per method): refused where one is not a tune scored on
    validation, where they tuned other stores, other rules or the same method twice."""
    parts = [_read_tune(tunes)] if isinstance(tunes, Path) else [_read_tune(folder) for folder in tunes]
    first = parts[0]
    methods: dict[str, Path] = {}  # method -> the tune of this store that holds its trials
    for part in parts:
        if part.fingerprint != first.fingerprint:
            raise UsageError(f"{part.run} tuned {part.store}, {first.run} {first.store}: the tunes joined by "
                             f"{GROUP!r} are one store's")
        for key in ("seeds", "tune_seed", "budget", "validation"):
            if part.tune.get(key) != first.tune.get(key):
                raise UsageError(f"{part.run}: its {key} is not {first.run}'s; the tunes of one store joined by "
                                 f"{GROUP!r} follow the same rules")
        for method in dict.fromkeys(t["method"] for t in part.tune["trials"]):
            if method in methods:
                raise UsageError(f"{method} is tuned by both {methods[method].name} and {part.run}: name one tune "
                                 "of each method per store")
            methods[method] = part.folders[method]
    if len(parts) == 1:
        return first
    return replace(first, run=GROUP.join(p.run for p in parts), folders=methods,
                   tune={**first.tune, "trials": [t for p in parts for t in p.tune["trials"]]})


def _read_tune(folder: Path) -> StoreTrials:
    tune = read_current(folder / TUNE_JSON)
    if not isinstance(tune, dict) or "trials" not in tune:
        raise UsageError(f"{folder}: no {TUNE_JSON}; name the folders of `python -m benchmark tune` runs, one per "
                         "store")
    if tune.get("scored_on") != "validation":
        raise UsageError(f"{folder}: its trials were scored on {tune.get('scored_on')!r}; a choice rests on validation "
                         "scores only. Tune again (`python -m benchmark tune ... --refresh`)")
    dataset = (read_json(folder / PROVENANCE) or {}).get("dataset") or {}
    validation = tune.get("validation") or {}
    return StoreTrials(run=folder.name, store=str(dataset.get("name") or folder.name),
                       fingerprint=dataset.get("fingerprint"), validation_videos=validation.get("num_videos"),
                       tune=tune, folders=dict.fromkeys((t["method"] for t in tune["trials"]), folder))


def check_comparable(stores: list[StoreTrials]) -> list[str]:
    """The methods every store tuned, after refusing what the rule cannot compare."""
    if len(stores) < 2:
        raise UsageError("transfer: name at least two tunes, each on another store (the shipped defaults are chosen "
                         "on three: results/shipped-defaults)")
    seen: dict[str, str] = {}
    for s in stores:
        key = s.fingerprint or s.run
        if key in seen:
            raise UsageError(f"{s.run} and {seen[key]} tuned the same store ({s.store}): name one tune per store")
        seen[key] = s.run
    first = stores[0]
    for s in stores[1:]:
        for key in SHARED_BUDGET + ("tune_seed",):
            mine = s.tune.get(key, (s.tune.get("budget") or {}).get(key))
            theirs = first.tune.get(key, (first.tune.get("budget") or {}).get(key))
            if mine != theirs:
                raise UsageError(f"{s.run}: {key} {mine!r}, but {first.run} {theirs!r}; every store's tune must follow "
                                 "the same rules (the same effort for every method on every store)")
    methods = list(dict.fromkeys(t["method"] for t in first.tune["trials"]))
    missing = {s.run: sorted(set(methods) - {t["method"] for t in s.tune["trials"]}) for s in stores}
    missing = {run: m for run, m in missing.items() if m}
    if missing:
        raise UsageError("transfer: every store's tune must try the same methods; missing: "
                         + "; ".join(f"{run}: {', '.join(m)}" for run, m in missing.items()))
    for method in methods:
        n = shared_trials(stores, method)
        ours = [t["setting"] for t in first.trials(method)[:n]]
        for s in stores[1:]:
            theirs = [t["setting"] for t in s.trials(method)[:n]]
            if theirs != ours:
                raise UsageError(f"{method}: {s.run} tried {theirs}, {first.run} {ours}; the rule compares the same "
                                 "candidates on every store: tune each with the same --trials and --tune-seed and "
                                 "--no-presets (the class defaults first)")
    return methods


def shared_trials(stores: list[StoreTrials], method: str) -> int:
    """How many trials of ``method`` every store holds: its candidates are the first ones."""
    return min(len(s.trials(method)) for s in stores)


def standings(stores: list[StoreTrials], method: str) -> list[Standing]:
    """Every candidate of ``method`` across ``stores``, the chosen one marked (module docstring)."""
    n = shared_trials(stores, method)
    per_store = [s.first(method, n) for s in stores]
    best_cost = [next(t for t in trials if t["gap_to_best_percent"] == 0.0)["gflops"] or 1.0 for trials in per_store]
    found = []
    for k, first in enumerate(per_store[0]):
        rows = [trials[k] for trials in per_store]
        found.append(Standing(
            trial=first["trial"], setting=first["setting"],
            maps=tuple(r["validation_map_percent"] for r in rows), gaps=tuple(r["gap_to_best_percent"] for r in rows),
            errors=tuple(r["standard_error_percent"] for r in rows),
            within=tuple(bool(r["within_noise"]) for r in rows),
            relative_cost=sum(r["gflops"] / c for r, c in zip(rows, best_cost, strict=True)) / len(rows),
            learned=not any(r.get("did_not_learn") for r in rows)))
    pool = [s for s in found if s.learned] or found
    everywhere = [s for s in pool if all(s.within)]
    if everywhere:
        pick = min(everywhere, key=lambda s: (s.relative_cost, s.worst_gap, s.trial))
    else:
        pick = min(pool, key=lambda s: (s.worst_gap, s.relative_cost, s.trial))
    return [replace(s, chosen=s is pick) for s in found]


@dataclass(frozen=True)
class Choice:
    stores: list[StoreTrials]
    methods: dict[str, list[Standing]]

    def chosen(self, method: str) -> Standing:
        return next(s for s in self.methods[method] if s.chosen)

    def config(self) -> dict[str, dict[str, Any]]:
        """The chosen settings as a config file (what ``run --config`` takes)."""
        return {method: as_config(self.chosen(method).setting) for method in self.methods}


def choose(folders: Sequence[Path | Sequence[Path]]) -> Choice:
    """The choice across stores, each one tune's folder or one store's several (``read_store``)."""
    stores = [read_store(folder) for folder in folders]
    methods = check_comparable(stores)
    return Choice(stores, {method: standings(stores, method) for method in methods})


def markdown(choice: Choice, shown: dict[str, str] | None = None) -> str:
    """Each method's validation mAP on each store under the chosen setting, then every candidate."""
    shown = shown or {}
    names = [f"{s.store} ({s.validation_videos} val.)" if s.validation_videos else s.store for s in choice.stores]
    summary, every = [], []
    for method, found in choice.methods.items():
        pick = choice.chosen(method)
        best = [max(s.maps[i] for s in found) for i in range(len(names))]
        summary.append({"Method": shown.get(method, method), "Chosen (trial)": f"{tables.setting_text(pick.setting)} "
                        f"(#{pick.trial})",
                        **{n: f"{m:.1f} (best {b:.1f})" for n, m, b in zip(names, pick.maps, best, strict=True)},
                        "Within noise on": f"{sum(pick.within)} of {len(names)}",
                        "Worst gap": f"{pick.worst_gap:.1f}"})
        for s in found:
            every.append({"Method": shown.get(method, method), "#": str(s.trial),
                          "Setting": tables.setting_text(s.setting),
                          **{n: f"{m:.1f}{'' if w else ' (out)'}" for n, m, w in zip(names, s.maps, s.within,
                                                                                      strict=True)},
                          "Learned everywhere": "yes" if s.learned else "no",
                          "Worst gap": f"{s.worst_gap:.1f}", "Relative cost": f"{s.relative_cost:.2f}",
                          "Chosen": "yes" if s.chosen else ""})
    runs = ", ".join(" + ".join(f"results/{run}" for run in s.run.split(GROUP)) for s in choice.stores)
    return ("Validation mAP (%) of each method's chosen setting on each store (the best candidate's in brackets):\n\n"
            + pd.DataFrame(summary).to_markdown(index=False, disable_numparse=True)
            + "\n\nEvery candidate (validation mAP (%) on each store; `(out)`: not within one standard error of that "
            "store's best; relative cost: validation GFLOPs over each store's best candidate's, averaged):\n\n"
            + pd.DataFrame(every).to_markdown(index=False, disable_numparse=True)
            + f"\n\nFrom {runs}: {len(choice.stores)} stores, {_candidates(choice)} of each method on each, seed(s) "
            f"{choice.stores[0].tune.get('seeds')}. Chosen by {RULE}.\n")


def _per_method(choice: Choice) -> int | dict[str, int]:
    """The candidates of each method: one count where every method has as many."""
    counts = {method: len(found) for method, found in choice.methods.items()}
    return next(iter(counts.values())) if len(set(counts.values())) == 1 else counts


def _candidates(choice: Choice) -> str:
    """The candidates per method, in words: "4 trials", or each method's count where they differ."""
    counts = _per_method(choice)
    if isinstance(counts, int):
        return f"{counts} trials"
    return "the trials (" + ", ".join(f"{m} {n}" for m, n in counts.items()) + ")"


def write(choice: Choice, out: Path, *, force: bool = False, shown: dict[str, str] | None = None) -> str:
    """Write results/<name>/ (module docstring); refuse to replace a choice made from other tunes."""
    tunes = [s.run for s in choice.stores]
    earlier = read_json(out / TRANSFER_JSON)
    if isinstance(earlier, dict) and earlier.get(TUNES_KEY) != tunes and not force:
        raise UsageError(f"{out}: already holds a choice from {earlier.get(TUNES_KEY)}; pass --force to replace it "
                         f"with one from {tunes}, or --name another folder")
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(choice, shown)
    atomic_write_json(out / TUNED_JSON, choice.config())
    atomic_write_json(out / TRANSFER_JSON, {
        SCHEMA_KEY: SCHEMA_VERSION, "command": provenance.invocation(), "git": git_state(), "rule": RULE,
        TUNES_KEY: tunes,
        "stores": [{"run": s.run, "name": s.store, "fingerprint": s.fingerprint,
                    "validation_videos": s.validation_videos, "budget": s.tune.get("budget")} for s in choice.stores],
        "trials_per_method": _per_method(choice),
        "tune_seed": choice.stores[0].tune.get("tune_seed"), "seeds": choice.stores[0].tune.get("seeds"),
        "methods": {m: [s.to_dict() for s in found] for m, found in choice.methods.items()},
        "chosen": choice.config(),
    })
    atomic_write_text(out / TRANSFER_MD, table)
    return table
