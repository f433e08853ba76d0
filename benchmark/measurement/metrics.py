"""Recognition metrics: mAP (scikit-learn), ActivityNet-style interpolated mAP, top-1.

Average precision is computed per class over all evaluated videos, then averaged over
classes. A class with no positive video in the evaluated split has no defined AP: it is
left out of both means and listed in ``classes_without_positives``.

* ``mean_ap``: scikit-learn's ``average_precision_score``, which groups tied scores (the
  result does not depend on the order of ties).
* ``mean_interpolated_ap``: the ActivityNet evaluator's definition, precision made
  monotone by a running maximum from the right, integrated over recall steps. It depends
  on the order of tied scores; we rank ties in video order (a stable sort), as the
  official code's ``argsort`` does for its input order.
* ``top1``: the highest-scoring class is one of the video's labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score

from datasets.common.errors import UsageError


@dataclass(frozen=True)
class Scores:
    map: float
    map_interpolated: float
    top1: float
    classes_without_positives: list[int]
    per_class_ap: list[float | None]


def interpolated_ap(scores: np.ndarray, positives: np.ndarray) -> float:
    """ActivityNet-style interpolated average precision of one class."""
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(np.float64)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / hits.sum()
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def top1_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of videos whose highest-scoring class is among their labels."""
    best = scores.argmax(axis=1)
    return float(labels[np.arange(len(labels)), best].astype(bool).mean())


def score(scores: np.ndarray, labels: np.ndarray) -> Scores:
    """All metrics for (N, C) scores against (N, C) multi-hot labels."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.shape != labels.shape:
        raise UsageError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    per_class: list[float | None] = []
    interpolated: list[float] = []
    absent: list[int] = []
    for c in range(labels.shape[1]):
        if not labels[:, c].any():
            absent.append(c)
            per_class.append(None)
            continue
        per_class.append(float(average_precision_score(labels[:, c], scores[:, c])))
        interpolated.append(interpolated_ap(scores[:, c], labels[:, c]))
    present = [ap for ap in per_class if ap is not None]
    if not present:
        raise UsageError("no class has a positive video: there is nothing to score")
    return Scores(
        map=float(np.mean(present)),
        map_interpolated=float(np.mean(interpolated)),
        top1=top1_accuracy(scores, labels),
        classes_without_positives=absent,
        per_class_ap=per_class,
    )
