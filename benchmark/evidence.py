"""Where a method's expensive reads land, against the frames that carry class evidence.

A store made by the synthetic generator keeps its ground truth: per frame, whether it carries
class evidence (``extras/evidence``). Against it, every method's fine reads (from the meter,
like its cost) give

* ``lift``: P(evidence | read) / P(evidence), pooled over the evaluated frames. 1 is what
  reads placed without looking at the content get (Uniform's 25 spread frames, a random
  gate); above 1, the method finds evidence; LiteEval's claim is a gate well above 1.
* ``first_fifth_share``: the share of reads in the first fifth of their video (0.2 for reads
  spread evenly), and ``mean_relative_position`` (0.5 evenly): a policy that front-loads its
  reads scores high on the first and low on the second without looking at the content.

Real stores have no ground truth; there the statistics are absent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from datasets.bank import frame_ranges
from datasets.layout import EXTRAS_GROUP
from datasets.store import FeatureStore, open_h5

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
        raise ValueError(f"reads {reads.shape}, evidence {evidence.shape} and lengths (sum {np.sum(lengths)}) disagree")
    if not reads.any() or not evidence.any():
        return None
    starts = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    position = (np.arange(len(reads)) - starts) / np.repeat(lengths, lengths)  # 0 .. <1 within the video
    p_evidence = float(evidence.mean())
    p_given_read = float(evidence[reads].mean())
    return {
        "lift": p_given_read / p_evidence,
        "p_evidence_given_read": p_given_read,
        "p_evidence": p_evidence,
        "first_fifth_share": float((position[reads] < 0.2).mean()),
        "mean_relative_position": float(position[reads].mean()),
        "reads": int(reads.sum()),
    }
