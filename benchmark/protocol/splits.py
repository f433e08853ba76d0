"""The held-out validation split, carved deterministically from the training split.

Model selection (best checkpoint, early stopping, ``benchmark tune``) looks only at these
rows; the evaluation split is read once, at the end. The carve is stratified by each
video's first label (scikit-learn's ``train_test_split``), depends only on the training
split's labels, ``fraction`` and ``seed`` (not on the method or the training seed), and
its video ids are recorded with the results. ActivityNet evaluates on ``validation``, so
there too the held-out rows come from ``training``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from datasets.common.errors import UsageError

VALIDATION_FRACTION = 0.15
VALIDATION_SEED = 0


@dataclass(frozen=True)
class HeldOut:
    """Rows (of the training split's bank) that train, and rows that select."""

    train_rows: np.ndarray
    val_rows: np.ndarray
    fraction: float
    seed: int

    def val_ids(self, video_ids: list[str]) -> list[str]:
        return [video_ids[i] for i in self.val_rows.tolist()]

    def digest(self, video_ids: list[str]) -> str:
        """A short hash of the validation ids (part of a result's identity)."""
        return hashlib.sha256("\n".join(self.val_ids(video_ids)).encode()).hexdigest()[:16]


def carve_validation(labels: np.ndarray, fraction: float = VALIDATION_FRACTION,
                     seed: int = VALIDATION_SEED) -> HeldOut:
    """Split the rows of a labelled training split ((N, C) multi-hot ``labels``).

    Videos whose first label is shared by fewer than two videos cannot be stratified and
    stay in training; at least one validation video per stratum is drawn when the fraction
    allows it."""
    if not 0 < fraction < 1:
        raise UsageError(f"--val-fraction {fraction}: must lie strictly between 0 and 1, e.g. 0.15")
    labels = np.asarray(labels)
    n = len(labels)
    if n < 4:
        raise UsageError(f"the training split has {n} videos: too few to hold some out for validation")
    strata = labels.argmax(axis=1)
    counts = np.bincount(strata, minlength=labels.shape[1])
    stratifiable = np.flatnonzero(counts[strata] >= 2)
    solo = np.flatnonzero(counts[strata] < 2)
    wanted = max(1, round(fraction * n))
    groups = len(np.unique(strata[stratifiable]))
    size = min(max(wanted, groups), len(stratifiable) - groups) if groups else 0
    if size < 1:
        raise UsageError(f"the training split ({n} videos) cannot spare a validation video; use more training data")
    stratify = strata[stratifiable] if size >= groups and len(stratifiable) - size >= groups else None
    from sklearn.model_selection import train_test_split  # here: the command line starts without it

    train, val = train_test_split(stratifiable, test_size=size, random_state=seed, stratify=stratify)
    return HeldOut(np.sort(np.concatenate([train, solo])).astype(np.int64), np.sort(val).astype(np.int64),
                   fraction, seed)

