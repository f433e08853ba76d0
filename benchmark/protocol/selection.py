"""The one selection rule, for training checkpoints and tuning trials alike.

Selecting on validation mAP alone favours the candidates that read more: a trial or a
checkpoint that reads twice the frames wins on a tenth of a point that the 270 validation
videos cannot tell from noise (LiteEval-RL's first tune on the default took its 1288-GFLOP
trial for 100.0 mAP against 99.5 at 1287 and 99.4 at 1269). The table compares accuracy *and*
cost, so selection does too, with the one-standard-error rule of model selection (Breiman et
al. 1984; Hastie, Tibshirani and Friedman, *Elements of Statistical Learning*, 7.10):

1. the *best* candidate has the highest validation mAP (seeds pooled; ties: the earliest);
2. for every candidate, its *gap* is the best's mAP minus its own, and its *standard error*
   is the standard deviation of that gap over paired bootstrap resamples of the validation
   videos (the same resample for both, as benchmark/measurement/bootstrap.py pairs two table rows);
3. a candidate is *within the noise* when its gap is at most one standard error (the best
   always is);
4. the *chosen* one is the cheapest within the noise, by mean validation GFLOPs per video;
   ties go to the higher mAP, then to the earlier candidate (the earlier checkpoint, or trial
   0, the current setting).

A method whose cost does not vary between candidates is therefore chosen on mAP as before.
``fit`` (benchmark/training.py) applies it to the checkpoints of one training run, ``tune``
(benchmark/commands/tune.py) to the trials of a method; both record every candidate's verdict.
Only the validation part of the training split is ever scored here (benchmark/protocol/splits.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.measurement import bootstrap
from datasets.common.errors import UsageError

#: Resamples of the validation videos behind each standard error, and their fixed seed.
RESAMPLES = 1000
SEED = 0
#: What every record says about how its candidate was chosen.
RULE = ("validation only; among the candidates whose validation mAP is within one paired-bootstrap standard error "
        "of the best, the cheapest by validation GFLOPs per video (ties: higher mAP, then the earlier)")


@dataclass(frozen=True)
class Candidate:
    """One trial or checkpoint, scored on the validation videos."""

    key: Any  # the checkpoint's step, or the trial's number
    map: float  # validation mAP (0..1), the mean over seeds
    draws: np.ndarray  # (RESAMPLES,) that mean on each resample of the validation videos (``resample_counts``)
    gflops: float  # mean validation GFLOPs per video


@dataclass(frozen=True)
class Verdict:
    """What the rule made of one candidate."""

    key: Any
    map: float
    gflops: float
    gap: float  # the best's mAP minus this one's (0..1)
    standard_error: float  # of the gap, over the paired resamples
    within_noise: bool
    chosen: bool

    def to_dict(self) -> dict[str, Any]:
        return {"map": self.map, "gflops": self.gflops, "gap_to_best": self.gap,
                "standard_error": self.standard_error, "within_noise": self.within_noise, "chosen": self.chosen}


@dataclass(frozen=True)
class Selection:
    chosen: Any  # the chosen candidate's key
    best: Any  # the key of the candidate with the highest validation mAP
    verdicts: list[Verdict]

    def verdict(self, key: Any) -> Verdict:
        return next(v for v in self.verdicts if v.key == key)


def resample_counts(num_videos: int) -> np.ndarray:
    """The fixed resamples of ``num_videos`` validation videos every candidate is scored on:
    (RESAMPLES, num_videos) counts. The same for every candidate, which makes the gaps paired."""
    return bootstrap.resample_counts(bootstrap.resample_indices(num_videos, RESAMPLES, SEED), num_videos)


def candidate(key: Any, scores: np.ndarray, labels: np.ndarray, gflops: float, counts: np.ndarray) -> Candidate:
    """A candidate from its per-video validation scores: (N, C) for one seed, or (S, N, C)."""
    scores = np.asarray(scores)
    if scores.ndim == 2:
        scores = scores[None]
    if counts.shape[1] != scores.shape[1]:
        raise UsageError(f"{scores.shape[1]} scored videos, but resamples of {counts.shape[1]}")
    score = float(bootstrap.mean_ap(scores, labels).mean())
    draws = bootstrap.resampled_maps(scores, labels, counts).mean(axis=1)
    return Candidate(key, score, draws, float(gflops))


def choose(candidates: Sequence[Candidate]) -> Selection:
    """Apply the rule of the module docstring to ``candidates`` (in order: earliest first)."""
    if not candidates:
        raise UsageError("nothing to select from: no candidate was scored on validation")
    best = max(range(len(candidates)), key=lambda i: (candidates[i].map, -i))
    top = candidates[best]
    gaps = [top.map - c.map for c in candidates]
    errors = [float(np.std(top.draws - c.draws)) for c in candidates]
    within = [i == best or gaps[i] <= errors[i] for i in range(len(candidates))]
    chosen = min((i for i in range(len(candidates)) if within[i]),
                 key=lambda i: (candidates[i].gflops, -candidates[i].map, i))
    verdicts = [Verdict(c.key, c.map, c.gflops, gaps[i], errors[i], within[i], i == chosen)
                for i, c in enumerate(candidates)]
    return Selection(candidates[chosen].key, top.key, verdicts)
