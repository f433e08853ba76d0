"""Ingest from per-video .npy files and a CSV annotation file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datasets.common.errors import IngestError
from datasets.sources.annotations import AnnotationError
from datasets.sources.ingest import ingest, report_path
from datasets.store.reader import FeatureStore
from datasets.store.validate import validate_store

REPO = Path(__file__).resolve().parents[2]
ROWS = [
    ("clip_a", "train", "dog"),
    ("clip_b", "train", "cat|dog"),
    ("clip_c", "train", "cat"),
    ("clip_d", "test", ""),
    ("clip_e", "test", ""),
]
LENGTHS = {"clip_a": 4, "clip_b": 2, "clip_c": 3, "clip_d": 5, "clip_e": 1}


def make_inputs(root: Path, rows=ROWS, lengths=LENGTHS, skip=(), extra=(), mismatch=()):
    coarse, fine = root / "coarse", root / "fine"
    coarse.mkdir(parents=True)
    fine.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for vid, n in list(lengths.items()) + [(e, 3) for e in extra]:
        arrays[vid] = (rng.standard_normal((n, 8)).astype(np.float32), rng.standard_normal((n, 12)).astype(np.float32))
        if ("coarse", vid) not in skip:
            np.save(coarse / f"{vid}.npy", arrays[vid][0])
        if ("fine", vid) not in skip:
            n_fine = n + 1 if vid in mismatch else n
            np.save(fine / f"{vid}.npy", rng.standard_normal((n_fine, 12)).astype(np.float32)
                    if vid in mismatch else arrays[vid][1])
    csv = root / "annotations.csv"
    csv.write_text("video_id,split,labels\n" + "".join(f"{vid},{split},{labels}\n" for vid, split, labels in rows))
    return csv, coarse, fine, arrays


def test_ingest_round_trip(tmp_path):
    csv, coarse, fine, arrays = make_inputs(tmp_path)
    report = ingest(csv, "csv", coarse, fine, tmp_path / "store", fps=2.0, show_progress=False)
    assert report.kept == 5 and report.problem_count == 0
    assert validate_store(tmp_path / "store", show_progress=False) == []
    store = FeatureStore.open(tmp_path / "store")
    m = store.manifest
    assert m.classes == ("cat", "dog")  # sorted set of names
    assert m.multi_label and m.fps == 2.0
    assert m.splits["train"].labelled and not m.splits["test"].labelled
    assert m.streams["coarse"].dim == 8 and m.streams["fine"].dim == 12
    assert m.streams["fine"].backbone == "resnet101"
    assert store.header.video_ids.tolist() == ["clip_a", "clip_b", "clip_c", "clip_d", "clip_e"]
    assert store.header.labels.tolist() == [[0, 1], [1, 1], [1, 0], [0, 0], [0, 0]]
    rows = np.arange(5)
    out = np.empty((m.num_frames, 12), np.float16)
    store.read_frames("fine", rows, out)
    expected = np.concatenate([arrays[v][1] for v in store.header.video_ids]).astype(np.float16)
    np.testing.assert_array_equal(out, expected)


def test_splits_are_stored_contiguously(tmp_path):
    rows = [("x1", "test", ""), ("x2", "train", "a"), ("x3", "test", ""), ("x4", "train", "b")]
    csv, coarse, fine, _ = make_inputs(tmp_path, rows=rows, lengths={"x1": 2, "x2": 3, "x3": 1, "x4": 2})
    ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)
    store = FeatureStore.open(tmp_path / "store")
    assert store.header.splits.tolist() == ["train", "train", "test", "test"]
    assert store.header.video_ids.tolist() == ["x2", "x4", "x1", "x3"]  # annotation order within a split
    assert len(store.frame_runs(store.split_rows("test"))) == 1


def test_problems_are_reported_and_fail_the_ingest(tmp_path):
    rows = ROWS + [("clip_f", "train", "")]
    lengths = {**LENGTHS, "clip_f": 2}
    csv, coarse, fine, _ = make_inputs(
        tmp_path, rows=rows, lengths=lengths, skip={("fine", "clip_a"), ("coarse", "clip_c")},
        extra=("stray",), mismatch=("clip_d",),
    )
    with pytest.raises(IngestError) as err:
        ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)
    text = str(err.value)
    assert "wrote no store" in text and "--allow-missing" in text
    assert not (tmp_path / "store").exists()
    report = json.loads(report_path(tmp_path / "store").read_text())
    assert report["counts"] == {
        "missing_coarse": 1, "missing_fine": 1, "not_listed": 1, "frame_mismatch": 1, "unreadable": 0,
        "bad_shape": 0, "unlabelled_in_labelled_split": 1,
    }
    ids = {c: [p["video_id"] for p in items] for c, items in report["problems"].items()}
    assert ids["missing_fine"] == ["clip_a"] and ids["missing_coarse"] == ["clip_c"]
    assert ids["not_listed"] == ["stray"] and ids["frame_mismatch"] == ["clip_d"]
    assert ids["unlabelled_in_labelled_split"] == ["clip_f"]


def test_allow_missing_leaves_problem_videos_out_and_says_so(tmp_path):
    csv, coarse, fine, _ = make_inputs(tmp_path, skip={("fine", "clip_a")}, extra=("stray",), mismatch=("clip_d",))
    report = ingest(csv, "csv", coarse, fine, tmp_path / "store", allow_missing=True, show_progress=False)
    store = FeatureStore.open(tmp_path / "store")
    assert store.header.video_ids.tolist() == ["clip_b", "clip_c", "clip_e"]
    assert report.kept == 3 and report.problem_count == 3
    assert store.manifest.provenance["left_out"] == 2  # listed videos left out (the stray was never listed)
    saved = json.loads(report_path(tmp_path / "store").read_text())
    assert saved["kept"] == 3 and saved["allow_missing"] is True


def test_bad_files_are_reported(tmp_path):
    csv, coarse, fine, _ = make_inputs(tmp_path)
    (coarse / "clip_b.npy").write_bytes(b"not a numpy file")
    np.save(fine / "clip_c.npy", np.zeros((3, 5), np.float32))  # wrong feature dimension
    np.save(coarse / "clip_e.npy", np.zeros((0, 8), np.float32))  # zero frames
    with pytest.raises(IngestError):
        ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)
    report = json.loads(report_path(tmp_path / "store").read_text())
    assert [p["video_id"] for p in report["problems"]["unreadable"]] == ["clip_b"]
    assert sorted(p["video_id"] for p in report["problems"]["bad_shape"]) == ["clip_c", "clip_e"]


def test_nan_features_stop_the_ingest(tmp_path):
    csv, coarse, fine, arrays = make_inputs(tmp_path)
    bad = arrays["clip_c"][1].copy()
    bad[1, 1] = np.nan
    np.save(fine / "clip_c.npy", bad)
    with pytest.raises(IngestError, match="clip_c"):
        ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    "text, match",
    [
        ("id,split,labels\nx,train,a\n", "header"),
        ("video_id,split,labels\nx,train,a\nx,test,\n", r"'x' \(train and test\)"),
        ("video_id,split,labels\nx,train,a\nx,train,a\n", "twice in train"),
        ("video_id,split,labels\nx,,a\n", ":2: video_id and split must not be empty"),
        ("video_id,split,labels\nx,train,a||b\n", "empty class name"),
        ("video_id,split,labels\nx,train\n", "expected 3 columns"),
    ],
)
def test_bad_csv_is_a_clear_error(tmp_path, text, match):
    csv, coarse, fine, _ = make_inputs(tmp_path)
    csv.write_text(text)
    with pytest.raises(AnnotationError, match=match):
        ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)


def test_refuses_to_overwrite(tmp_path):
    csv, coarse, fine, _ = make_inputs(tmp_path)
    ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)
    with pytest.raises(IngestError, match="refusing to overwrite"):
        ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)
    ingest(csv, "csv", coarse, fine, tmp_path / "store", overwrite=True, show_progress=False)


def test_cli(tmp_path):
    csv, coarse, fine, _ = make_inputs(tmp_path, skip={("fine", "clip_a")})
    base = [sys.executable, "-m", "datasets", "-q", "ingest", "--annotations", str(csv), "--format", "csv",
            "--coarse", str(coarse), "--fine", str(fine), "--out", str(tmp_path / "store")]
    failed = subprocess.run(base, cwd=REPO, capture_output=True, text=True)
    assert failed.returncode == 2 and "missing_fine: 1" in failed.stderr and "'clip_a'" in failed.stderr
    done = subprocess.run(base + ["--allow-missing"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "4 kept" in done.stdout
    assert (done.stdout + done.stderr).count("missing_fine: 1") == 1  # found: the list was printed twice


def test_a_csv_with_a_byte_order_mark_is_read(tmp_path):
    """Found (issue 14): Excel's UTF-8 CSV (with a BOM) was refused without saying what to do."""
    csv, coarse, fine, _ = make_inputs(tmp_path)
    csv.write_bytes(b"\xef\xbb\xbf" + csv.read_bytes())
    assert ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False).kept == 5


