"""Both average precisions against brute-force references, with ties and absent classes."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.measurement.metrics import interpolated_ap, score, top1_accuracy


def brute_force_ap(scores: np.ndarray, positives: np.ndarray) -> float:
    """Tie-grouped AP: sum over distinct thresholds of (recall gain) x precision."""
    total, ap, previous_recall = positives.sum(), 0.0, 0.0
    for threshold in sorted(set(scores.tolist()), reverse=True):
        taken = scores >= threshold
        precision = positives[taken].sum() / taken.sum()
        recall = positives[taken].sum() / total
        ap += (recall - previous_recall) * precision
        previous_recall = recall
    return ap


def brute_force_interpolated(scores: np.ndarray, positives: np.ndarray) -> float:
    """For each positive in rank order (ties in input order): the best precision at or after it."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable
    ranked = positives[order]
    precisions = [ranked[: k + 1].sum() / (k + 1) for k in range(len(ranked))]
    return sum(max(precisions[k:]) for k in range(len(ranked)) if ranked[k]) / ranked.sum()


@pytest.mark.parametrize("seed", range(20))
def test_average_precisions_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, c = 40, 6
    scores = rng.integers(0, 5, (n, c)) / 4.0  # few distinct values: many ties
    labels = rng.random((n, c)) < 0.3
    labels[:, 2] = False  # an absent class
    labels[0, 0] = True
    result = score(scores, labels)
    assert result.classes_without_positives == [2] + [k for k in range(c) if k != 2 and not labels[:, k].any()]
    present = [k for k in range(c) if labels[:, k].any()]
    expected_ap = [brute_force_ap(scores[:, k], labels[:, k]) for k in present]
    expected_interp = [brute_force_interpolated(scores[:, k], labels[:, k]) for k in present]
    assert result.map == pytest.approx(np.mean(expected_ap), abs=1e-12)
    assert result.map_interpolated == pytest.approx(np.mean(expected_interp), abs=1e-12)
    assert result.per_class_ap[2] is None


def test_known_values():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    positives = np.array([1, 0, 1, 0], dtype=bool)
    # ranks: hit (P=1), miss, hit (P=2/3), miss -> AP = (1 + 2/3) / 2
    assert brute_force_ap(scores, positives) == pytest.approx(5 / 6)
    assert interpolated_ap(scores, positives) == pytest.approx(5 / 6)
    # A tie between a hit and a miss: tie-grouped AP takes both at once, interpolated AP
    # depends on their order.
    tied = np.array([0.5, 0.5])
    assert score(np.stack([tied, 1 - tied], 1), np.array([[0, 1], [1, 0]], bool)).map == pytest.approx(0.5)
    assert interpolated_ap(tied, np.array([False, True])) == pytest.approx(0.5)
    assert interpolated_ap(tied, np.array([True, False])) == pytest.approx(1.0)


def test_top1_counts_any_label_of_a_multi_label_video():
    scores = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    labels = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]], bool)
    assert top1_accuracy(scores, labels) == pytest.approx(2 / 3)


def test_shape_mismatch_and_nothing_to_score():
    with pytest.raises(ValueError, match="differ in shape"):
        score(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no class has a positive"):
        score(np.zeros((3, 2)), np.zeros((3, 2)))
