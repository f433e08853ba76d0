"""``python -m benchmark reproduce``: every published number, from the current code, stage by stage.

The stages are the suite's own commands, run in order in this process with the same options a
user would type (so each validates its input and resumes pair by pair as it always does):

1. ``tune``: every method of both suites, scored on validation only, with the same selection
   trainings each once the studies are counted (``evened_trials``);
2. ``studies``: the repository's studies (benchmark/commands/studies.py), each a tune of some
   settings of one method on top of what the tune and the studies before it chose; the tune's
   choices with the studies' on top are the settings every later stage reads
   (``results/<name>.settings.json``, written by this command: data, not copied into the code by
   hand; the shipped presets repeat them, and tests/benchmark/test_selection.py checks that they do);
3. ``table``: both suites, three seeds, with those settings (``results/<name>``);
4. ``ablate-sync``, ``ablate-gamma``, ``ablate-units``: Tables 2-4 with the settings;
5. ``online``: the online budget curves of the table's run;
6. ``curves``: every method along its cost knob (``results/<name>-curves``);
7. ``checks``: the runs the pages show beside the table (benchmark/commands/studies.py);
8. ``latency``: measured time per video on this machine;
9. ``plot``: the figures;
10. ``others``: the published runs beyond the main store's (benchmark/commands/studies.py
    ``OTHERS``: the stores the shipped defaults were chosen across, the stores nobody tuned on,
    the small-data studies, the real clips), each by its folder's own commands;
11. ``report``: docs/results.md and the README's blocks (only for the repository's own results/).

The studies, checks and other runs are the repository's: reproducing another dataset or results
folder runs none of them. Run it from the repository's root: the other runs' stores are made under
``data/`` there, as their folders' notes say.

A stage is skipped when it finished before with the same command, the same code (every Python
file of the suite's packages) and the same inputs (the tuned config); the record of each stage
(``results/<name>.reproduce.json``) says when it ran, how long it took and its digest. An
interrupted stage is run again and resumes where its command stops (finished pairs are kept).
Before it starts, the command prints the plan with an estimated time per stage, from the times
pairs of each method took in the folders it will write (``--dry-run`` prints only the plan).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shlex
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark import provenance, store_settings
from benchmark import results as layout
from benchmark.code_fingerprint import suite_digest
from benchmark.commands.defaults import REPRODUCE_STAGES
from benchmark.commands.studies import CHECKS, OTHERS, STUDIES, Check, Other, Study
from benchmark.config import available_cores, environment_jobs
from benchmark.eta import machine_here, pair_seconds
from benchmark.protocol.splits import VALIDATION_FRACTION, VALIDATION_SEED
from benchmark.results import is_published_root, read_json
from benchmark.store_settings import SELECTION_TRIALS
from datasets.common.atomic import atomic_write_json
from datasets.common.cli import INTERRUPTED, TERMINATED
from datasets.common.errors import UsageError
from datasets.common.progress import duration

log = logging.getLogger(__name__)

#: The stages, in order.
STAGES = REPRODUCE_STAGES
#: Rough seconds of the stages that train nothing, on the 2-core CPU (docs/performance.md, docs/running.md).
FIXED_SECONDS = {"online": 90.0, "latency": 120.0, "plot": 15.0, "report": 30.0}
#: Rows of each ablation (benchmark/commands/ablation.py ``variants``; units: up to four sizes).
ABLATION_ROWS = {"ablate-sync": 2, "ablate-gamma": 4, "ablate-units": 4}
#: A stage command's exit status when Ctrl-C or SIGTERM stopped it: it has said what is kept and
#: how to resume, and reproduce resumes it like any stage.
STOPPED = (INTERRUPTED, TERMINATED)


class Stopped(Exception):
    """A stage's command was stopped by a signal (not a failure): reproduce exits with its status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"a stage's command was stopped (exit {status})")
        self.status = status


