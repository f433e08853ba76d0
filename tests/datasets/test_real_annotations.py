"""The real datasets' annotation formats: ActivityNet v1.3 JSON and FCVID's three files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datasets.__main__ import main as datasets_main
from datasets.common.errors import IngestError
from datasets.sources.annotations import AnnotationError, read_annotations
from datasets.sources.ingest import ingest, report_path
from datasets.store.reader import FeatureStore
from datasets.store.validate import validate_store


def write_npy(root: Path, lengths: dict[str, int]) -> tuple[Path, Path]:
    coarse, fine = root / "coarse", root / "fine"
    coarse.mkdir(parents=True, exist_ok=True)
    fine.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for vid, n in lengths.items():
        np.save(coarse / f"{vid}.npy", rng.standard_normal((n, 8)).astype(np.float32))
        np.save(fine / f"{vid}.npy", rng.standard_normal((n, 12)).astype(np.float32))
    return coarse, fine


# ---------------------------------------------------------------------------- ActivityNet
TAXONOMY = [
    {"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None},
    {"nodeId": 1, "nodeName": "Sports", "parentId": 0, "parentName": "Root"},
    {"nodeId": 2, "nodeName": "Household", "parentId": 0, "parentName": "Root"},
    {"nodeId": 3, "nodeName": "Fencing", "parentId": 1, "parentName": "Sports"},
    {"nodeId": 4, "nodeName": "Archery", "parentId": 1, "parentName": "Sports"},
    {"nodeId": 5, "nodeName": "Vacuuming floor", "parentId": 2, "parentName": "Household"},
]


def segment(start: float, end: float, label: str) -> dict:
    return {"segment": [start, end], "label": label}


DATABASE = {
    # two segments of one label: that label once
    "abcDEF12345": {"subset": "training", "duration": 30.0, "resolution": "640x360", "url": "u",
                    "annotations": [segment(1, 5, "Fencing"), segment(10, 20, "Fencing")]},
    # two labels: multi-label
    "xyz-_987654": {"subset": "training", "duration": 20.0, "resolution": "640x360", "url": "u",
                    "annotations": [segment(0, 4, "Archery"), segment(5, 9, "Vacuuming floor")]},
    "val00000001": {"subset": "validation", "duration": 12.0, "resolution": "640x360", "url": "u",
                    "annotations": [segment(2, 8, "Vacuuming floor")]},
    "val00000002": {"subset": "validation", "duration": 12.0, "resolution": "640x360", "url": "u",
                    "annotations": [segment(2, 8, "Archery")]},
    "tst00000001": {"subset": "testing", "duration": 15.0, "resolution": "640x360", "url": "u", "annotations": []},
}


def activitynet_file(root: Path, database=DATABASE, taxonomy=TAXONOMY) -> Path:
    path = root / "activity_net.v1-3.min.json"
    data = {"version": "VERSION 1.3", "database": database}
    if taxonomy is not None:
        data["taxonomy"] = taxonomy
    path.write_text(json.dumps(data))
    return path


def test_activitynet_labels_splits_and_class_order(tmp_path):
    annotations = read_annotations(activitynet_file(tmp_path), "activitynet")
    assert annotations.classes == ["Archery", "Fencing", "Vacuuming floor"]  # sorted taxonomy leaves
    by_id = {v.video_id: v for v in annotations.videos}
    assert by_id["abcDEF12345"].labels == ("Fencing",) and by_id["abcDEF12345"].split == "training"
    assert by_id["xyz-_987654"].labels == ("Archery", "Vacuuming floor")
    assert by_id["tst00000001"].labels == () and by_id["tst00000001"].split == "testing"


def test_activitynet_ingest_keeps_testing_unlabelled_and_reports_missing_and_extra(tmp_path):
    lengths = {"abcDEF12345": 30, "xyz-_987654": 20, "val00000001": 12, "tst00000001": 15, "not_in_json": 9}
    coarse, fine = write_npy(tmp_path, lengths)  # val00000002 has no features
    path = activitynet_file(tmp_path)
    out = tmp_path / "store"
    with pytest.raises(IngestError, match="missing_coarse: 1"):
        ingest(path, "activitynet", coarse, fine, out, show_progress=False)
    report = ingest(path, "activitynet", coarse, fine, out, allow_missing=True, show_progress=False)
    assert {p["video_id"] for p in report.problems["missing_fine"]} == {"val00000002"}
    assert {p["video_id"] for p in report.problems["not_listed"]} == {"not_in_json"}
    assert json.loads(report_path(out).read_text())["counts"]["not_listed"] == 1
    assert validate_store(out, show_progress=False) == []
    store = FeatureStore.open(out)
    m = store.manifest
    assert m.classes == ("Archery", "Fencing", "Vacuuming floor") and m.multi_label
    assert m.splits["training"].labelled and m.splits["validation"].labelled and not m.splits["testing"].labelled
    ids = store.header.video_ids.tolist()
    assert ids == ["abcDEF12345", "xyz-_987654", "val00000001", "tst00000001"]  # grouped by split
    assert store.header.labels.tolist() == [[0, 1, 0], [1, 0, 1], [0, 0, 1], [0, 0, 0]]


def test_activitynet_features_named_v_id_are_the_listed_videos(tmp_path):
    """ActivityNet's released features are usually ``v_<id>.npy`` while the JSON's keys are bare ids;
    the extractor finds ``v_<id>`` videos, and ingest finds their features the same way."""
    lengths = {"abcDEF12345": 30, "xyz-_987654": 20, "val00000001": 12, "val00000002": 12, "tst00000001": 15}
    coarse, fine = write_npy(tmp_path, {f"v_{vid}": n for vid, n in lengths.items()})
    (coarse / "v_abcDEF12345.npy").rename(coarse / "abcDEF12345.npy")  # the two names mixed
    out = tmp_path / "store"
    report = ingest(activitynet_file(tmp_path), "activitynet", coarse, fine, out, show_progress=False)
    assert report.kept == 5 and report.problem_count == 0
    assert FeatureStore.open(out).header.video_ids.tolist()[0] == "abcDEF12345"
    np.save(coarse / "v_abcDEF12345.npy", np.zeros((30, 8), np.float32))  # now both names of one video
    with pytest.raises(IngestError, match="both abcDEF12345.npy and v_abcDEF12345.npy"):
        ingest(activitynet_file(tmp_path), "activitynet", coarse, fine, tmp_path / "again", show_progress=False)


def test_activitynet_features_in_one_hdf5_file_per_stream_give_the_same_store(tmp_path):
    """Released ActivityNet features often come as one HDF5 file: a group per ``v_<id>`` holding one
    dataset (the C3D release), or one dataset per id. Ingested from either, the store is the one the
    .npy folders give, frame for frame."""
    import h5py

    lengths = {"abcDEF12345": 30, "xyz-_987654": 20, "val00000001": 12, "val00000002": 12, "tst00000001": 15}
    coarse, fine = write_npy(tmp_path, lengths)
    with h5py.File(tmp_path / "coarse.h5", "w") as f:
        for vid in lengths:
            f.create_group(f"v_{vid}").create_dataset("c3d_features", data=np.load(coarse / f"{vid}.npy"))
    with h5py.File(tmp_path / "fine.hdf5", "w") as f:
        for vid in [*lengths, "not_in_json"]:
            f.create_dataset(vid, data=np.load(fine / f"{vid}.npy") if vid in lengths else np.zeros((3, 12)))
    annotations = activitynet_file(tmp_path)
    ingest(annotations, "activitynet", coarse, fine, tmp_path / "from-npy", show_progress=False)
    with pytest.raises(IngestError, match="not_listed: 1"):
        ingest(annotations, "activitynet", tmp_path / "coarse.h5", tmp_path / "fine.hdf5", tmp_path / "h5",
               show_progress=False)
    ingest(annotations, "activitynet", tmp_path / "coarse.h5", tmp_path / "fine.hdf5", tmp_path / "h5",
           allow_missing=True, show_progress=False)
    assert validate_store(tmp_path / "h5", show_progress=False) == []
    a, b = FeatureStore.open(tmp_path / "from-npy"), FeatureStore.open(tmp_path / "h5")
    assert a.header.video_ids.tolist() == b.header.video_ids.tolist()
    for stream, dim in (("coarse", 8), ("fine", 12)):
        x, y = (np.empty((a.manifest.num_frames, dim), np.float16) for _ in range(2))
        a.read_frames(stream, np.arange(5), x)
        b.read_frames(stream, np.arange(5), y)
        np.testing.assert_array_equal(x, y)
    with h5py.File(tmp_path / "two.h5", "w") as f:  # a group of two datasets: which one is meant?
        f.create_group("v_abcDEF12345").create_dataset("a", data=np.zeros((3, 8)))
        f["v_abcDEF12345"].create_dataset("b", data=np.zeros((3, 8)))
    with pytest.raises(IngestError, match="group 'v_abcDEF12345' holds 2 datasets"):
        ingest(annotations, "activitynet", tmp_path / "two.h5", fine, tmp_path / "two", show_progress=False)
    with pytest.raises(IngestError, match="neither a directory of <video_id>.npy files nor an HDF5 file"):
        ingest(annotations, "activitynet", annotations, fine, tmp_path / "json", show_progress=False)


@pytest.mark.parametrize("change, match", [
    (lambda db, tax: db["val00000001"]["annotations"].append(segment(0, 1, "Juggling")), "not leaves of the taxonomy"),
    (lambda db, tax: db["val00000001"].pop("subset"), "no 'subset'"),
    (lambda db, tax: db["val00000001"].__setitem__("annotations", [{"segment": [0, 1]}]), "segment, label"),
])
def test_activitynet_bad_files_are_named(tmp_path, change, match):
    database = json.loads(json.dumps(DATABASE))
    taxonomy = json.loads(json.dumps(TAXONOMY))
    change(database, taxonomy)
    with pytest.raises(AnnotationError, match=match):
        read_annotations(activitynet_file(tmp_path, database, taxonomy), "activitynet")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(AnnotationError, match="broken.json: not valid JSON"):
        read_annotations(tmp_path / "broken.json", "activitynet")


def test_activitynet_without_taxonomy_uses_the_sorted_labels(tmp_path):
    annotations = read_annotations(activitynet_file(tmp_path, taxonomy=None), "activitynet")
    assert annotations.class_names() == ["Archery", "Fencing", "Vacuuming floor"]


# ---------------------------------------------------------------------------- FCVID
CLASSES = ["baby shower", "graduation", "making cookies", "skiing"]
SPLIT = ["Wedding/vid_0001.mp4 train", "Sports/vid_0002.mkv train", "Food/vid_0003.mp4 test",
         "Food/vid_0004.webm test"]
MATRIX = ["0 1 0 0", "0 0 0 1", "1 0 1 0", "0 0 1 0"]


def fcvid_files(root: Path, split=SPLIT, matrix=MATRIX, classes=CLASSES) -> list[Path]:
    paths = [root / "fcvid_split.txt", root / "fcvid_labels.txt", root / "fcvid_classes.txt"]
    for path, lines in zip(paths, (split, matrix, classes)):
        path.write_text("\n".join(lines) + "\n")
    return paths


def test_fcvid_ingest(tmp_path):
    files = fcvid_files(tmp_path)
    coarse, fine = write_npy(tmp_path, {"vid_0001": 5, "vid_0002": 3, "vid_0003": 4, "vid_0004": 2})
    out = tmp_path / "store"
    assert datasets_main(["-q", "ingest", "--format", "fcvid", "--annotations", *map(str, files),
                          "--coarse", str(coarse), "--fine", str(fine), "--out", str(out)]) == 0
    store = FeatureStore.open(out)
    assert store.manifest.classes == tuple(CLASSES)  # the class file's order, not sorted
    assert store.header.video_ids.tolist() == ["vid_0001", "vid_0002", "vid_0003", "vid_0004"]
    assert store.header.labels.tolist() == [[int(x) for x in row.split()] for row in MATRIX]
    assert store.manifest.multi_label and store.manifest.splits["test"].labelled
    annotations = read_annotations(files, "fcvid")
    assert annotations.videos[1].path == "Sports/vid_0002.mkv"  # where the extractor finds it


@pytest.mark.parametrize("split, matrix, classes, match", [
    (SPLIT, MATRIX[:3], CLASSES, "lists 4 videos but .*fcvid_labels.txt has 3 label rows"),
    (SPLIT, MATRIX[:2] + ["1 0 1", MATRIX[3]], CLASSES, r"fcvid_labels.txt:3: 3 values, but .* names 4 classes"),
    (SPLIT, MATRIX[:3] + ["0 0 2 0"], CLASSES, "fcvid_labels.txt:4: values must be 0 or 1"),
    (SPLIT[:1] + ["Sports/vid_0002.mkv"] + SPLIT[2:], MATRIX, CLASSES, "fcvid_split.txt:2: expected"),
    (SPLIT, MATRIX, CLASSES[:3] + ["skiing", "skiing"], "listed twice"),
])
def test_fcvid_files_that_do_not_line_up_fail_clearly(tmp_path, split, matrix, classes, match):
    with pytest.raises(AnnotationError, match=match):
        read_annotations(fcvid_files(tmp_path, split, matrix, classes), "fcvid")


def test_fcvid_needs_its_three_files(tmp_path):
    files = fcvid_files(tmp_path)
    with pytest.raises(AnnotationError, match="takes 3 annotation file"):
        read_annotations(files[:2], "fcvid")
