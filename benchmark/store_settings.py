"""Settings chosen on a store, found by the store's identity: what a fair run on it trains with.

A method's settings fit the store they were chosen on; another store's may leave it untrained
(issue 43: on a store nobody had tuned on, seven of eleven rows fell far below what the same
methods reach once chosen there). So the choice is the store's own, and it is looked up by what
the store *is* (its fingerprint: benchmark/stores.py ``dataset_fingerprint``), never by a name
that another store may share.

``results/<name>.settings.json`` is a config file (one table per method, what ``run --config``
takes) plus one entry of its own, ``_store`` (``STORE_KEY``): the store's name and fingerprint,
the held-out validation part the choice was scored on (``validation``: its fraction and seed) and
the selection runs that chose the tables. A record is found by the store's fingerprint *and* that
carve: a run with another --val-fraction or --val-seed selects on its own validation part (and
trains on another training part), so it gets its own record rather than a choice scored on videos
it now trains on. A record without ``validation`` (written before the field) matches no carve.
``python -m benchmark reproduce`` writes it for the repository's stores; ``python -m benchmark
run`` writes one the first time it meets a store without one (benchmark/select_first.py). A
record covers the methods it has a table for; a method without one has not been chosen on the store.

How a run's settings are described (``Origin``) goes into its provenance, its caption and, where
they were chosen on another store, into every affected row's name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmark.config import STORE_KEY
from benchmark.record import summary_records
from benchmark.results import read_json
from datasets.common.atomic import atomic_write_json
from datasets.common.errors import UsageError

#: What names a settings record: results/<name>.settings.json.
SUFFIX = ".settings.json"
#: The selection every method gets on a store without settings: the same for every method, as in
#: ``python -m benchmark reproduce``'s tune (its defaults read these).
SELECTION_TRIALS = 4
SELECTION_SEEDS = (0,)
#: Synthetic presets made for trying the harness out, too small to choose settings on (``tiny``:
#: 160 videos, about two validation videos a class): a run on one trains the shipped defaults and says so.
TRY_OUT_PRESETS = ("tiny",)
#: How rows run with another store's settings are marked, completed with that store's name.
FOREIGN_MARK = "(settings of {store})"


@dataclass(frozen=True)
class Record:
    """A store's settings record (module docstring)."""

    path: Path
    store: str  # the store's name when chosen
    fingerprint: str | None  # None: a record written before records said which store they were chosen on
    methods: dict[str, dict[str, Any]]  # method -> its table of the config file
    chosen_by: tuple[str, ...] = ()  # results folders of the selection runs that chose the tables
    validation: dict[str, Any] | None = None  # the carve it was scored on (``carve``); None: not recorded

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(SUFFIX)


def read(path: Path) -> Record | None:
    """The record at ``path``; None where there is none. A file that is not one is an error."""
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(f"{path}: not a settings record (one table per method, and {STORE_KEY}); rewrite it with "
                         "`python -m benchmark reproduce --stages tune` or remove it")
    meta = data.get(STORE_KEY) or {}
    return Record(path=path, store=str(meta.get("name") or path.name.removesuffix(SUFFIX)),
                  fingerprint=meta.get("fingerprint"), methods={k: v for k, v in data.items() if k != STORE_KEY},
                  chosen_by=tuple(meta.get("chosen_by") or ()),
                  validation=meta.get("validation") if isinstance(meta.get("validation"), dict) else None)


def carve(fraction: float, seed: int) -> dict[str, Any]:
    """The held-out validation part a choice was scored on, as a record states it."""
    return {"fraction": float(fraction), "seed": int(seed)}


def records(root: Path) -> list[Record]:
    """Every settings record under ``root``, by name."""
    return [r for path in sorted(root.glob(f"*{SUFFIX}")) if (r := read(path)) is not None]


def find(root: Path, fingerprint: str, validation: dict[str, Any]) -> Record | None:
    """The record chosen on the store with ``fingerprint`` scored on the ``validation`` carve, if
    ``root`` holds one."""
    return next((r for r in records(root) if r.fingerprint == fingerprint and r.validation == validation), None)


def selection_folder(path: Path, added: tuple[str, ...] = ()) -> str:
    """The results folder of a selection ``python -m benchmark run`` makes for the record at
    ``path`` (benchmark/select_first.py): ``<record's name>-tune`` for the store's first; a later
    one, of the ``added`` methods the record lacks (a plug-in added to a table), its own
    ``<record's name>-tune-<methods>``, so that no selection rewrites another's choices."""
    first = f"{path.name.removesuffix(SUFFIX)}-tune"
    return f"{first}-{'+'.join(added)}" if added else first


def made_by_run(path: Path, chosen_by: tuple[str, ...]) -> bool:
    """Whether every selection behind the record at ``path`` (its ``chosen_by``) is one that
    ``python -m benchmark run`` made (``selection_folder``), not a study or ``reproduce``'s tune."""
    first = selection_folder(path)
    return bool(chosen_by) and all(f == first or f.startswith(f"{first}-") for f in chosen_by)