def test_features_too_narrow_for_the_declared_backbone_are_warned_and_captioned(tmp_path, caplog):
    """Found: 8-d "MobileNetV2" features (MobileNetV2 gives 1280-d) were charged MobileNetV2's cost
    without a word. The ingest warns, the manifest keeps it, and a table's caption says it."""
    from types import SimpleNamespace

    from benchmark.folder_summary import declared_costs

    csv, coarse, fine, _ = make_inputs(tmp_path)
    with caplog.at_level("WARNING"):
        ingest(csv, "csv", coarse, fine, tmp_path / "store", show_progress=False)
    assert "the coarse features are 8-d, but mobilenet_v2 gives 1280-d" in caplog.text
    streams = FeatureStore.open(tmp_path / "store").manifest.streams
    assert streams["fine"].provenance["width_mismatch"] == "12-d features, resnet101 gives 2048-d"
    caption = declared_costs(SimpleNamespace(store=FeatureStore.open(tmp_path / "store"), streams=["coarse", "fine"]))
    assert "declared when the features were ingested (coarse: mobilenet_v2@112, fine: resnet101@224)" in caption
    assert "contradict the declaration for coarse (8-d features, mobilenet_v2 gives 1280-d)" in caption


def test_a_backbone_the_suite_cannot_build_is_ingested_with_its_declared_cost(tmp_path, capsys):
    """Found (issue 46): `--fine-backbone clip_vit_b16@224` failed deep in torchvision, so features of
    CLIP, I3D or a lab's network could not be ingested with their cost. Now the cost is declared,
    with where it comes from, kept in the manifest and said in the caption; the run charges it.
    (In this process: test_cli runs the command line as a subprocess.)"""
    from types import SimpleNamespace

    from benchmark.folder_summary import declared_costs
    from benchmark.measurement.costs import frame_costs
    from datasets.__main__ import main as datasets_main

    csv, coarse, fine, _ = make_inputs(tmp_path)
    base = ["-q", "ingest", "--annotations", str(csv), "--format", "csv", "--coarse", str(coarse), "--fine", str(fine),
            "--fine-backbone", "clip_vit_b16@224"]

    def ingested(*extra: str) -> tuple[int, str]:
        code = datasets_main([*base, *extra])
        return code, capsys.readouterr().err

    code, err = ingested("--out", str(tmp_path / "a"))
    assert code == 2 and "clip_vit_b16@224: not a model the suite can build" in err
    assert "--fine-gmacs GMACS_PER_FRAME --cost-source" in err
    code, err = ingested("--out", str(tmp_path / "b"), "--fine-gmacs", "17.6")
    assert code == 2 and "--cost-source" in err
    code, err = ingested("--out", str(tmp_path / "c"), "--coarse-gmacs", "0.3", "--cost-source", "x")
    assert code == 2 and "--coarse-gmacs: mobilenet_v2 is a model the suite builds" in err
    assert not any((tmp_path / d).exists() for d in "abc")  # refused before anything was written
    code, err = ingested("--out", str(tmp_path / "store"), "--fine-gmacs", "17.6", "--cost-source",
                         "CLIP ViT-B/16 at 224, its paper's table")
    assert code == 0, err
    store = FeatureStore.open(tmp_path / "store")
    fine_spec = store.manifest.streams["fine"]
    assert fine_spec.gmacs_per_frame == 17.6 and fine_spec.backbone == "clip_vit_b16"
    assert fine_spec.provenance["declared_cost"] == {"gmacs": 17.6, "source": "CLIP ViT-B/16 at 224, its paper's table"}
    assert frame_costs(store.manifest)["fine"] == 17.6  # what every run charges a fine frame
    caption = declared_costs(SimpleNamespace(store=store, streams=["coarse", "fine"]))
    assert "fine: clip_vit_b16@224, 17.6 GMACs per frame declared (CLIP ViT-B/16 at 224, its paper's table)" in caption
    assert "The fine cost could not be counted here" in caption
