"""Round trips through the writer and reader, and the writer's refusals."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from datasets.common.errors import StoreError
from datasets.store import layout
from datasets.store.manifest import Manifest
from datasets.store.reader import FeatureStore
from datasets.store.writer import StoreWriter
from tests.helpers import DIMS, stream_specs, write_store


def test_round_trip_preserves_every_array(tmp_path):
    lengths = [3, 5, 2, 4, 6]
    values = write_store(tmp_path / "s", lengths=lengths)
    store = FeatureStore.open(tmp_path / "s")
    assert store.header.video_ids.tolist() == [f"v{i}" for i in range(5)]
    assert store.header.splits.tolist() == ["train"] * 3 + ["test"] * 2
    assert store.header.offsets.tolist() == [0, 3, 8, 10, 14, 20]
    assert store.header.offsets.dtype == np.int64
    assert store.header.labels.dtype == np.uint8
    for stream in DIMS:
        rows = np.arange(5)
        out = np.empty((20, DIMS[stream]), dtype=np.float16)
        store.read_frames(stream, rows, out)
        np.testing.assert_array_equal(out, values[stream])


def test_split_read_returns_only_that_split_in_order(tmp_path):
    values = write_store(tmp_path / "s", lengths=[3, 5, 2, 4, 6])
    store = FeatureStore.open(tmp_path / "s")
    rows = store.split_rows("test")
    assert rows.tolist() == [3, 4]
    assert store.frame_runs(rows) == [(10, 20)]  # one contiguous read for the split
    out = np.empty((10, DIMS["fine"]), dtype=np.float16)
    store.read_frames("fine", rows, out)
    np.testing.assert_array_equal(out, values["fine"][10:20])


def test_manifest_round_trip(tmp_path):
    write_store(tmp_path / "s")
    manifest = Manifest.load(tmp_path / "s")
    assert manifest.classes == ("a", "b", "c")
    assert manifest.streams["fine"].dim == DIMS["fine"]
    assert manifest.splits["train"].num_videos == 3 and manifest.splits["train"].labelled
    assert manifest.num_frames == 20
    raw = json.loads((tmp_path / "s" / layout.MANIFEST_FILE).read_text())
    assert raw["format"] == layout.FORMAT_NAME and raw["format_version"] == layout.FORMAT_VERSION


def test_frame_arrays_are_checksummed_float16(tmp_path):
    import h5py

    write_store(tmp_path / "s")
    with h5py.File(tmp_path / "s" / layout.FEATURES_FILE) as h5:
        ds = h5[layout.feature_dataset("fine")]
        assert ds.dtype == np.float16 and ds.fletcher32


def test_store_files_are_not_private(tmp_path):
    write_store(tmp_path / "s")
    mode = os.stat(tmp_path / "s" / layout.MANIFEST_FILE).st_mode
    assert mode & stat.S_IRGRP, "manifest.json should be readable like any other result file"


def test_existing_store_is_not_overwritten(tmp_path):
    write_store(tmp_path / "s")
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_store(tmp_path / "s")


def test_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with StoreWriter(
            tmp_path / "s", name="x", classes=["a"], multi_label=False, fps=1.0, streams=stream_specs(),
            video_ids=["v0"], splits=["train"], labels=np.ones((1, 1)), lengths=[2],
        ):
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_incomplete_store_is_not_published(tmp_path):
    with pytest.raises(StoreError, match="never written"):
        with StoreWriter(
            tmp_path / "s", name="x", classes=["a"], multi_label=False, fps=1.0, streams=stream_specs(),
            video_ids=["v0", "v1"], splits=["train", "train"], labels=np.ones((2, 1)), lengths=[2, 3],
        ) as writer:
            writer.write_video(0, {s: np.zeros((2, d)) for s, d in DIMS.items()})
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("bad, match", [(np.nan, "NaN or Inf"), (1e6, "overflows float16")])
def test_writer_refuses_values_float16_cannot_hold(tmp_path, bad, match):
    with pytest.raises(StoreError, match=match):
        with StoreWriter(
            tmp_path / "s", name="x", classes=["a"], multi_label=False, fps=1.0, streams=stream_specs(),
            video_ids=["v0"], splits=["train"], labels=np.ones((1, 1)), lengths=[2],
        ) as writer:
            block = np.zeros((2, DIMS["fine"]))
            block[1, 1] = bad
            writer.write_video(0, {"coarse": np.zeros((2, DIMS["coarse"])), "fine": block})


def test_writer_refuses_wrong_frame_count(tmp_path):
    with pytest.raises(StoreError, match="has 3 frames, the store expects 2"):
        with StoreWriter(
            tmp_path / "s", name="x", classes=["a"], multi_label=False, fps=1.0, streams=stream_specs(),
            video_ids=["v0"], splits=["train"], labels=np.ones((1, 1)), lengths=[2],
        ) as writer:
            writer.write_video(0, {"coarse": np.zeros((3, DIMS["coarse"]))})
