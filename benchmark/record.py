"""The per-pair result record: the one schema of ``runs/<method>/seed<k>/record.json``.

The runner writes a ``PairRecord`` when a method/seed pair is done; the tables, the tuning
summary, the evidence re-read, the audit and the time estimates read it back by attribute,
never by string keys scattered over modules: a pair's file through ``PairRecord.load``, the
copies in a folder summary's ``per_seed`` section (metrics.json) through ``summary_records``,
the one reader of that section.
Keys a record on disk has beyond these fields (written by an earlier or later version, such
as ``fine_reads_vs_evidence_recomputed``) are kept in ``extra`` and written back unchanged:
nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from benchmark.code_fingerprint import stale_reason
from benchmark.results import RECORD, RUNS, SCHEMA_KEY, SCHEMA_VERSION, SUMMARY, pair_dir, pair_state, read_json
from datasets.common.atomic import atomic_write_json
from datasets.common.errors import UsageError

#: What ``gflops_unit`` says in every record.
GFLOPS_UNIT = "GMACs per video (multiply-accumulates / 1e9), counted with ptflops (aten backend)"


@dataclass
class PairRecord:
    """One trained and evaluated method/seed pair. Fractions (mAP, top-1) are in 0..1;
    ``gflops``, ``frames_read`` and ``steps`` are distributions over the evaluated videos
    (benchmark/costs.distribution: mean, std, percentiles)."""

    method: str  # the result's name (a registry name, or an ablation / tuning label)
    seed: int
    online: bool
    evaluated_on: str  # the evaluation split, or "validation" for tuning trials (a selection run)
    map: float
    map_interpolated: float
    top1: float
    classes_without_positives: list[str]
    per_class_ap: dict[str, float | None]  # None: the class has no positive among the evaluated videos
    gflops: dict[str, float]
    gflops_unit: str
    per_frame_gmacs: dict[str, float]
    per_step_gmacs: dict[str, float]
    frames_read: dict[str, dict[str, float]]
    steps: dict[str, dict[str, float]]
    fine_reads_vs_evidence: dict[str, Any] | None  # synthetic stores only (benchmark/measurement/evidence.py)
    params: int
    train_seconds: float
    train_steps: int
    budget_steps: int
    epochs: float
    selection: dict[str, Any]
    final_train_loss: float
    train_history: list[dict[str, float]]
    eval_seconds: float
    eval_videos_per_second: float
    num_eval_videos: int
    hparams: dict[str, Any]
    train: dict[str, Any]
    computed: dict[str, Any]  # where, when and with what the pair was computed
    files: dict[str, str] | None = None  # SHA-256 of the pair's other files (benchmark/results.py)
    # The code that computed it, file by file (benchmark/code_fingerprint.py); None: written before fingerprints.
    code: dict[str, Any] | None = None
    # The results files' schema this record was written in (benchmark/results.py); None: schema 1,
    # written before the field (read and written back as it was; what reads a folder's numbers
    # refuses a schema-1 summary: benchmark/results.py ``read_current``).
    schema_version: int | None = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ derived numbers
    @property
    def fine_frames(self) -> float:
        """Mean fine frames read per video (0 for a method that reads no fine feature)."""
        return float(self.frames_read.get("fine", {}).get("mean", 0.0))

    @property
    def stale(self) -> str:
        """Why this pair's numbers may not be what the current code computes ("" when they are)."""
        return stale_reason(self.code)

    @property
    def evidence_lift(self) -> float | None:
        return (self.fine_reads_vs_evidence or {}).get("lift")

    @property
    def platform(self) -> dict[str, Any]:
        """The platform the pair was computed on ({}: unknown), as benchmark/provenance.py keys it."""
        platform = self.computed.get("platform") if isinstance(self.computed, dict) else None
        return platform if isinstance(platform, dict) else {}

    @property
    def computed_at(self) -> str | None:
        """When the pair was computed (the suite's UTC ISO stamp, provenance.now)."""
        at = self.computed.get("at") if isinstance(self.computed, dict) else None
        return at if isinstance(at, str) else None

    @property
    def seconds(self) -> float | None:
        """Seconds the pair took, training and evaluation (None: no time recorded)."""
        return (float(self.train_seconds or 0) + float(self.eval_seconds or 0)) or None

    # ------------------------------------------------------------------ (de)serialisation
    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        for optional in ("files", "code", SCHEMA_KEY):
            if data[optional] is None:
                del data[optional]
        return {**data, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = RECORD) -> PairRecord:
        if not isinstance(data, dict):
            raise UsageError(f"{where}: not a result record (a JSON object is expected)")
        known = {f.name for f in fields(cls)} - {"extra"}
        required = [f.name for f in fields(cls) if f.name not in ("files", "code", SCHEMA_KEY, "extra")]
        missing = [name for name in required if name not in data]
        if missing:
            raise UsageError(f"{where}: the result record lacks {missing}; recompute the pair with --force")
        return cls(**{SCHEMA_KEY: None, **{k: v for k, v in data.items() if k in known}},
                   extra={k: v for k, v in data.items() if k not in known})

    @classmethod
    def parsed(cls, data: Any) -> PairRecord | None:
        """``from_json``, or None for what is not a readable record: for the readers that pass over
        such an entry (a summary's copies, the scheduler's look at kept pairs) rather than stop."""
        try:
            return cls.from_json(data)
        except (UsageError, TypeError):
            return None

    @classmethod
    def found(cls, folder: Path) -> PairRecord | None:
        """The record in the pair folder ``folder``, or None where there is no readable one
        (``parsed``): for the readers that pass over a pair that is not done."""
        return cls.parsed(read_json(folder / RECORD))

    @classmethod
    def load(cls, path: Path) -> PairRecord:
        data = read_json(path)
        if data is None:
            raise UsageError(f"{path}: missing, empty or not JSON; recompute the pair with --force")
        return cls.from_json(data, where=str(path))

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_json())


