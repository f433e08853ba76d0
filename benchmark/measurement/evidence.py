"""Where a method's expensive reads land, against the frames that carry class evidence.

A store made by the synthetic generator keeps its ground truth: per frame, whether it carries
class evidence (``extras/evidence``). Against it, every method's fine reads (from the meter,
like its cost) give

* ``lift``: the evidence frames a method's reads hit, over the hits expected if each video's
  reads were placed at random *within that video* (sum over videos of reads x the video's
  evidence fraction). 1 is what reads placed without looking at the content get (Uniform's
  25 spread frames, a random gate); above 1, the method finds evidence within a video;
  LiteEval's claim is a gate well above 1.
* ``lift_pooled``: P(evidence | read) / P(evidence) pooled over all evaluated frames. It also
  moves with *which videos* get more reads: a method that spends more reads on videos with
  little evidence (the hard "action" videos) scores below 1 even when it finds the evidence
  inside each of them, so it is reported next to ``lift``, not instead of it. (Until
  2026-11-25 ``lift`` was this pooled ratio; on 60-frame videos the two were close.)
* ``first_fifth_share``: the share of reads in the first fifth of their video (0.2 for reads
  spread evenly), and ``mean_relative_position`` (0.5 evenly): a policy that front-loads its
  reads scores high on the first and low on the second without looking at the content.

Real stores have no ground truth; there the statistics are absent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datasets.common.errors import UsageError
from datasets.loading.bank import frame_ranges
from datasets.store.layout import EXTRAS_GROUP
from datasets.store.reader import FeatureStore, open_h5

EVIDENCE = f"{EXTRAS_GROUP}/evidence"


def store_evidence(store: FeatureStore, video_ids: list[str]) -> np.ndarray | None:
    """The evidence flags of ``video_ids``' frames, video after video, or None without ground truth."""
    with open_h5(store.features_path) as h5:
        if EVIDENCE not in h5:
            return None
        flags = h5[EVIDENCE][()].astype(bool)
    header = store.header
    row = {v: i for i, v in enumerate(header.video_ids.tolist())}
    rows = np.asarray([row[v] for v in video_ids], dtype=np.int64)
    return flags[frame_ranges(header.offsets[rows], header.lengths[rows].astype(np.int64))]


def read_statistics(reads: np.ndarray, evidence: np.ndarray, lengths: np.ndarray) -> dict[str, Any] | None:
    """Lift and timing of ``reads`` (flat bool, video after video, as ``evidence``); None if nothing was read."""
    reads, evidence = np.asarray(reads, dtype=bool), np.asarray(evidence, dtype=bool)
    if reads.shape != evidence.shape or int(np.sum(lengths)) != len(reads):
        raise UsageError(f"reads {reads.shape}, evidence {evidence.shape} and lengths (sum {np.sum(lengths)}) disagree")
    if not reads.any() or not evidence.any():
        return None
    lengths = np.asarray(lengths, dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    starts = np.repeat(first, lengths)
    position = (np.arange(len(reads)) - starts) / np.repeat(lengths, lengths)  # 0 .. <1 within the video
    nonempty = lengths > 0
    per_video = lambda flags: np.add.reduceat(flags.astype(np.int64), first[nonempty])
    reads_v, evidence_v = per_video(reads), per_video(evidence)
    expected_hits = float((reads_v * evidence_v / lengths[nonempty]).sum())
    hits = int((reads & evidence).sum())
    p_evidence = float(evidence.mean())
    p_given_read = float(evidence[reads].mean())
    return {
        "lift": hits / expected_hits if expected_hits > 0 else float("nan"),
        "lift_pooled": p_given_read / p_evidence,
        "evidence_hits": hits,
        "expected_hits_within_video": expected_hits,
        "p_evidence_given_read": p_given_read,
        "p_evidence": p_evidence,
        "first_fifth_share": float((position[reads] < 0.2).mean()),
        "mean_relative_position": float(position[reads].mean()),
        "reads": int(reads.sum()),
    }