@dataclass(frozen=True)
class Options:
    dataset: str = "default"
    data_seed: int = 0
    name: str | None = None  # results/<name>; default: the dataset's name
    results_dir: str = "results"
    methods: list[str] | None = None  # default: every method of the extended suite
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    tune_seeds: list[int] = field(default_factory=lambda: [0])
    trials: int = SELECTION_TRIALS  # the same selection `run` gives a store without settings
    points: int = 5  # trained points per training-time knob (issue 44: at least 5)
    steps: int | None = None  # exactly this many steps per pair (quick runs; default: the budget rule)
    device: str = "auto"
    jobs: int | None = None
    threads: int | None = None
    stages: list[str] | None = None  # default: all of them
    # None: the repository's (benchmark/commands/studies.py) when reproducing its own default
    # results, none otherwise.
    studies: tuple[Study, ...] | None = None
    checks: tuple[Check, ...] | None = None
    others: tuple[Other, ...] | None = None


@dataclass(frozen=True)
class Stage:
    key: str
    argvs: tuple[list[str], ...]  # its commands, in order, each `python -m benchmark ARGV` (or a module first)
    inputs: tuple[Path, ...] = ()  # files the stage reads whose content decides its result
    folders: tuple[str, ...] = ()  # results folders it writes (for the time estimate)
    pairs: dict[str, int] = field(default_factory=dict)  # method -> pairs it trains (for the estimate)

    def command(self) -> str:
        if not self.argvs:
            return "(nothing to run)"
        first = "python -m " + shlex.join(_module_and_argv(self.argvs[0]))  # quoted: it can be pasted
        return first + (f" (and {len(self.argvs) - 1} more commands)" if len(self.argvs) > 1 else "")


def _module_and_argv(argv: list[str]) -> list[str]:
    """``argv`` with the module it is given to first: ``datasets ...``, ``benchmark ...``, or by
    default the suite's ``benchmark``."""
    return argv if argv and argv[0] in ("benchmark", "datasets") else ["benchmark", *argv]


def _own_results(options: Options) -> bool:
    """Whether ``options`` reproduce the repository's own published default results."""
    return (is_published_root(Path(options.results_dir)) and options.dataset == "default"
            and run_name(options) == "default")


def studies_of(options: Options) -> tuple[Study, ...]:
    if options.studies is not None:
        return options.studies
    return STUDIES if _own_results(options) else ()


def checks_of(options: Options) -> tuple[Check, ...]:
    if options.checks is not None:
        return options.checks
    return CHECKS if _own_results(options) else ()


def others_of(options: Options) -> tuple[Other, ...]:
    if options.others is not None:
        return options.others
    return OTHERS if _own_results(options) else ()


def settings_path(options: Options, dataset: str | None = None) -> Path:
    """The settings every stage after the studies runs with (``--config``): the tune's choices
    with each study's on top (``write_settings``); for another dataset (a study's or a check's),
    its own studies' choices."""
    if dataset is None or dataset == options.dataset:
        return Path(options.results_dir) / f"{run_name(options)}.settings.json"
    return Path(options.results_dir) / f"{Path(dataset).name}.settings.json"


