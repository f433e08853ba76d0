"""``python -m benchmark run`` on a store: its own settings, chosen first where it has none.

Users run the suite on their own features, and the table it gives them is what they cite. Where
the methods' settings were chosen on another store, a method may be left untrained on theirs and
its row would not say so (issue 43). So the default path of ``run`` is the fair one:

1. the store's own settings record (benchmark/store_settings.py), found by its fingerprint and
   the run's validation carve (--val-fraction, --val-seed), covers every method of the run: the
   run trains with it;
2. it covers some or none: ``run`` first chooses the missing methods' settings on the store's
   validation part, as ``python -m benchmark reproduce``'s tune does (``SELECTION_TRIALS``
   trials of each method's search space, seed 0, the run's budget, the cheapest within noise
   of the best), into results/<store>-tune, writes the record, then trains the table with it.
   The tune resumes pair by pair like any run, and prints its plan and ETA as one; under torchrun
   the ranks share its trials and rank 0 writes the record every rank reads. Methods a
   later run adds (a plug-in added to a table) get a selection of their own,
   results/<store>-tune-<methods>, with as many trials as the record's methods rest on
   selection trainings (``store_settings.matched_trials``: 10 on the default store);
3. ``--settings-from NAME`` uses another store's record on purpose: the caption and every row
   it covers say whose settings they are;
4. a try-out store (``tiny``) is too small to choose on: the shipped defaults (chosen across
   stores: methods/shipped.py), said in the caption.

Every selection on a new store starts from the shipped defaults (its first trial), the others drawn
from each method's search space; the shipped design settings (readings, architectures) hold for
every trial, and the store's record keeps them beside the choice (``tune.given_settings``).

Settings given by hand (``--config``, ``--no-presets``) are used as given, as before: that is
what ``reproduce`` and the studies run with. Where ``--config`` is a store's settings record
(reproduce's stages), the run says where it was chosen and on how many selection trainings each
method's settings rest, as ``--settings-from`` would (a method it does not cover: none).
Presets set by hand for a dataset's name (a paper's settings for FCVID) still apply beneath the
record; presets *chosen* on a store do not (the record holds the choices of the store they were
chosen on; ``RunConfig.named_choices``).

Choosing first rather than refusing, because the fair table is what a user came for: refusing
would hand them a second command to find and type, and the cheaper unfair path (another store's
settings) stays one flag away, marked.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmark import store_settings as settings
from benchmark.config import RunConfig
from benchmark.plans import MethodPlan, plan_methods
from benchmark.stores import dataset_fingerprint, dataset_label, resolve_store
from datasets.common.distributed import barrier
from datasets.common.errors import UsageError
from datasets.store.reader import FeatureStore

log = logging.getLogger(__name__)


def settle(cfg: RunConfig, settings_from: str | None = None) -> RunConfig:
    """``cfg`` with the settings its store is run with (module docstring), choosing them first where
    the store has none for some of its methods."""
    given = cfg.config_file is not None or not cfg.presets
    if settings_from is not None and given:
        raise UsageError("--settings-from: the settings are already given by "
                         f"{'--config' if cfg.config_file else '--no-presets'}; use one of them")
    if cfg.selection:
        return cfg
    record = settings.read(Path(cfg.config_file)) if cfg.config_file is not None else None
    if given and (record is None or record.fingerprint is None):  # settings by hand: nothing to say of them
        return cfg
    store = FeatureStore.open(resolve_store(cfg.dataset, cfg.data_seed, show_progress=cfg.show_progress))
    fingerprint, label = dataset_fingerprint(store), dataset_label(cfg.dataset, store)
    validation = settings.carve(cfg.val_fraction, cfg.val_seed)
    root = Path(cfg.results_root)
    plans = plan_methods(replace(cfg, named_choices=False), store.manifest.name)
    if given and record is not None:  # a store's settings record as --config (reproduce's stages): said as such
        return replace(cfg, settings_origin=_origin(record, fingerprint, validation, plans).to_dict())
    if settings_from is not None:
        record = settings.named(root, settings_from)
        origin = _origin(record, fingerprint, validation, plans)
        if origin.kind == "own" and origin.uncovered:  # its own record, partly: choose the rest as on the default path
            return _own(cfg, label, fingerprint, validation, root, plans)
        return _with(cfg, record, origin)
    preset = (store.manifest.provenance or {}).get("preset")
    if (store.manifest.provenance or {}).get("kind") == "synthetic" and preset in settings.TRY_OUT_PRESETS:
        videos = sum(split.num_videos for split in store.manifest.splits.values())
        why = f"{preset} is a store for trying the harness out, too small to choose settings on ({videos} videos)"
        return replace(cfg, named_choices=False, settings_origin=settings.Origin("defaults", why=why).to_dict())
    return _own(cfg, label, fingerprint, validation, root, plans)


def _origin(record: settings.Record, fingerprint: str, validation: dict[str, Any],
            plans: list[MethodPlan]) -> settings.Origin:
    """How a run on the store (``fingerprint``, its ``validation`` carve) of ``plans`` with the
    settings of ``record`` is described: chosen here ("own") or on another store or carve ("other"),
    and the selection trainings behind each method's settings (none for a method it does not cover)."""
    kind = "own" if record.fingerprint == fingerprint and record.validation == validation else "other"
    covered = tuple(p.name for p in plans if p.name in record.methods)
    store_label = record.store
    if kind == "other" and record.fingerprint == fingerprint:  # this store, another validation carve
        carve = record.validation or {}
        store_label = (f"{record.store}, validation part {carve.get('fraction', '?')} seed {carve.get('seed', '?')}"
                       if carve else f"{record.store}, validation part not recorded")
    return settings.Origin(kind, store=store_label, record=str(record.path), chosen_by=record.chosen_by,
                           methods=covered, uncovered=tuple(p.name for p in plans if p.name not in covered),
                           effort=_effort(record, tuple(p.name for p in plans)))


