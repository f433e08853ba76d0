"""Paired bootstrap confidence intervals for mAP differences over test videos.

Is method A really better than method B, or is the gap noise from which videos happened to
be in the test split? Resample the test videos with replacement (the same resample for
both methods: paired), recompute both mAPs, and read the 2.5th and 97.5th percentiles of
the difference. Seeds are pooled: each method's mAP on a resample is the mean over its
seeds, so the interval covers both the test set's sampling and the training seeds' spread
as it shows in the mean.

Thousands of resamples of mAP over 40 classes and several methods and seeds are too many
for one scikit-learn call each, so ``average_precision`` computes the same quantity as
``sklearn.metrics.average_precision_score`` (ties grouped: every video in a group of equal
scores gets the precision at the group's end) for all classes of many score matrices at
once, by weighting each video with its count in a resample instead of copying it;
tests/test_bootstrap.py checks it against scikit-learn, and the interval against a
brute-force loop over ``metrics.score``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 1000
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0


def average_precision(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Average precision per class of S score matrices, optionally under R video weightings.

    ``scores`` (S, N, C), ``labels`` (N, C), ``weights`` (R, N) counts of each video (a
    bootstrap resample: video i taken ``weights[r, i]`` times) -> (R, S, C); without
    weights, (S, C). A weighted AP equals the AP of the resample itself (a duplicated video
    ties with its copies), so each column is sorted once, not once per resample. A class
    without a positive video gets NaN (``metrics.score`` leaves it out of the mean)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    unweighted = weights is None
    # float32 counts and sums: exact for integer counts, ample for a percentile interval.
    weights = np.ones((1, scores.shape[1]), np.float32) if unweighted else np.asarray(weights, dtype=np.float32)
    n = scores.shape[1]
    out = np.empty((len(weights), scores.shape[0], scores.shape[2]))
    for c in range(scores.shape[2]):
        order = np.argsort(-scores[:, :, c], axis=1, kind="stable")  # (S, N)
        ranked = np.take_along_axis(scores[:, :, c], order, axis=1)
        hits = labels[order, c].astype(np.float32)  # (S, N)
        # The end of each run of equal scores: every video in the run gets its precision.
        last = np.ones(ranked.shape, dtype=bool)
        last[:, :-1] = ranked[:, 1:] != ranked[:, :-1]
        ends = np.where(last, np.arange(n), n)
        ends = np.flip(np.minimum.accumulate(np.flip(ends, axis=1), axis=1), axis=1)
        w = weights[:, order]  # (R, S, N)
        weighted_hits = w * hits
        seen = np.cumsum(w, axis=2)
        precision = np.divide(np.cumsum(weighted_hits, axis=2), seen, out=np.zeros_like(seen), where=seen > 0)
        at_end = np.take_along_axis(precision, np.broadcast_to(ends, w.shape), axis=2)
        positives = weighted_hits.sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, :, c] = np.where(positives > 0, (weighted_hits * at_end).sum(axis=2) / positives, np.nan)
    return out[0] if unweighted else out


def mean_ap(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """mAP over the classes that have a positive video: (S, N, C) -> (S,), or (R, S) with weights."""
    return np.nanmean(average_precision(scores, labels, weights), axis=-1)


@dataclass(frozen=True)
class Difference:
    """mAP(method) - mAP(reference), both averaged over seeds, in mAP units (0..1)."""

    estimate: float
    low: float
    high: float
    resamples: int
    confidence: float

    def to_dict(self) -> dict[str, float | int | str]:
        return {"estimate": self.estimate, "ci_low": self.low, "ci_high": self.high, "resamples": self.resamples,
                "confidence": self.confidence, "method": "paired percentile bootstrap over test videos, seeds pooled"}


def resample_indices(num_videos: int, resamples: int = RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(resamples, num_videos) video indices drawn with replacement, fixed by ``seed``."""
    return np.random.default_rng(seed).integers(0, num_videos, size=(resamples, num_videos))


def resample_counts(indices: np.ndarray, num_videos: int) -> np.ndarray:
    """How often each video occurs in each resample: (R, N) -> (R, num_videos)."""
    counts = np.zeros((len(indices), num_videos), dtype=np.float32)
    np.add.at(counts, (np.arange(len(indices))[:, None], indices), 1)
    return counts


def resampled_maps(scores: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """mAP of each of S score matrices (S, N, C) on each resample: (R, S).

    Computed once per method, then paired with any other method's by ``paired_difference``
    (the same ``counts`` make the pairing)."""
    return mean_ap(scores, labels, counts)


def paired_difference(method_scores: np.ndarray, reference_scores: np.ndarray, labels: np.ndarray,
                      counts: np.ndarray, *, method_draws: np.ndarray | None = None,
                      reference_draws: np.ndarray | None = None, confidence: float = CONFIDENCE) -> Difference:
    """The seed-pooled mAP difference and its bootstrap interval.

    ``method_scores`` (S, N, C) and ``reference_scores`` (S', N, C) are the per-seed scores
    of the same N videos (same order), ``labels`` (N, C); ``counts`` from
    ``resample_counts``. ``*_draws`` are ``resampled_maps`` already computed with the same
    counts (a run compares every method with one reference)."""
    if method_draws is None:
        method_draws = resampled_maps(method_scores, labels, counts)
    if reference_draws is None:
        reference_draws = resampled_maps(reference_scores, labels, counts)
    estimate = float(mean_ap(method_scores, labels).mean() - mean_ap(reference_scores, labels).mean())
    draws = method_draws.mean(axis=1) - reference_draws.mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Difference(estimate, float(low), float(high), len(counts), confidence)
