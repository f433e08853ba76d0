"""`python -m benchmark latency`: measured time per video beside GFLOPs, from one device."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.__main__ import main
from benchmark.protocol import learned

SETTINGS = ["--dataset", "tiny", "--steps", "2", "--seeds", "0", "1", "--methods", "uniform", "liteeval"]


def run(tmp_path: Path, *args: str) -> int:
    return main(["-q", *args, *SETTINGS, "--results-dir", str(tmp_path), "--name", "t"])


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("latency")
    assert run(root, "run") == 0
    provenance = (root / "t" / "provenance.json").read_bytes()
    assert run(root, "latency", "--latency-batch", "2", "--repeats", "1", "--warmup", "0") == 0
    # latency adds its column to the folder's table at once, and leaves the run's provenance alone
    device = json.loads((root / "t" / "latency.json").read_text())["platform"]["cpu"]
    assert f"ms/video (est., {device})" in (root / "t" / "table.md").read_text().splitlines()[0]
    assert (root / "t" / "provenance.json").read_bytes() == provenance
    return root / "t"


def test_latency_record_holds_both_settings_and_the_estimate_adds_up(measured):
    record = json.loads((measured / "latency.json").read_text())
    assert set(record["streams"]) == {"coarse", "fine"} and record["device"] == "cpu"
    for stream in record["streams"].values():
        assert stream["batch1_ms_per_frame"] > 0 and stream["throughput_ms_per_frame"] > 0
    uniform, liteeval = record["pairs"]["uniform"]["0"], record["pairs"]["liteeval"]["0"]
    fine = record["streams"]["fine"]
    # Uniform is offline: its fine frames at the throughput batch; LiteEval is online: batch 1.
    assert uniform["backbone_ms_per_video"] == pytest.approx(
        uniform["frames_per_video"]["fine"] * fine["throughput_ms_per_frame"])
    expected = sum(liteeval["frames_per_video"][s] * record["streams"][s]["batch1_ms_per_frame"]
                   for s in ("coarse", "fine"))
    assert liteeval["backbone_ms_per_video"] == pytest.approx(expected)
    assert liteeval["estimated_ms_per_video"] == pytest.approx(liteeval["own_ms_per_video"] + expected)
    assert record["platform"]["cpu"] and "Measured on" in (measured / "latency.md").read_text()


def test_the_table_gains_the_estimate_with_its_device_and_drops_it_for_another_dataset(measured, tmp_path):
    root = measured.parent
    assert run(root, "run") == 0  # every pair done: only the table is rewritten, now with the column
    header = (measured / "table.md").read_text().splitlines()[0]
    device = json.loads((measured / "latency.json").read_text())["platform"]["cpu"]
    assert f"ms/video (est., {device})" in header
    # A pair computed again after the measurement: its time is no longer shown (the model changed).
    record = json.loads((measured / "latency.json").read_text())
    original = json.dumps(record)
    record["pairs"]["liteeval"]["1"]["model_sha256"] = "an earlier model"
    (measured / "latency.json").write_text(json.dumps(record))
    assert run(root, "run") == 0
    # Two steps of training learn nothing: the rows are marked so (benchmark/protocol/learned.py).
    rows = {line.split("|")[1].strip().removesuffix(f" {learned.MARK}"): line.split("|")[-2].strip()
            for line in (measured / "table.md").read_text().splitlines()[2:] if line.startswith("|")}
    assert rows["LiteEval"] == "—" and rows["Uniform"] != "—"
    record = json.loads(original)
    record["dataset"]["fingerprint"] = "another dataset"
    (measured / "latency.json").write_text(json.dumps(record))
    assert run(root, "run") == 0
    assert "ms/video" not in (measured / "table.md").read_text().splitlines()[0]


def test_timing_a_backbone_shows_its_progress(tiny_store, monkeypatch, caplog):
    """Found (issue 45): `latency` printed nothing for over two minutes while it timed a backbone."""
    import logging

    import torch

    from benchmark.commands.latency import LatencyOptions, backbone_latency
    from datasets.common import progress
    from datasets.store.reader import FeatureStore

    monkeypatch.setenv(progress.MODE_VARIABLE, "log")  # as in a log file
    monkeypatch.setenv(progress.INTERVAL_VARIABLE, "0")
    spec = FeatureStore.open(tiny_store).manifest.streams["coarse"]
    with caplog.at_level(logging.INFO, logger="progress"):
        backbone_latency(spec, torch.device("cpu"), LatencyOptions(batch=2, repeats=2, warmup=1))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"time {spec.backbone}")]
    assert lines and any("6/6 call" in line for line in lines), lines


def test_a_folder_in_use_is_reported_before_the_store_is_loaded(measured, monkeypatch, capsys):
    """Found (issue 45): `online` and `latency` took about 30 s to say that a run held the folder."""
    from benchmark.context import RunContext
    from benchmark.results import folder_lock

    def load(*args, **kwargs):
        raise AssertionError("the store was loaded before the lock was taken")

    monkeypatch.setattr(RunContext, "create", load)
    with folder_lock(measured):
        for command in ("latency", "online"):
            assert main(["-q", command, "--name", measured.name, "--results-dir", str(measured.parent)]) == 2
            assert "is in use by" in capsys.readouterr().err


def test_a_backbone_declared_at_ingest_is_said_not_timed(tmp_path, capsys):
    """Found: on a store whose fine features came from a backbone the suite cannot build (its cost
    declared at ingest), latency stopped with "torchvision.models has no model 'clip_vit_b16'"."""
    import numpy as np

    from datasets.sources.ingest import DeclaredCost, ingest, parse_backbone

    rng = np.random.default_rng(0)
    for stream, dim in (("coarse", 6), ("fine", 10)):
        (tmp_path / stream).mkdir()
        for i in range(24):
            np.save(tmp_path / stream / f"v{i}.npy", rng.standard_normal((4, dim)).astype(np.float32))
    (tmp_path / "labels.csv").write_text("video_id,split,labels\n" + "".join(
        f"v{i},{'train' if i < 16 else 'test'},c{i % 2}\n" for i in range(24)))
    ingest(tmp_path / "labels.csv", "csv", tmp_path / "coarse", tmp_path / "fine", tmp_path / "store",
           backbones={"fine": parse_backbone("clip_vit_b16@224")},
           declared={"fine": DeclaredCost(17.6, "a paper's table")}, show_progress=False)
    args = ["--dataset", str(tmp_path / "store"), "--methods", "uniform", "--seeds", "0", "--results-dir",
            str(tmp_path / "results")]
    assert main(["-q", "run", *args, "--steps", "2", "--no-presets"]) == 0
    capsys.readouterr()
    assert main(["-q", "latency", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "clip_vit_b16@224 was declared when its features were ingested" in err