#: A folder summary's pairs, typed: row label -> seed (a string, as JSON keys are) -> its record.
PerSeed = dict[str, dict[str, PairRecord]]


def records_of(per_seed: Any) -> PerSeed:
    """A summary's ``per_seed`` block (metrics.json; as written, a dict of dicts) read as records.
    An entry that is not a readable record is left out: the pair is then one the folder's table
    does not show, which ``report --check`` names ("uncovered")."""
    out: PerSeed = {}
    for label, seeds in (per_seed if isinstance(per_seed, dict) else {}).items():
        if not isinstance(seeds, dict):
            continue
        parsed = {str(seed): PairRecord.parsed(data) for seed, data in seeds.items()}
        out[str(label)] = {seed: record for seed, record in parsed.items() if record is not None}
    return out


def summary_records(folder: Path) -> PerSeed:
    """The pair records a folder's summary holds (metrics.json's ``per_seed``): the one reader of
    ``per_seed``; {} where the summary is absent or unreadable."""
    data = read_json(folder / SUMMARY)
    return records_of(data.get("per_seed") if isinstance(data, dict) else None)


def unbacked_pairs(out: Path) -> list[str]:
    """The pairs a results folder's summary (metrics.json's ``per_seed``, what its table shows)
    lists that are not done on disk (``pair_state``), each with why: the one rule every reader
    of a folder applies (the report refuses such a folder; ``online``, ``latency`` and
    ``stream`` refuse the pair). A folder without ``runs/`` keeps its summary only (its pairs
    were not kept) and is not checked here; the report says so."""
    per_seed = summary_records(out)
    if not per_seed or not (out / RUNS).is_dir():
        return []
    missing = []
    for name, seeds in per_seed.items():
        for seed in seeds:
            state = pair_state(pair_dir(out, name, seed))
            if not state.done:
                missing.append(f"{name} seed {seed} ({state.reason})")
    return missing
