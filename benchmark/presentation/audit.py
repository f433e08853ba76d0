"""``python -m benchmark report --check``: whether what the results page publishes can be cited.

Each published folder (the ones ``report`` puts on the page: committed to git, or named) is
checked for what would make a table of it something no command produces from the current code:

* **stale**: a pair computed by code whose fingerprint no longer matches (benchmark/code_fingerprint.py);
* **machines**: pairs computed on more than one kind of machine (processor and device) in one table;
* **selection on test**: a tuning record whose trials were scored on the evaluation split
  (benchmark/preset_origin.py);
* **settings moved**: rows trained with settings that the settings record the folder ran with
  (``--config results/<store>.settings.json``) no longer holds: a selection chose again since,
  so the folder's own command now trains other rows;
* **uncovered**: a pair done on disk that the folder's table does not show;
* **unbacked**: a pair the table shows that is not complete on disk;
* **stale curves**: online curves (online.json) read from models computed again after them, or
  from pairs the table no longer shows;
* **incomplete**: a summary without all of its tables (a write cut short, a disk full);
* **edited**: published files that say other than the pairs they were made from: a pair's entry
  in the summary that is not its checksummed record, a row's mean that is not its seeds' mean, a
  table cell that is not the summary's number (the pairs' records are checksummed; the summary and
  the tables made from them are checked against them here).

Rows whose method did not learn (benchmark/protocol/learned.py) are listed too, one line per
folder (``not_learnt``): the tables mark them, so they are not a problem of the files and do not
change the exit status, but nobody should cite such a row as a method's result.

Each problem is one line naming the folder, the kind and what to do; the command exits 1 when
there is any. It reads the folders and writes nothing. ``python -m benchmark report`` publishes
only the folders this check passes (benchmark/presentation/report.py): a folder with a problem
is listed on the page with its problems, and its numbers are not shown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from benchmark import preset_origin
from benchmark import results as layout
from benchmark import store_settings as settings
from benchmark.protocol import learned
from benchmark.protocol.splits import VALIDATION_FRACTION, VALIDATION_SEED
from benchmark.provenance import machine_kind
from benchmark.record import PerSeed, summary_records, unbacked_pairs
from benchmark.results import pair_state, read_json, remembering_pair_states
from datasets.common.errors import UsageError
from datasets.common.progress import progress_bar

#: The kinds of problem, in the order they are reported.
KINDS = ("older schema", "stale", "machines", "selection on test", "selected after", "settings moved",
         "uncovered", "unbacked", "stale curves", "incomplete", "edited")


@dataclass(frozen=True)
class Problem:
    folder: str
    kind: str
    detail: str
    root: str = "results"  # the --results-dir the folder is in, as the line names it

    def line(self) -> str:
        return f"{Path(self.root) / self.folder}: {self.kind}: {self.detail}"


def stale_pairs(folder: Path) -> list[tuple[str, str, str]]:
    """(label, seed, why) of each pair in the folder's summary computed by code that has changed
    since, judged now against the current code (benchmark/code_fingerprint.py), not when the
    table was written."""
    return [(label, seed, why) for label, seeds in summary_records(folder).items()
            for seed, record in seeds.items() if (why := record.stale)]


def _stale(folder: Path, pairs: int) -> list[Problem]:
    reasons: dict[str, list[str]] = {}
    for label, seed, why in stale_pairs(folder):
        reasons.setdefault(why, []).append(f"{label} seed {seed}")
    return [Problem(folder.name, "stale", f"{len(found)} of {pairs} pairs ({_few(found)}) {why}; recompute them "
                                          f"(and only them) with {_refresh_command(folder)}")
            for why, found in reasons.items()]


def _refresh_command(folder: Path) -> str:
    """The folder's recorded command with --refresh, which recomputes its stale pairs and keeps
    the rest (--force would recompute every pair)."""
    provenance = read_json(folder / layout.PROVENANCE)
    recorded = provenance.get("command") if isinstance(provenance, dict) else None
    if not isinstance(recorded, str) or not recorded:
        return "the folder's command and --refresh"
    words = [w for w in recorded.split(" ") if w != "--force"]
    return f"`{' '.join(words + ([] if '--refresh' in words else ['--refresh']))}`"


def _machines(name: str, per_seed: PerSeed) -> list[Problem]:
    kinds = Counter(machine_kind(r.platform) for seeds in per_seed.values() for r in seeds.values())
    if len(kinds) <= 1:
        return []
    listed = "; ".join(f"{kind} ({n} pairs)" for kind, n in kinds.most_common())
    return [Problem(name, "machines", f"pairs from {len(kinds)} kinds of machine in one table: {listed}; recompute "
                                      "the others on one kind with --force")]


def _selection(name: str, folder: Path) -> list[Problem]:
    if not (folder / layout.TUNE_JSON).is_file():
        return []
    scored = preset_origin.scored_on(folder)
    if scored and scored != "validation":
        return [Problem(name, "selection on test", f"its trials were scored on {scored}, not on validation "
                                                   "only; tune again (tune never reads the test split now)")]
    return []


def _computed_at(per_seed: PerSeed) -> dict[str, list[str]]:
    """Method (``eta.method_of`` of each row label) -> when each of its pairs was computed (UTC ISO)."""
    from benchmark.eta import method_of

    found: dict[str, list[str]] = {}
    for label, seeds in per_seed.items():
        for record in seeds.values():
            if record.computed_at:
                found.setdefault(method_of(label), []).append(record.computed_at)
    return found


def _order(name: str, folder: Path, per_seed: PerSeed) -> list[Problem]:
    """Rows computed before the selections their settings cite had finished (issue 44): a row's
    pairs must all postdate every selection pair of its method in the runs its settings record
    names (``chosen_by``). Both times are the suite's UTC ISO stamps (provenance.now)."""
    origin = settings.origin_of(read_json(folder / layout.PROVENANCE) or {})
    if origin is None or not origin.chosen_by:
        return []
    chosen: dict[str, list[str]] = {}
    for run in origin.chosen_by:
        for method, times in _computed_at(summary_records(folder.parent / run)).items():
            chosen.setdefault(method, []).extend(times)
    early = [f"{method} (a pair at {min(times)}, a selection pair at {max(chosen[method])})"
             for method, times in _computed_at(per_seed).items()
             if method in chosen and min(times) < max(chosen[method])]
    if not early:
        return []
    return [Problem(name, "selected after", f"rows computed before the selections their settings cite: {_few(early)}; "
                                            "recompute them with --force")]