def _with(cfg: RunConfig, record: settings.Record, origin: settings.Origin) -> RunConfig:
    return replace(cfg, named_choices=False, config_file=str(record.path), settings_origin=origin.to_dict())


def _own(cfg: RunConfig, label: str, fingerprint: str, validation: dict[str, Any], root: Path,
         plans: list[MethodPlan]) -> RunConfig:
    """The store's own record for this carve, after choosing the settings of the methods it lacks
    (and, under --refresh, choosing again where ``run`` chose them: each of its selections resumes,
    keeping its current trials and computing its stale ones again, and the record takes what it
    chooses now)."""
    from benchmark.commands.tune import trials_of

    record = settings.find(root, fingerprint, validation)
    path = record.path if record is not None else settings.path_for(root, label, fingerprint, validation)
    missing = [p for p in plans if record is None or p.name not in record.methods]
    if missing:
        lacking, specs = [p.name for p in missing], [p.spec for p in missing]
        # The store's first selection, or one of its own for what a later run adds (a plug-in): the
        # earlier selections' folders and choices are never rewritten, and the added methods get the
        # selection trainings the record's methods rest on.
        tune = settings.selection_folder(path, tuple(lacking) if record is not None else ())
        if not set(trials_of(root / tune)) <= set(lacking):  # a tune of other methods there (`tune`'s default name)
            tune = settings.selection_folder(path, tuple(lacking))
        trials = settings.matched_trials(record)
        log.warning("%s: no settings chosen on this store (fingerprint %s) for %s; choosing them first on its "
                    "validation part: %d trials of each, seed %s, the run's budget, into %s (the same selection for "
                    "every method; --settings-from NAME uses another store's settings instead, marked)", path,
                    fingerprint, ", ".join(lacking), trials, ", ".join(map(str, settings.SELECTION_SEEDS)), root / tune)
        record = choose(cfg, path, label, fingerprint, validation, record, specs, tune, trials)
    elif record is not None and cfg.refresh and settings.made_by_run(path, record.chosen_by):
        named = {p.name: p.spec for p in plans}
        for tune in record.chosen_by:
            chosen = trials_of(root / tune)
            if not chosen or not set(chosen) <= set(named):  # a selection of methods this run does not name
                log.info("--refresh: %s is not chosen again (it chose %s; this run names %s)", root / tune,
                         ", ".join(chosen) or "nothing it recorded", ", ".join(named))
                continue
            log.warning("--refresh: choosing the settings of %s on this store again into %s (its current trials are "
                        "kept, stale ones computed again)", ", ".join(chosen), root / tune)
            record = choose(cfg, path, label, fingerprint, validation, record, [named[m] for m in chosen], tune,
                            max(chosen.values()))
    assert record is not None
    return _with(cfg, record, _origin(record, fingerprint, validation, plans))


def _effort(record: settings.Record, methods: tuple[str, ...]) -> str:
    """The selection trainings behind the settings of the run's ``methods``, in words (none for a
    method the record does not cover: it runs its defaults)."""
    counts = settings.effort(record)
    return settings.effort_words({m: counts.get(m, 0) for m in methods})


def choose(cfg: RunConfig, path: Path, label: str, fingerprint: str, validation: dict[str, Any],
           record: settings.Record | None, specs: list[str], name: str, trials: int) -> settings.Record:
    """Tune ``specs`` on the store's validation part (``trials`` each, into results folder ``name``)
    and put their choices into its record at ``path``. Under torchrun every rank trains its share of
    the trials, rank 0 chooses and writes the record, and every rank then reads it."""
    from benchmark.commands.tune import tune

    tune_cfg = replace(cfg, methods=specs, named_choices=False, config_file=None, overrides=[],
                       seeds=list(settings.SELECTION_SEEDS), name=name, force=False, eval_split=None,
                       reread_evidence=False, settings_origin=None)
    result = tune(tune_cfg, trials=trials, tune_seed=0)
    if result is not None:  # rank 0 (or the only process): the choice
        methods = {**(record.methods if record is not None else {}), **result.ran}
        chosen_by = tuple(dict.fromkeys([*(record.chosen_by if record is not None else ()), name]))
        settings.write(path, store=label, fingerprint=fingerprint, methods=methods, chosen_by=chosen_by,
                       validation=validation)
    barrier()  # the other ranks read the record once rank 0 has written it
    found = settings.read(path)
    assert found is not None
    return found