def merged_settings(options: Options, upto: int | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The main tune's choices, with those of the studies on this dataset before ``upto`` (all:
    None) on top, key by key: a later choice of a setting replaces an earlier one. For another
    ``dataset``, the choices of its own studies alone (no tune ran on it)."""
    root, name = Path(options.results_dir), run_name(options)
    dataset = dataset or options.dataset
    settings: dict[str, Any] = {}
    if dataset == options.dataset:
        tuned = read_json(root / f"{name}-tune" / layout.TUNED_JSON)
        if not isinstance(tuned, dict):
            raise UsageError(f"{root / f'{name}-tune' / layout.TUNED_JSON}: missing; run the tune stage first "
                             "(`python -m benchmark reproduce --stages tune`)")
        settings = copy.deepcopy(tuned)
    for study in studies_of(options)[:upto]:
        if study.dataset != dataset:
            continue
        chosen = read_json(root / study.name / layout.TUNED_JSON)
        if not isinstance(chosen, dict) or not isinstance(chosen.get(study.method), dict):
            raise UsageError(f"{root / study.name / layout.TUNED_JSON}: missing or without {study.method!r}; run "
                             "the studies stage (`python -m benchmark reproduce --stages studies`)")
        mine = settings.setdefault(study.method, {})
        for key, value in chosen[study.method].items():
            if key == "train" and isinstance(value, dict):
                mine.setdefault("train", {}).update(value)
            else:
                mine[key] = value
    return settings


def _settings_if_ready(options: Options) -> None:
    """Write the settings where the tune (and every study) has chosen; else leave them to the
    stage that chooses them (a later stage that needs them says so)."""
    for dataset in _datasets(options):
        try:
            write_settings(options, dataset=dataset)
        except UsageError:
            pass


def _datasets(options: Options) -> list[str]:
    """The main dataset, then the others a study or a check runs on."""
    others = [s.dataset for s in studies_of(options)] + [c.dataset for c in checks_of(options)]
    return list(dict.fromkeys([options.dataset, *others]))


def choosers(options: Options, upto: int | None = None, dataset: str | None = None) -> list[str]:
    """The results folders whose choices ``merged_settings`` merges, in order."""
    dataset = dataset or options.dataset
    studies = [s.name for s in studies_of(options)[:upto] if s.dataset == dataset]
    return [f"{run_name(options)}-tune", *studies] if dataset == options.dataset else studies


def write_settings(options: Options, upto: int | None = None, dataset: str | None = None) -> Path:
    """The settings record (benchmark/store_settings.py): the merged choices, and the store they
    were chosen on as the choosing runs' provenance names it, so that `run` finds it by identity."""
    path = settings_path(options, dataset)
    methods = merged_settings(options, upto, dataset)
    folders = choosers(options, upto, dataset)
    store: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for folder in folders:
        provenance = _load(Path(options.results_dir) / folder / layout.PROVENANCE)
        store, config = provenance.get("dataset") or {}, provenance.get("config") or {}
        if store:
            break
    dataset = dataset or options.dataset
    label = run_name(options) if dataset == options.dataset else Path(dataset).name
    validation = store_settings.carve(config.get("val_fraction", VALIDATION_FRACTION),
                                      config.get("val_seed", VALIDATION_SEED))
    store_settings.write(path, store=store.get("name") or label, fingerprint=store.get("fingerprint"), methods=methods,
                         chosen_by=folders, validation=validation)
    return path