def _settings_moved(name: str, folder: Path, per_seed: PerSeed) -> list[Problem]:
    """Rows whose pairs ran with a setting other than the one their settings record now holds
    for their method (``settings moved`` in the module docstring). Only a settings record of the
    results root counts (one a selection rewrites): the one given as ``--config``, or, for a run
    with the presets, its store's, which ``run`` there now trains with (benchmark/select_first.py).
    A key a row varies on purpose, its method's cost knob (a sweep's points) or a key a tune
    searches (its trials), is not compared, and an ablation's keys are not in a record."""
    from benchmark.eta import method_of
    from methods.registry import available_methods

    provenance = read_json(folder / layout.PROVENANCE) or {}
    config = provenance.get("config") or {}
    given = config.get("config_file")
    fingerprint = (provenance.get("dataset") or {}).get("fingerprint")
    record: settings.Record | None = None
    if isinstance(given, str) and given.endswith(settings.SUFFIX):
        record = settings.read(folder.parent / Path(given).name)
    elif not given and config.get("presets") and fingerprint:  # `run` there now trains with the store's record,
        record = settings.find(folder.parent, fingerprint, settings.carve(  # found as run finds it
            config.get("val_fraction", VALIDATION_FRACTION), config.get("val_seed", VALIDATION_SEED)))
    if record is None:
        return []
    tune = read_json(folder / layout.TUNE_JSON)
    searched = (tune.get("search_spaces") or {}) if isinstance(tune, dict) else {}  # a tune's trials vary them
    known, moved = available_methods(), []
    for label, seeds in per_seed.items():
        method = method_of(label)
        chosen = record.methods.get(method)
        if chosen is None:
            continue
        knob = getattr(known.get(method), "cost_knob", None)
        want = {**{k: v for k, v in chosen.items() if k != "train"},
                **{f"train.{k}": v for k, v in (chosen.get("train") or {}).items()}}
        for key in [getattr(knob, "name", None), *(searched.get(method) or {})]:
            want.pop(key, None)
        for seed in seeds:
            pair = read_json(layout.pair_dir(folder, label, seed) / layout.CONFIG) or {}
            ran = {**(pair.get("hparams") or {}), **{f"train.{k}": v for k, v in (pair.get("train") or {}).items()}}
            differ = [f"{key} {ran.get(key)!r}, now {value!r}" for key, value in want.items() if ran.get(key) != value]
            if differ:
                moved.append(f"{label} ({', '.join(differ)})")
                break
    if not moved:
        return []
    return [Problem(name, "settings moved", f"rows trained with settings {record.path.name} no longer holds: "
                                            f"{_few(moved)}; rerun the folder's command ({_refresh_command(folder)}: "
                                            "it recomputes them)")]


