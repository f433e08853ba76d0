"""Every defect `datasets validate` must report, and the loaders' cheap checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from datasets.common.errors import StoreError, StoreValidationError
from datasets.loading.bank import FeatureBank
from datasets.store import layout
from datasets.store.reader import FeatureStore
from datasets.store.validate import validate_store
from tests.helpers import DIMS, replace_dataset, write_store

REPO = Path(__file__).resolve().parents[2]


def messages(path: Path) -> str:
    return "\n".join(str(p) for p in validate_store(path, show_progress=False))


def edit_manifest(path: Path, **changes) -> None:
    data = json.loads((path / layout.MANIFEST_FILE).read_text())
    for dotted, value in changes.items():
        node = data
        keys = dotted.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    (path / layout.MANIFEST_FILE).write_text(json.dumps(data))


def test_valid_store_has_no_problems(hand_store, tiny_store):
    assert validate_store(hand_store, show_progress=False) == []
    assert validate_store(tiny_store, show_progress=False) == []


def assert_reported(path: Path, *fragments: str) -> None:
    """validate names every fragment, and opening the store for loading fails too."""
    text = messages(path)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    with pytest.raises(StoreError):
        FeatureStore.open(path)


def test_feature_dimension_disagrees_with_manifest(hand_store):
    edit_manifest(hand_store, streams__fine__dim=DIMS["fine"] + 1)
    assert_reported(hand_store, f"feature dimension is {DIMS['fine']}, the manifest says {DIMS['fine'] + 1}")


def test_streams_with_different_frame_counts(hand_store):
    replace_dataset(hand_store, layout.feature_dataset("coarse"), np.zeros((19, DIMS["coarse"]), np.float16))
    assert_reported(hand_store, "has 19 frame rows but offsets[-1] = 20")


def test_wrong_feature_dtype(hand_store):
    replace_dataset(hand_store, layout.feature_dataset("fine"), np.zeros((20, DIMS["fine"]), np.float32))
    assert_reported(hand_store, "dtype is float32, expected float16")


@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "Inf")])
def test_nan_and_inf_name_the_video(hand_store, value, word):
    with h5py.File(hand_store / layout.FEATURES_FILE, "r+") as h5:
        h5[layout.feature_dataset("fine")][9, 2] = value  # frame 1 of video v2 (rows 8..9)
    text = messages(hand_store)
    assert word in text and "'v2'" in text and "1 frame(s)" in text
    # The header checks cannot see values; the bank's load-time check does.
    FeatureStore.open(hand_store)
    with pytest.raises(StoreValidationError, match="'v2'"):
        FeatureBank(hand_store, "train", device="cpu", show_progress=False)
    FeatureBank(hand_store, "test", device="cpu", show_progress=False)  # the other split is fine


def test_offsets_not_monotone(hand_store):
    replace_dataset(hand_store, layout.OFFSETS, np.array([0, 3, 8, 7, 14, 20], np.int64))
    assert_reported(hand_store, "offsets are not monotone", "'v2'")


def test_offsets_do_not_cover_the_arrays(hand_store):
    replace_dataset(hand_store, layout.OFFSETS, np.array([0, 3, 8, 10, 14, 18], np.int64))
    assert_reported(hand_store, "has 20 frame rows but offsets[-1] = 18")


def test_offsets_must_start_at_zero(hand_store):
    replace_dataset(hand_store, layout.OFFSETS, np.array([1, 3, 8, 10, 14, 20], np.int64))
    assert_reported(hand_store, "offsets[0] is 1")


def test_offsets_of_wrong_length(hand_store):
    replace_dataset(hand_store, layout.OFFSETS, np.array([0, 3, 8, 10, 14], np.int64))
    assert_reported(hand_store, "expected (6,) (N + 1)")


def test_video_with_zero_frames(hand_store):
    replace_dataset(hand_store, layout.OFFSETS, np.array([0, 3, 8, 8, 14, 20], np.int64))
    assert_reported(hand_store, "1 video(s) have zero frames: 'v2'")


def test_label_out_of_range(hand_store):
    labels = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1]]
    labels[1, 1] = 2
    replace_dataset(hand_store, layout.LABELS, labels)
    assert_reported(hand_store, "multi-hot 0/1", "'v1'")


def test_unlabelled_video_in_labelled_split(hand_store):
    labels = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1]]
    labels[2] = 0
    replace_dataset(hand_store, layout.LABELS, labels)
    assert_reported(hand_store, "split 'train' is labelled but 1 video(s) have no label: 'v2'")


def test_several_labels_in_single_label_store(hand_store):
    labels = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1]]
    labels[0, 2] = 1
    replace_dataset(hand_store, layout.LABELS, labels)
    assert_reported(hand_store, "single-label but 1 video(s) have several labels: 'v0'")


def test_a_label_moved_to_another_class_fails_the_header_checksum(hand_store):
    """Found (issue 14): one label moved to another class passed validate (still one valid label)."""
    labels = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1]]
    labels[3] = np.eye(3, dtype=np.uint8)[2]  # v3: class 0 -> class 2
    replace_dataset(hand_store, layout.LABELS, labels)
    assert_reported(hand_store, "differ from the checksum the writer recorded", layout.HEADER_CHECKSUM)
    assert "checksum" not in messages(hand_store).split("\n", 1)[1:]  # reported once


def test_stores_without_a_header_checksum_still_open(hand_store):
    data = json.loads((hand_store / layout.MANIFEST_FILE).read_text())
    assert data["checksums"][layout.HEADER_CHECKSUM]
    del data["checksums"]
    (hand_store / layout.MANIFEST_FILE).write_text(json.dumps(data))
    assert validate_store(hand_store, show_progress=False) == []
    FeatureStore.open(hand_store)


def test_video_in_two_splits(hand_store):
    ids = np.array(["v0", "v1", "v2", "v0", "v4"], dtype=object)
    replace_dataset(hand_store, layout.VIDEO_IDS, ids, dtype=h5py.string_dtype())
    assert_reported(hand_store, "in two splits: 'v0' (test/train)")


def test_duplicate_ids(hand_store):
    ids = np.array(["v0", "v1", "v1", "v3", "v4"], dtype=object)
    replace_dataset(hand_store, layout.VIDEO_IDS, ids, dtype=h5py.string_dtype())
    assert_reported(hand_store, "1 duplicate video id(s): 'v1'")


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"num_videos": 6}, "manifest says 6 videos, the file holds 5"),
        ({"classes": ["a", "b"]}, "manifest lists 2 classes, 'labels' has 3 columns"),
        ({"num_frames": 21}, "the manifest says 21"),
        ({"splits__test__num_videos": 3}, "manifest says split 'test' has 3 videos, the file has 2"),
        ({"splits__test__labelled": False}, "manifest marks split 'test' unlabelled"),
    ],
)
def test_manifest_disagrees_with_file(hand_store, change, fragment):
    edit_manifest(hand_store, **change)
    assert_reported(hand_store, fragment)


def test_stream_missing_from_file(hand_store):
    with h5py.File(hand_store / layout.FEATURES_FILE, "r+") as h5:
        del h5[layout.feature_dataset("coarse")]
    assert_reported(hand_store, "stream 'coarse' is in the manifest but not in the file")


def test_malformed_manifest_lists_every_problem(hand_store):
    edit_manifest(hand_store, fps=-1, classes=["a", "a", "c"], streams__fine__dim="wide")
    text = messages(hand_store)
    assert "'fps' must be a positive number" in text
    assert "duplicates" in text
    assert "'dim' must be int" in text


def test_manifest_not_json(hand_store):
    (hand_store / layout.MANIFEST_FILE).write_text("{not json")
    assert_reported(hand_store, "is not valid JSON")


def test_not_a_store(tmp_path):
    assert "this directory is not a feature store" in messages(tmp_path)


def test_an_empty_or_missing_folder_is_one_problem(tmp_path):
    """Found (issue 14): a missing features.h5 "whose manifest is there" was listed too."""
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "absent"):
        problems = validate_store(folder, show_progress=False)
        assert len(problems) == 1 and "manifest is there" not in str(problems[0])


def test_a_label_value_of_5_is_not_also_several_labels(hand_store):
    labels = np.eye(3, dtype=np.uint8)[[0, 1, 2, 0, 1]]
    labels[1, 1] = 5
    replace_dataset(hand_store, layout.LABELS, labels)
    text = messages(hand_store)
    assert "multi-hot 0/1" in text and "several labels" not in text


def test_truncated_file_is_a_clear_error(hand_store):
    path = hand_store / layout.FEATURES_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in messages(hand_store)
    assert messages(hand_store).count(str(path)) == 1  # found: the path was printed twice
    with pytest.raises(StoreError, match="truncated.*copy it again"):
        FeatureStore.open(hand_store)


def test_not_hdf5_is_a_clear_error(hand_store):
    (hand_store / layout.FEATURES_FILE).write_bytes(b"\0" * 4096)
    with pytest.raises(StoreError, match="not an HDF5 file"):
        FeatureStore.open(hand_store)


def test_corrupt_frame_bytes_fail_the_checksum(tmp_path):
    path = tmp_path / "s"
    write_store(path, lengths=[300, 300], splits=["train", "test"], dims={"coarse": 64, "fine": 64},
                labels=[[1, 0, 0], [0, 1, 0]])
    with h5py.File(path / layout.FEATURES_FILE) as h5:
        offset = h5[layout.feature_dataset("fine")].id.get_chunk_info(0).byte_offset
    raw = bytearray((path / layout.FEATURES_FILE).read_bytes())
    raw[offset + 1000 : offset + 1016] = b"\x55" * 16  # scribble inside the first fine chunk
    (path / layout.FEATURES_FILE).write_bytes(bytes(raw))
    assert "cannot be read" in messages(path)
    with pytest.raises(StoreError, match="corrupt"):
        FeatureBank(path, "train", device="cpu", show_progress=False)


def test_cli_exit_codes(hand_store, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "datasets", "-q", "validate", str(hand_store)],
                        cwd=REPO, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "OK: 5 videos" in ok.stdout
    broken = tmp_path / "broken"
    shutil.copytree(hand_store, broken)
    replace_dataset(broken, layout.OFFSETS, np.array([0, 3, 8, 8, 14, 20], np.int64))
    edit_manifest(broken, num_videos=9)
    bad = subprocess.run([sys.executable, "-m", "datasets", "-q", "validate", str(broken)],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode == 1
    assert all(part in bad.stdout for part in ("3 problem(s)", "checksum", "zero frames", "9 videos"))
    assert "fix:" in bad.stdout
    missing = subprocess.run([sys.executable, "-m", "datasets", "-q", "validate", str(tmp_path / "nowhere")],
                             cwd=REPO, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "no such store" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1  # one line, no traceback
