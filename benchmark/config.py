"""Run configuration and the per-method config file.

The config file (JSON, or TOML on Python 3.11+) has one table per method: model
hyper-parameters at its top level and training settings under ``train``::

    [lstm]
    hidden = 256
    [lstm.train]
    lr = 0.0005

How long every method trains is the run's budget (benchmark/protocol/budget.py), not a method's
setting, so ``epochs`` or ``batch_size`` in a method's table is an error.
Unknown methods, hyper-parameters or training settings are errors, so a typo cannot be
silently ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.protocol.budget import Budget
from benchmark.protocol.splits import VALIDATION_FRACTION, VALIDATION_SEED
from datasets.common.errors import UsageError
from datasets.common.paths import name_problem

#: How a searched setting names a training setting (``train.lr``) rather than a hyper-parameter.
TRAIN_PREFIX = "train."
#: Seeds lie in [0, MAX_SEED): NumPy refuses negative seeds and torch overflows past 2**63.
MAX_SEED = 2**32
#: A settings record's own entry (benchmark/store_settings.py): which store chose the tables
#: beside it. Not a method: a config file read from a record leaves it out.
STORE_KEY = "_store"
#: Training seeds of the main job: one seed supports no conclusion.
DEFAULT_SEEDS = (0, 1, 2)


#: Sets ``--jobs`` where a command is not given it (default: one per core, as memory allows):
#: for a shared machine, and for the test suite, whose many small runs would otherwise each
#: spend seconds starting worker processes for pairs that take milliseconds.
JOBS_VARIABLE = "LITEEVAL_JOBS"


def folder_name_problem(name: object) -> str:
    """Why ``name`` cannot be a results folder's name ("" when it can): one plain folder
    (datasets/common/paths.py), without spaces around it, which make a folder easily taken for
    another ("results/ x")."""
    problem = name_problem(name)
    if not problem and isinstance(name, str) and name != name.strip():
        problem = "it starts or ends with a space; remove the spaces"
    return problem


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a container's share): the default
    worker count of ``run``, and what ``reproduce --dry-run`` divides its estimate by."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def environment_jobs() -> int | None:
    """``LITEEVAL_JOBS`` as a number of worker processes (None: not set)."""
    value = os.environ.get(JOBS_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"{JOBS_VARIABLE}={value!r}: must be a whole number of worker processes, at least 1; "
                         "unset it for one per core")
    return int(value)


def check_counts(jobs: int | None, threads: int | None) -> None:
    """``--jobs`` and ``--threads``, where given, are at least 1."""
    for name, value in (("--jobs", jobs), ("--threads", threads)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be >= 1, got {value}")


@dataclass
class RunConfig:
    dataset: str = "default"  # a synthetic preset name or a store directory
    data_seed: int = 0  # seed of a synthetic store (the dataset, not the run)
    methods: list[str] | None = None  # None: every registered method of ``suite``
    suite: str = "paper"  # "paper": Table 1's methods; "extended": and the later ones (methods/base.py SUITES)
    seeds: list[int] = field(default_factory=lambda: list(DEFAULT_SEEDS))
    device: str = "auto"
    budget: Budget = field(default_factory=Budget)  # the same training budget for every method
    val_fraction: float = VALIDATION_FRACTION  # held out of the training split for model selection
    val_seed: int = VALIDATION_SEED
    name: str | None = None  # results/<name>; default: the dataset's name
    config_file: str | None = None
    # Apply each method's preset for the dataset (methods/<method>.py ``presets``); False
    # (``--no-presets``): class defaults and the config file only, what ``reproduce`` runs with, so
    # that what it chooses never depends on the presets that repeat its choices.
    presets: bool = True
    # With presets on, also apply those chosen on a store (a preset with origins, keyed by that store's
    # name). False: only presets set by hand (a paper's published settings for FCVID, say); the store's
    # own choices come from its settings record, found by fingerprint (benchmark/select_first.py), so a
    # store that merely shares a name ("default" at another --data-seed) does not inherit another's.
    named_choices: bool = True
    results_root: str = "results"
    train_split: str | None = None
    eval_split: str | None = None
    force: bool = False
    # Recompute only the pairs that are stale (their code changed since) or were computed with another
    # configuration; keep the rest (``--refresh``; what ``reproduce`` runs every stage with).
    refresh: bool = False
    # Also recompute the done pairs whose trained weights are not here (``--restore-weights``): a fresh
    # clone has every pair's record and scores but no model.pt (not committed to git), and ``online``,
    # ``latency`` and ``stream`` load the weights. On the kind of machine that computed a pair it
    # comes back bit for bit (the cross-machine check compares it with what was there).
    restore_weights: bool = False
    show_progress: bool = True
    jobs: int | None = None  # worker processes for the pairs; None: one per core on a CPU (benchmark/parallel.py)
    threads: int | None = None  # threads per pair; None: benchmark/parallel.py's DEFAULT_THREADS
    reread_evidence: bool = False  # recompute saved pairs' evidence statistics (Runner.reread_evidence)
    # A selection run (benchmark tune): every pair scored on the held-out validation part, the evaluation split
    # neither named nor loadable (benchmark/runner.py). Part of the config, so every worker and rank gets it.
    selection: bool = False
    precision: str = "fp32"  # the arithmetic of every forward pass (benchmark/precision.py)
    # Train a plug-in that fails the conformance check anyway (its row says so); by default it is refused.
    unchecked: bool = False
    # Settings for this run without a file, applied over the config file: "method.key=value" (--set).
    overrides: list[str] = field(default_factory=list)
    # Where the settings come from when `run` chose them (benchmark/store_settings.py Origin, as a dict):
    # the caption says it and rows run with another store's settings are marked. None: as given.
    settings_origin: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.seeds:
            raise UsageError("--seeds: give at least one training seed, e.g. --seeds 0 1 2")
        out_of_range = [s for s in self.seeds if not 0 <= s < MAX_SEED]
        if out_of_range:
            raise UsageError(f"--seeds {' '.join(map(str, self.seeds))}: seeds must lie in [0, 2**32) (NumPy's "
                             f"generators refuse negative seeds, torch's overflow on huge ones); got {out_of_range}")
        repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if repeated:
            raise UsageError(f"--seeds {' '.join(map(str, self.seeds))}: seed(s) {repeated} given twice; a repeated "
                             "seed would count one result twice in the mean and std")
        from benchmark.precision import check as check_precision
        from methods.base import SUITES

        check_precision(self.precision)
        check_counts(self.jobs, self.threads)  # before anything is created: a results folder, a lock
        environment_jobs()  # likewise a bad LITEEVAL_JOBS
        if self.suite not in SUITES:
            raise UsageError(f"--suite {self.suite}: choose one of {', '.join(SUITES)}")
        for flag, value in (("--data-seed", self.data_seed), ("--val-seed", self.val_seed)):
            if not 0 <= value < MAX_SEED:
                raise UsageError(f"{flag} {value}: must lie in [0, 2**32)")
        if self.name is not None and folder_name_problem(self.name):
            raise UsageError(f"--name {self.name!r}: {folder_name_problem(self.name)}; results/<name> is one folder")
        if self.selection and self.eval_split is not None:
            raise UsageError(f"--eval-split {self.eval_split}: a selection run (tune) scores on the held-out part of "
                             "the training split and never names the evaluation split; leave --eval-split out")
        if self.selection and self.reread_evidence:
            raise UsageError("--reread-evidence re-evaluates on the evaluation split, which a selection run (tune) "
                             "never reads")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_method_config(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Read the per-method config file (``{}`` when there is none)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError as exc:  # Python 3.10
            raise UsageError(f"{path}: TOML config files need Python 3.11+; use JSON") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(f"{path}: expected one table (object) per method name")
    data.pop(STORE_KEY, None)  # a settings record's note of the store it was chosen on
    return data


def parse_overrides(overrides: list[str]) -> dict[str, dict[str, Any]]:
    """``--set`` items (``lstm.hidden=64``, ``liteeval.train.lr=3e-4``, ``liteeval_rl.policy_through=gate``)
    as config-file tables. A value is read as JSON where it is JSON (numbers, true/false, null,
    lists), else as the string it is, as mmaction2's ``--cfg-options`` reads its values."""
    tables: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        method, dot, setting = key.partition(".")
        if not sep or not dot or not method or not setting or not text:
            raise UsageError(f"--set {item!r}: write method.setting=value, e.g. lstm.hidden=64 or "
                             "liteeval.train.lr=3e-4")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        table = tables.setdefault(method, {})
        if setting.startswith(TRAIN_PREFIX):
            table.setdefault("train", {})[setting[len(TRAIN_PREFIX):]] = value
        else:
            table[setting] = value
    return tables


def merged_config(config_file: str | Path | None, overrides: list[str]) -> dict[str, dict[str, Any]]:
    """The per-method settings of a run: the config file's, then ``--set``'s over them."""
    data = load_method_config(config_file)
    for method, table in parse_overrides(overrides).items():
        section = data.setdefault(method, {})
        train = {**section.get("train", {}), **table.pop("train", {})}
        section.update(table)
        if train:
            section["train"] = train
    return data


def as_config(setting: dict[str, Any]) -> dict[str, Any]:
    """A searched setting (``{"dropout": 0.5, "train.lr": 0.001}``) as a method's table of the
    config file (``{"dropout": 0.5, "train": {"lr": 0.001}}``)."""
    section: dict[str, Any] = {k: v for k, v in setting.items() if not k.startswith(TRAIN_PREFIX)}
    train = {k[len(TRAIN_PREFIX):]: v for k, v in setting.items() if k.startswith(TRAIN_PREFIX)}
    if train:
        section["train"] = train
    return section