def _coverage(name: str, folder: Path, per_seed: PerSeed) -> list[Problem]:
    problems = []
    shown = {(label, str(seed)) for label, seeds in per_seed.items() for seed in seeds}
    runs = folder / layout.RUNS
    on_disk = [(d.parent.name, d.name.removeprefix("seed")) for d in sorted(runs.glob("*/seed*"))
               if d.is_dir() and pair_state(d).done] if runs.is_dir() else []
    left_out = [f"{label} seed {seed}" for label, seed in on_disk if (label, seed) not in shown]
    if left_out:
        problems.append(Problem(name, "uncovered", f"{len(left_out)} pairs done on disk are not in its table "
                                                   f"({_few(left_out)}); rerun the folder's command to include "
                                                   "them, or remove them"))
    missing = unbacked_pairs(folder)
    if missing:
        problems.append(Problem(name, "unbacked", f"its table shows {len(missing)} pairs not complete on disk "
                                                  f"({_few(missing)}); recompute them"))
    return problems


def _online(name: str, folder: Path, per_seed: PerSeed) -> list[Problem]:
    """The online curves of a folder, when a model they read was computed again after them (its
    record's time is later than online.json's) or is no longer in the table: the curves are then
    of other models than the table's. Both times are the suite's UTC ISO stamps (provenance.now)."""
    online = read_json(folder / layout.ONLINE_JSON)
    if not isinstance(online, dict) or not isinstance(online.get("written"), str):
        return []
    written = online["written"]
    later = []
    for key in online.get("weights") or {}:
        label, _, seed = str(key).rpartition("/seed")
        record = per_seed.get(label, {}).get(seed)
        if record is None or (record.computed_at or "") > written:
            later.append(f"{label} seed {seed}")
    if not later:
        return []
    return [Problem(name, "stale curves", f"online.json (written {written[:19]}) read {len(later)} models computed "
                                          f"again since or no longer in the table ({_few(later)}); run `python -m "
                                          f"benchmark online --name {name}` and `python -m benchmark plot --name "
                                          f"{name}` again")]


def _incomplete(name: str, folder: Path) -> list[Problem]:
    missing = [f for f in (layout.TABLE_MD, layout.TABLE_CSV, layout.TABLE_TEX) if not (folder / f).is_file()]
    if not missing:
        return []
    return [Problem(name, "incomplete", f"its summary has no {', '.join(missing)}; rerun the folder's command (its "
                                        "pairs are kept) to write its tables again")]


#: The numbers of a summary row checked against its seeds' records, and how each record holds them.
_CHECKED = {"map_percent": lambda r: 100 * float(r.map), "gflops": lambda r: float(r.gflops["mean"])}
#: The table columns checked against the summary, with the summary number each shows.
_CELLS = {"mAP (%)": "map_percent", "GFLOPs/video": "gflops"}


def _edited(name: str, folder: Path, per_seed: PerSeed) -> list[Problem]:
    """Whether the summary and table.md say what the pairs' records say (``KINDS``: edited)."""
    import math

    from benchmark import tables

    found: list[str] = []
    for label, seeds in per_seed.items():
        for seed, entry in seeds.items():
            record = read_json(layout.record_path(layout.pair_dir(folder, label, int(seed))))
            if isinstance(record, dict) and record != entry.to_json():
                found.append(f"metrics.json's {label} seed {seed} is not its record.json")
    summary = (read_json(folder / layout.SUMMARY) or {}).get("summary") or {}
    expected: dict[str, dict[str, str]] = {}
    for label, entry in summary.items():
        records = list((per_seed.get(label) or {}).values())
        if not isinstance(entry, dict) or not records:
            continue
        shown = {}
        for key, value in _CHECKED.items():
            mean, std = tables.mean_std([value(r) for r in records])  # as the table computes and prints them
            stated = (entry.get(key) or {}).get("mean")
            if not isinstance(stated, int | float) or not math.isclose(stated, mean, rel_tol=1e-9, abs_tol=1e-9):
                found.append(f"metrics.json's {key} of {label} is not the mean of its seeds")
            shown[key] = tables.plus_minus(mean, std, 1)
        expected[str(entry.get("display_name") or label)] = shown
    table = folder / layout.TABLE_MD
    lines = table.read_text(encoding="utf-8").split("\n") if table.is_file() else []
    if lines and lines[0].startswith("|"):
        header = [c.strip() for c in lines[0].split("|")[1:-1]]
        for line in lines[2:]:
            if not line.startswith("|"):
                break
            cells = [c.strip() for c in line.split("|")[1:-1]]
            row = tables.unmarked(cells[0]) if cells else ""
            for column, key in _CELLS.items():
                if column in header and row in expected and cells[header.index(column)] != expected[row][key]:
                    found.append(f"table.md's {column} of {row} ({cells[header.index(column)]}) is not its pairs' "
                                 f"({expected[row][key]})")
    if not found:
        return []
    return [Problem(name, "edited", f"{_few(found)}; rerun the folder's command (its pairs are kept) to write its "
                                    "summary and tables from the records again")]


