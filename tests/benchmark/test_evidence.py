"""The evidence statistics: lift against reads placed at random within each video, and the
pooled ratio next to it; and recomputing them from saved models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.__main__ import main
from benchmark.measurement.evidence import read_statistics


def test_lift_is_against_random_reads_within_each_video_and_differs_from_the_pooled_ratio():
    # Video A: 4 frames, 3 with evidence, 1 read (a hit; 0.75 expected at random).
    # Video B: 4 frames, 1 with evidence, all 4 read (1 hit; 1 expected).
    evidence = np.array([1, 1, 1, 0, 1, 0, 0, 0], bool)
    reads = np.array([1, 0, 0, 0, 1, 1, 1, 1], bool)
    stats = read_statistics(reads, evidence, np.array([4, 4]))
    assert stats["lift"] == pytest.approx(2 / 1.75)
    assert stats["lift_pooled"] == pytest.approx((2 / 5) / (4 / 8))  # below 1: B, with little evidence, got more reads
    assert stats["evidence_hits"] == 2 and stats["expected_hits_within_video"] == pytest.approx(1.75)
    assert stats["first_fifth_share"] == pytest.approx(2 / 5)


def test_random_reads_have_lift_one_whatever_videos_they_favour():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 200, 400)
    rates = rng.choice([0.1, 0.7], len(lengths))
    evidence = np.concatenate([rng.random(n) < r for n, r in zip(lengths, rates)])
    # Many more reads in low-evidence videos, placed at random inside each video.
    reads = np.concatenate([rng.random(n) < (0.5 if r < 0.5 else 0.05) for n, r in zip(lengths, rates)])
    stats = read_statistics(reads, evidence, lengths)
    assert stats["lift"] == pytest.approx(1.0, abs=0.05)
    assert stats["lift_pooled"] < 0.5
    targeted = read_statistics(evidence.copy(), evidence, lengths)
    assert targeted["lift"] > 1.5


def test_reread_evidence_recomputes_saved_pairs_identically(tmp_path, tiny_store):
    args = ["-q", "run", "--dataset", str(tiny_store), "--methods", "uniform", "liteeval", "--seeds", "0",
            "--steps", "2", "--jobs", "1", "--results-dir", str(tmp_path)]
    assert main(args) == 0
    path = tmp_path / "tiny" / "runs" / "liteeval" / "seed0" / "record.json"
    first = json.loads(path.read_text())["fine_reads_vs_evidence"]
    assert first is not None and first["lift"] > 0
    record = json.loads(path.read_text())
    record["fine_reads_vs_evidence"] = {"lift": -1.0}  # as an older definition would have left it
    path.write_text(json.dumps(record))
    assert main([*args, "--reread-evidence"]) == 0
    again = json.loads(path.read_text())
    assert again["fine_reads_vs_evidence"] == first and "recomputed" in json.dumps(again)
