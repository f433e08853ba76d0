"""The configuration of a command that follows a run (``online``, ``latency``): the run's own, read
from its folder, so that ``--name`` alone names what to evaluate.

A follow-up command loads trained pairs, and a pair is only loaded by the configuration it was
trained with (benchmark/context.py ``identity``). Asking the user to type the run's budget flags
again (``--steps``, ``--epochs``, ``--config`` ...) only lets them get one wrong; so the settings a
pair's identity holds are taken from the folder's provenance.json, and a flag given anyway must
agree with it: one that differs is refused with the field, both values and the fix. The methods
are those with trained pairs in the folder (``--methods`` picks among them), the seeds those the
run recorded (``--seeds`` picks among them); the device and progress bars are this command's.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from benchmark import results
from benchmark.config import RunConfig
from benchmark.protocol.budget import Budget
from datasets.common.errors import UsageError

#: The run settings a pair's identity depends on, and the flag that sets each.
IDENTITY_FLAGS = {"dataset": "--dataset", "data_seed": "--data-seed", "val_fraction": "--val-fraction",
                  "val_seed": "--val-seed", "config_file": "--config", "train_split": "--train-split",
                  "eval_split": "--eval-split", "precision": "--precision", "overrides": "--set"}
#: The budget's settings, and their flags.
BUDGET_FLAGS = {f.name: "--" + f.name.replace("_", "-") for f in fields(Budget)}
#: Settings that are this command's own, whatever the run used.
OWN = ("device", "show_progress", "suite")


def recorded_config(folder: Path) -> dict[str, Any] | None:
    """The RunConfig a results folder's last run recorded (provenance.json), or None."""
    provenance = results.read_json(folder / results.PROVENANCE)
    config = provenance.get("config") if isinstance(provenance, dict) else None
    return config if isinstance(config, dict) else None


def trained_methods(folder: Path) -> dict[str, str]:
    """Each method with at least one complete pair in the folder: name -> the spec that loads it
    (the spec its run was given, where the folder's provenance has it; else the registered name,
    else the class its pairs record)."""
    from methods.registry import available_methods

    runs = folder / results.RUNS
    if not runs.is_dir():
        return {}
    provenance = results.read_json(folder / results.PROVENANCE)
    given = provenance.get("methods", {}) if isinstance(provenance, dict) else {}
    registered = available_methods()
    found = {}
    for method in sorted(d for d in runs.iterdir() if d.is_dir()):
        done = [s for s in sorted(method.glob("seed*")) if results.pair_state(s).done]
        if not done:
            continue
        spec = (given.get(method.name) or {}).get("spec")
        if spec is None:
            config = results.read_json(done[0] / results.CONFIG)
            spec = method.name if method.name in registered else (config or {}).get("class", method.name)
        found[method.name] = spec
    return found


def _differs(flag: str, field: str, given: Any, recorded: Any, folder: Path) -> UsageError:
    return UsageError(
        f"{flag} {given}: {folder} was trained with {field} = {recorded} (its provenance.json), so its pairs cannot "
        f"be loaded with {given}. Leave {flag} out to use the run's own settings, or name a folder trained with "
        f"{given} (--name)")


def _dataset_name(dataset: str) -> str:
    """The folder a run on ``dataset`` writes without --name (benchmark/stores.py ``dataset_label``)."""
    from datasets.sources.synthetic import PRESETS
    from datasets.store.reader import FeatureStore

    if dataset in PRESETS or not Path(dataset).is_dir():
        return dataset  # a preset; or not a store, which the context then refuses in one line
    return FeatureStore.open(dataset).manifest.name


def followup_config(given: dict[str, Any]) -> RunConfig:
    """This command's RunConfig from the flags it was ``given`` (only those typed) and the run's
    folder (``--name``, else the dataset's name). Without a recorded config (a folder written
    before provenance recorded it), the flags and their defaults are used as they were."""
    root = Path(given.get("results_root", "results"))
    name = given.get("name") or _dataset_name(given.get("dataset", "default"))
    folder = root / name
    recorded = recorded_config(folder)
    if recorded is None:
        budget = Budget(**{k: given[k] for k in BUDGET_FLAGS if k in given})
        plain = {k: v for k, v in given.items() if k not in BUDGET_FLAGS}
        return RunConfig(**{**plain, "budget": budget, "name": name})
    for key, flag in IDENTITY_FLAGS.items():
        if key in given and given[key] != recorded.get(key):
            raise _differs(flag, key, given[key], recorded.get(key), folder)
    recorded_budget = dict(recorded.get("budget") or {})
    for key, flag in BUDGET_FLAGS.items():
        if key in given and given[key] != recorded_budget.get(key):
            raise _differs(flag, f"budget.{key}", given[key], recorded_budget.get(key), folder)
    present = trained_methods(folder)
    methods = given.get("methods") or list(present.values())
    if given.get("methods") and present:
        from methods.registry import resolve_method

        missing = [spec for spec in methods if resolve_method(spec).name not in present]
        if missing:
            raise UsageError(f"--methods {' '.join(methods)}: {folder} has no trained pairs of {missing}; it has "
                             f"{sorted(present)}")
    seeds = given.get("seeds") or recorded.get("seeds")
    settings = {f.name: recorded[f.name] for f in fields(RunConfig) if f.name in recorded}
    settings.update({k: given[k] for k in OWN if k in given})
    settings.update(budget=Budget(**{k: v for k, v in recorded_budget.items() if k in BUDGET_FLAGS}),
                    methods=methods or None, seeds=seeds, name=name, results_root=str(root), force=False,
                    restore_weights=False, jobs=None,
                    threads=None, reread_evidence=False, selection=False, unchecked=False)
    return RunConfig(**settings)