def _few(items: list[str], shown: int = 3) -> str:
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _without_records(folder: Path) -> list[Problem]:
    """A folder with no pair records in its summary: fine when it shows no table of pairs; a
    problem when it shows rows nothing backs, or holds pairs no table shows."""
    data = read_json(folder / layout.SUMMARY)
    if isinstance(data, dict) and data.get("summary"):
        return [Problem(folder.name, "unbacked", f"its table's {len(data['summary'])} rows have no pair records: "
                                                 "which code made them is unknown; recompute it or remove it")]
    runs = folder / layout.RUNS
    done = [f"{d.parent.name} seed {d.name.removeprefix('seed')}" for d in sorted(runs.glob("*/seed*"))
            if d.is_dir() and pair_state(d).done] if runs.is_dir() else []
    if done:
        return [Problem(folder.name, "uncovered", f"{len(done)} pairs done on disk and no table of them "
                                                  f"({_few(done)}); rerun the folder's command, or remove them")]
    return []


def _older_schema(folder: Path) -> list[Problem]:
    """The folder's summary written in an earlier schema (benchmark/results.py ``read_current``), as
    one problem: its names mean other units, so nothing else of it can be checked."""
    try:
        layout.read_current(folder / layout.SUMMARY)
    except UsageError as exc:
        return [Problem(folder.name, "older schema", str(exc))]
    return []


def check_folder(folder: Path) -> list[Problem]:
    """Every problem of one results folder (none for a folder that shows no pairs and holds none)."""
    per_seed = summary_records(folder)
    if not per_seed:
        return [replace(p, root=str(folder.parent)) for p in _without_records(folder)]
    name = folder.name
    older = _older_schema(folder)
    if older:  # its names mean other units: nothing else can be checked
        return [replace(p, root=str(folder.parent)) for p in older]
    pairs = sum(len(seeds) for seeds in per_seed.values())
    found = (_stale(folder, pairs) + _machines(name, per_seed) + _selection(name, folder)
             + _order(name, folder, per_seed) + _settings_moved(name, folder, per_seed)
             + _coverage(name, folder, per_seed) + _online(name, folder, per_seed) + _incomplete(name, folder)
             + _edited(name, folder, per_seed))
    return sorted((replace(p, root=str(folder.parent)) for p in found), key=lambda p: KINDS.index(p.kind))


def not_learnt(results: Path, names: list[str]) -> list[str]:
    """One line per published folder with rows that did not learn (benchmark/protocol/learned.py):
    not a problem of its files (the tables mark those rows), but what a reader of the folder
    must know before citing a row of it."""
    lines = []
    for name in sorted(names):
        found = learned.row_verdicts(summary_records(results / name))
        if found:
            lines.append(f"{results / name}: did not learn (marked in its tables): "
                         + "; ".join(f"{label}: {why}" for label, why in found.items()))
    return lines


def unequal_effort(results: Path) -> list[str]:
    """One line per settings record under ``results`` whose methods' settings rest on unequal
    numbers of selection trainings (benchmark/store_settings.py ``effort``): a note, since the
    table's promise of the same tuning effort for every method does not hold for them."""
    lines = []
    for record in settings.records(results):
        counts = settings.effort(record)
        if len(set(counts.values())) > 1:
            lines.append(f"{record.path}: {settings.effort_words(counts)} (the same effort for every method would "
                         "give each the same number)")
    return lines


def check(results: Path, names: list[str]) -> list[Problem]:
    """The problems of the folders ``names``, in order."""
    found: list[Problem] = []
    with remembering_pair_states(), progress_bar(total=len(names), desc="report --check", unit="folder") as bar:
        for name in sorted(names):  # a folder's coverage and its sweep's source ask about the same pairs
            found += check_folder(results / name)
            bar.update(1)
    return found
