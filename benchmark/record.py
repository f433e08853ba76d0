"""The per-pair result record: the one schema of ``runs/<method>/seed<k>/metrics.json``.

The runner writes a ``PairRecord`` when a method/seed pair is done; the tables, the tuning
summary, the evidence re-read and ``metrics.json``'s ``per_seed`` section read it back
through ``PairRecord.load``, by attribute, never by string keys scattered over modules.
Keys a record on disk has beyond these fields (written by an earlier or later version, such
as ``fine_reads_vs_evidence_recomputed``) are kept in ``extra`` and written back unchanged:
nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from benchmark.code_fingerprint import stale_reason
from benchmark.results import RECORD, SCHEMA_KEY, SCHEMA_VERSION, read_json
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
    # written before the field (read and written back as it was; `python -m benchmark migrate` adds it).
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
    def load(cls, path: Path) -> PairRecord:
        data = read_json(path)
        if data is None:
            raise UsageError(f"{path}: missing, empty or not JSON; recompute the pair with --force")
        return cls.from_json(data, where=str(path))

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.to_json())