def matched_trials(record: Record | None) -> int:
    """The trials of each method a selection adds to ``record``: as many selection trainings as
    the record's most-selected method rests on (``effort``; on the default store, 10 with its
    design studies), so that a plug-in added to a table is chosen with the same effort as its
    rows; ``SELECTION_TRIALS`` where there is no record, or none of its selections is here."""
    most = max(effort(record).values(), default=0) if record is not None else 0
    return -(-most // len(SELECTION_SEEDS)) if most else SELECTION_TRIALS


def named(root: Path, name: str) -> Record:
    """The record ``--settings-from`` names: results/<name>.settings.json, or a path to one."""
    path = Path(name) if name.endswith(SUFFIX) else root / f"{name}{SUFFIX}"
    record = read(path)
    if record is None:
        known = ", ".join(r.name for r in records(root)) or "none"
        raise UsageError(f"--settings-from {name}: no settings record {path}; records under {root}: {known}")
    return record


def path_for(root: Path, label: str, fingerprint: str, validation: dict[str, Any]) -> Path:
    """Where a new record of the store (named ``label``) goes: results/<label>.settings.json, unless
    another store's record has that name (the same preset at another --data-seed, two stores
    both called "features"): then the name carries the fingerprint too; or the store's record of
    another carve: then the name carries this carve."""
    path = root / f"{label}{SUFFIX}"
    taken = read(path)
    if taken is None or (taken.fingerprint == fingerprint and taken.validation == validation):
        return path
    if taken.fingerprint != fingerprint:
        return root / f"{label}-{fingerprint[:8]}{SUFFIX}"
    return root / f"{label}-val{validation['fraction']:g}-{validation['seed']}{SUFFIX}"


def write(path: Path, *, store: str, fingerprint: str | None, methods: dict[str, dict[str, Any]],
          chosen_by: list[str] | tuple[str, ...], validation: dict[str, Any]) -> None:
    """Write the record atomically (unchanged content: the file is left as it is)."""
    data: dict[str, Any] = {STORE_KEY: {"name": store, "fingerprint": fingerprint, "validation": validation,
                                        "chosen_by": list(chosen_by)}, **methods}
    if read_json(path) != data:
        atomic_write_json(path, data)


def effort(record: Record) -> dict[str, int]:
    """The selection trainings behind each method's settings in ``record``: its pairs (trials x
    seeds) in every run that chose them (``chosen_by``, beside the record), its own design studies
    included. "The same tuning effort for every method" holds when these are equal."""
    from benchmark.eta import method_of

    counts: dict[str, int] = {method: 0 for method in record.methods}
    for folder in record.chosen_by:
        for label, seeds in summary_records(record.path.parent / folder).items():
            method = method_of(label)
            if method in counts:
                counts[method] += len(seeds)
    return counts


def effort_words(counts: dict[str, int]) -> str:
    """``effort`` in words: "N selection trainings each", or each method's count where they differ."""
    if not counts:
        return "no selection trainings recorded"
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} selection trainings each"
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return "unequal selection trainings: " + ", ".join(f"{method} {n}" for method, n in ranked)


@dataclass(frozen=True)
class Origin:
    """Where a run's settings come from, as its provenance records it and its caption says it.

    ``kind``: "own" (chosen on this store), "other" (chosen on another store, on purpose:
    ``--settings-from``), "defaults" (the shipped defaults, chosen across stores: methods/shipped.py,
    on a store too small to choose on)."""

    kind: str
    store: str = ""  # the store the settings were chosen on ("own", "other")
    record: str = ""  # the record's path
    chosen_by: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()  # the run's methods the record covers
    uncovered: tuple[str, ...] = ()  # the run's methods it does not (class defaults): "other" only
    why: str = ""  # "defaults": why nothing was chosen here
    effort: str = ""  # the selection trainings behind the settings, in words (``effort_words``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Origin | None:
        if not isinstance(data, dict) or data.get("kind") not in ("own", "other", "defaults"):
            return None
        text = {k: str(data.get(k) or "") for k in ("kind", "store", "record", "why", "effort")}
        names = {k: tuple(data.get(k) or ()) for k in ("chosen_by", "methods", "uncovered")}
        return cls(text["kind"], text["store"], text["record"], names["chosen_by"], names["methods"],
                   names["uncovered"], text["why"], text["effort"])

    def marked(self) -> dict[str, str]:
        """Method -> the mark its row carries: every method of another store's record."""
        if self.kind != "other":
            return {}
        return {method: FOREIGN_MARK.format(store=self.store) for method in self.methods}

    def sentence(self) -> str:
        """The caption's sentence on the settings."""
        if self.kind == "own":
            beside = Path(self.record).parent
            by = f", by {', '.join(str(beside / f) for f in self.chosen_by)}" if self.chosen_by else ""
            text = (f"Settings: chosen on this store's validation part ({self.record}{by}; "
                    f"{self.effort or 'the same selection for every method'}: benchmark/store_settings.py).")
            if made_by_run(Path(self.record), self.chosen_by):  # `run`'s selections alone
                text += (" It searched each method's search space (a built-in method's optimiser and dropout) from "
                         "the shipped defaults, whose design settings (a reading, an architecture) were chosen across "
                         "stores (methods/shipped.py).")
            return text
        if self.kind == "other":
            effort = f"; {self.effort}" if self.effort else ""
            text = (f"Settings: chosen on another store, {self.store} ({self.record}{effort}), not on this one, on "
                    "purpose "
                    f"(--settings-from): rows marked {FOREIGN_MARK.format(store=self.store)} were not selected here "
                    "and may be far from what the method reaches once chosen on this store.")
            if self.uncovered:
                text += f" {', '.join(self.uncovered)}: class defaults (that record has no settings for them)."
            return text
        return (f"Settings: the methods' shipped defaults (chosen across stores: methods/shipped.py), not chosen "
                f"on this store ({self.why}).")


#: Origins are recorded in provenance.json under this key of the run's config (RunConfig.settings_origin).
ORIGIN_FIELD = "settings_origin"


def origin_of(provenance: dict[str, Any]) -> Origin | None:
    """A folder's settings origin, from its provenance.json (None: written before origins were recorded,
    or settings given by hand: --config, --no-presets)."""
    return Origin.from_dict(((provenance or {}).get("config") or {}).get(ORIGIN_FIELD))

