"""The per-pair record: one schema, written and read back without loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.record import PairRecord

RESULTS = Path(__file__).resolve().parents[2] / "results"
COMMITTED = sorted(RESULTS.glob("*/runs/*/seed*/record.json"))


def test_every_committed_pair_reads_and_writes_back_unchanged():
    assert COMMITTED, "no committed results found"
    for path in COMMITTED:
        raw = json.loads(path.read_text())
        record = PairRecord.load(path)
        assert record.to_json() == raw, path  # extra keys kept, nothing dropped or added
        assert record.method == path.parts[-3] and f"seed{record.seed}" == path.parts[-2]


def test_a_record_without_a_field_is_refused_with_the_fix(tmp_path):
    raw = json.loads(COMMITTED[0].read_text())
    del raw["map"]
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"lacks \['map'\].*--force"):
        PairRecord.load(path)
    path.write_text("")
    with pytest.raises(ValueError, match="missing, empty or not JSON"):
        PairRecord.load(path)