def evened_trials(options: Options, methods: list[str]) -> dict[str, int]:
    """Each method's trials in the main tune: ``options.trials`` plus what the most studied method's
    studies on the main store train, less its own studies' trainings. A study chooses settings,
    so its trainings count as selection (benchmark/store_settings.py ``effort``); this gives every
    method the same count, tune and studies together, whatever its studies (with several tune
    seeds, a method short of a whole trial gets one more)."""
    studied = Counter[str]()
    for study in studies_of(options):
        if study.dataset == options.dataset:
            studied[study.method] += study.pairs
    most, seeds = max((studied[m] for m in methods), default=0), len(options.tune_seeds)
    return {m: options.trials - (studied[m] - most) // seeds for m in methods}  # exact with one tune seed


def run_name(options: Options) -> str:
    if options.name:
        return options.name
    from datasets.sources.synthetic import PRESETS

    return options.dataset if options.dataset in PRESETS else Path(options.dataset).name


def method_names(options: Options) -> list[str]:
    if options.methods:
        return list(options.methods)
    from benchmark.tables import order_methods
    from methods.registry import available_methods
    from methods.suites import SUITES

    return order_methods([n for n, c in available_methods().items() if c.suite in SUITES["extended"]])


def check_options(options: Options) -> None:
    """Refuse now, in one line, what a stage's command would refuse only when it runs (hours into
    the plan, or never in a dry run); each flag by the same check its commands apply."""
    from benchmark.commands.tune import check_trials
    from benchmark.config import RunConfig
    from benchmark.curves.sweep import check_points
    from benchmark.protocol.budget import Budget
    from benchmark.stores import check_dataset

    unknown = sorted(set(options.stages or ()) - set(STAGES))
    if unknown:
        raise UsageError(f"--stages {' '.join(unknown)}: no such stage; the stages are {' '.join(STAGES)}")
    RunConfig(dataset=options.dataset, data_seed=options.data_seed, seeds=options.seeds, name=options.name,
              results_root=options.results_dir, jobs=options.jobs, threads=options.threads,
              budget=Budget(steps=options.steps))
    try:
        RunConfig(seeds=options.tune_seeds)
    except UsageError as exc:
        raise UsageError(str(exc).replace("--seeds", "--tune-seeds", 1)) from None
    check_trials(options.trials)
    check_points(options.points)
    check_dataset(options.dataset)


def plan(options: Options) -> list[Stage]:
    """The stages ``options`` ask for, in order, with their commands (``options`` checked first)."""
    check_options(options)
    name, root = run_name(options), Path(options.results_dir)
    methods = method_names(options)
    data = ["--dataset", options.dataset, "--data-seed", str(options.data_seed), "--results-dir", str(root)]
    compute = ["--device", options.device]
    compute += ["--jobs", str(options.jobs)] if options.jobs is not None else []
    compute += ["--threads", str(options.threads)] if options.threads is not None else []
    # --refresh: each stage recomputes its stale pairs and those of another configuration, keeps the rest.
    budget = ["--refresh", *(["--steps", str(options.steps)] if options.steps else [])]
    seeds = ["--seeds", *map(str, options.seeds)]
    settings = settings_path(options)
    # Every training stage: class defaults and the settings chosen so far, never the presets, which
    # repeat those choices (tests/benchmark/test_selection.py): a choice that depended on them would change
    # them, and the next reproduce would choose among other trials.
    chosen = ["--no-presets", "--config", str(settings)]
    listed = ["--methods", *methods]
    tuned = root / f"{name}-tune" / layout.TUNED_JSON

    def data_of(dataset: str) -> list[str]:  # a study or check on another store: that store's own settings
        if dataset == options.dataset:
            return [*data, *chosen]
        return ["--dataset", dataset, "--results-dir", str(root), "--no-presets", "--config",
                str(settings_path(options, dataset))]

    trials = evened_trials(options, methods)
    most = max(trials.values())
    stages = [
        Stage("tune", (["tune", *data, *listed, "--trials", str(most),
                        *(f"{m}={n}" for m, n in trials.items() if n != most), "--seeds",
                        *map(str, options.tune_seeds), "--name", f"{name}-tune", "--no-presets", *budget,
                        *compute],),
              folders=(f"{name}-tune",), pairs={m: n * len(options.tune_seeds) for m, n in trials.items()}),
    ]
    studies = studies_of(options)
    if studies:
        stages.append(Stage("studies", tuple([*s.argv(), *data_of(s.dataset), *budget, *compute] for s in studies),
                            (tuned,), tuple(s.name for s in studies), _pairs((s.method, s.pairs) for s in studies)))
    # --restore-weights: the online and latency stages load the table's trained weights, which a
    # fresh clone does not have (not committed to git).
    stages.append(Stage("table", (["run", *data, *listed, *seeds, "--name", name, *chosen, *budget, "--restore-weights",
                                   *compute],),
                        (settings,), (name,), {m: len(options.seeds) for m in methods}))
    if "liteeval" in methods:
        for kind in ("sync", "gamma", "units"):
            key = f"ablate-{kind}"
            stages.append(Stage(key, (["ablate", kind, *data, *seeds, "--name", f"{name}-{key}", *chosen, *budget,
                                       *compute],), (settings,), (f"{name}-{key}",),
                                {"liteeval": ABLATION_ROWS[key] * len(options.seeds)}))
    stages += [
        Stage("online", (["online", "--name", name, "--results-dir", str(root)],), (settings,)),
        Stage("curves", (["curves", *data, *listed, *seeds, "--name", name, "--points", str(options.points),
                          *chosen, *budget, *compute],), (settings,), (name + layout.CURVES_SUFFIX, name),
              {m: (options.points - 1) * len(options.seeds) for m in methods if _trains_points(m)}),
    ]
    checks = checks_of(options)
    if checks:
        stages.append(Stage("checks", tuple([*c.argv(), *data_of(c.dataset), *budget, *compute] for c in checks),
                            (settings,), tuple(c.name for c in checks),
                            _pairs((m, len(c.seeds)) for c in checks for m in c.methods)))
    stages += [
        Stage("latency", (["latency", "--name", name, "--results-dir", str(root)],), (settings,)),
        Stage("plot", (["plot", "--name", name, "--results-dir", str(root)],), (settings,)),
    ]
    others = others_of(options)
    if others:
        folders = tuple(f for o in others for f in o.folders)
        argvs = tuple(a for o in others if not (o.creates and Path(o.creates).exists()) for a in o.argvs(compute))
        configs = tuple(dict.fromkeys(Path(a[i + 1]) for a in argvs for i in range(len(a) - 1) if a[i] == "--config"))
        stages.append(Stage("others", argvs, configs, folders, _held(root, folders)))
    if is_published_root(root):  # the page and README describe the repository's results/
        stages.append(Stage("report", (["report"],), (settings,)))
    wanted = set(options.stages or STAGES)
    return [s for s in stages if s.key in wanted]


def _pairs(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Pairs per method, summed over a stage's commands."""
    total: Counter[str] = Counter()
    for method, n in counts:
        total[method] += n
    return dict(total)


def _held(root: Path, folders: Iterable[str]) -> dict[str, int]:
    """Pairs per method that the folders hold now, nested results roots included (for the estimate
    of a stage that makes them again)."""
    from benchmark.eta import method_of

    return dict(Counter(method_of(record.parent.parent.name) for folder in folders
                        for record in (root / folder).rglob(layout.RECORD) if record.parent.name.startswith("seed")))


def _trains_points(method: str) -> bool:
    """Whether ``method``'s cost knob is read in training (each point a training of its own)."""
    from methods.registry import resolve_method

    knob = resolve_method(method).cost_knob
    return knob is not None and knob.at == "training"


def _run(argv: list[str], runner: Callable[[list[str]], int]) -> int:
    """A stage's command: ``runner`` for the suite's commands, the data layer's command line for its own."""
    module, *rest = _module_and_argv(argv)
    if module == "datasets":
        from datasets.__main__ import main as datasets_main

        return datasets_main(rest)
    return runner(rest)


def stage_digest(stage: Stage, code: str, done: dict[str, Any]) -> str:
    """What decides a stage's result: its command, the code, its inputs' contents, and the
    digests the earlier stages finished with (a stage after one that ran again runs again)."""
    digest = hashlib.sha256(json.dumps(stage.argvs).encode())
    digest.update(code.encode())
    for key in STAGES[:STAGES.index(stage.key)]:
        digest.update(f"{key}={(done.get(key) or {}).get('digest')}".encode())
    for path in stage.inputs:
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()[:16]


def pair_counts(root: Path, folders: Iterable[str], since: str) -> dict[str, int]:
    """The pairs of a stage's results folders that it computed (their records are stamped at or after
    ``since``, the stage's start, in provenance.now's UTC ISO) and those it kept: a stage record says
    which, so that seconds of a stage that kept everything are not read as its cost (issue 44)."""
    counts = {"computed": 0, "kept": 0}
    for name in folders:
        folder = root / name
        for label, seed in layout.pairs_on_disk(folder):
            record = layout.read_json(layout.record_path(layout.pair_dir(folder, label, seed)))
            at = ((record or {}).get("computed") or {}).get("at") if isinstance(record, dict) else None
            if isinstance(at, str):
                counts["computed" if at >= since else "kept"] += 1
    return counts


def record_path(options: Options) -> Path:
    return Path(options.results_dir) / f"{run_name(options)}.reproduce.json"


def _load(path: Path) -> dict[str, Any]:
    data = read_json(path)
    return data if isinstance(data, dict) else {}


def estimate(stage: Stage, root: Path, name: str, jobs: int, here: str) -> float | None:
    """Seconds the stage may take, from earlier pairs of its methods on this kind of machine
    (None: unknown)."""
    if stage.key in FIXED_SECONDS:
        return FIXED_SECONDS[stage.key]
    if not stage.pairs:
        return 0.0
    seconds = pair_seconds(root, (*stage.folders, name, f"{name}-tune"), here)
    if any(m not in seconds for m in stage.pairs):
        return None
    return sum(seconds[m] * n for m, n in stage.pairs.items()) / max(1, jobs)


def plan_text(stages: list[Stage], options: Options, done: dict[str, Any], code: str) -> tuple[str, float | None]:
    """The plan, one line per stage with its state and estimate; and the total estimate."""
    root, name = Path(options.results_dir), run_name(options)
    jobs = options.jobs or environment_jobs() or available_cores()
    from datasets.loading.device import resolve_device

    here = machine_here(resolve_device(options.device).type)
    lines, total, unknown, changed = [], 0.0, False, False
    for k, stage in enumerate(stages, 1):
        if not changed and (done.get(stage.key) or {}).get("digest") == stage_digest(stage, code, done):
            state = "up to date, skipped"
        else:
            changed = True  # every later stage depends on this one's result (stage_digest)
            seconds = estimate(stage, root, name, jobs, here)
            if seconds is None:
                state, unknown = "time unknown (no earlier pair of each method here)", True
            else:
                state, total = f"at most about {duration(seconds)}", total + seconds
        lines.append(f"{k:>2}. {stage.key:<13} {state:<40} {stage.command()}")
    head = (f"reproduce {name}: {len(stages)} stages; estimated {duration(total)}"
            + (" plus the stages of unknown time" if unknown else "")
            + f" with {jobs} jobs (from the times of earlier pairs on this kind of machine, {here}; a rough figure, "
            "and an upper one: a stage keeps the pairs that are current, and "
            "its own log says how many it computes and when it should end)")
    return head + "\n" + "\n".join(lines), (None if unknown else total)


def reproduce(options: Options, runner: Callable[[list[str]], int], *, dry_run: bool = False) -> list[dict[str, Any]]:
    """Run (or, ``dry_run``, only print) the plan; return each stage's outcome. ``runner``: how a
    command runs (the command line passes itself: each stage is a command, in this process)."""
    stages = plan(options)
    path = record_path(options)
    record = _load(path)
    done: dict[str, Any] = record.get("stages") or {}
    code = suite_digest()
    if not dry_run:
        _settings_if_ready(options)
    text, _ = plan_text(stages, options, done, code)
    print(text, flush=True)
    if dry_run:
        return []
    outcomes: list[dict[str, Any]] = []
    start = time.monotonic()
    for stage in stages:
        if stage.key not in ("tune", "studies"):  # what the studies chose, on top of the tune's choices
            _settings_if_ready(options)
        if (done.get(stage.key) or {}).get("digest") == stage_digest(stage, code, done):
            outcomes.append({"stage": stage.key, "state": "skipped"})
            continue
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} reproduce: stage {stage.key}: {stage.command()}", flush=True)
        began, since = time.monotonic(), provenance.now()
        for k, argv in enumerate(stage.argvs):
            if stage.key == "studies":  # each study starts from what the tune and the studies before it chose
                write_settings(options, upto=k, dataset=studies_of(options)[k].dataset)
            status = _run(argv, runner)
            if status in STOPPED:
                raise Stopped(status)
            if status != 0:
                seconds = time.monotonic() - began
                raise UsageError(f"reproduce: stage {stage.key} failed (exit {status}) after {duration(seconds)} "
                                 f"at `python -m benchmark {' '.join(argv)}`; fix what it said and run reproduce "
                                 "again: the stages done are kept, and a stage resumes where its commands stopped")
        seconds = time.monotonic() - began
        if stage.key == "studies":
            _settings_if_ready(options)
        digest = stage_digest(stage, code, done)  # its inputs as they are now (the tune stage writes the config)
        counts = pair_counts(Path(options.results_dir), stage.folders, since)
        done[stage.key] = {"digest": digest, "command": stage.command(), "finished": time.strftime(
            "%Y-%m-%dT%H:%M:%S"), "seconds": round(seconds, 1), "pairs": counts}
        atomic_write_json(path, {"name": run_name(options), "code": code, "stages": done})
        outcomes.append({"stage": stage.key, "state": "ran", "seconds": seconds})
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} reproduce: stage {stage.key} done in {duration(seconds)} "
              f"({counts['computed']} pairs computed, {counts['kept']} kept)", flush=True)
    ran = [o for o in outcomes if o["state"] == "ran"]
    print(f"reproduce {run_name(options)}: {len(ran)} stage(s) ran, {len(outcomes) - len(ran)} up to date, "
          f"{duration(time.monotonic() - start)}; the record: {path}. Check what is published with "
          "`python -m benchmark report --check`.")
    return outcomes
