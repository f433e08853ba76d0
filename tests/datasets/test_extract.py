"""Feature extraction from raw videos: decoding, backbones, failures, resume, shards, torchrun."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from datasets.__main__ import main as datasets_main
from datasets.common.errors import StoreError
from datasets.extraction import pipeline as extract_module
from datasets.extraction.backbones import PAPER_STREAMS, build_feature_extractor
from datasets.extraction.decode import VideoDecodeError, decode_at_fps
from datasets.extraction.features import load_backbone
from datasets.extraction.merge import failures_path, merge, report_path
from datasets.extraction.pipeline import ExtractConfig, extract
from datasets.extraction.shards import COMPLETE_FILE, read_state, shards_root
from datasets.store.reader import FeatureStore
from datasets.store.validate import validate_store

av = pytest.importorskip("av")
REPO = Path(__file__).resolve().parents[2]
DURATIONS = {"clip0": 3, "clip1": 4, "clip2": 2, "clip3": 3}  # seconds; 1 frame per second is extracted
ANNOTATIONS = ("video_id,split,labels\nclip0,train,run\nclip1,train,jump\nclip2,test,run\nbroken,train,jump\n"
               "clip3,test,jump\nmissing,test,run\n")


def make_video(path: Path, seconds: float, rate: int = 10, gop: int = 5, size=(64, 48)) -> None:
    """An MPEG-4 video whose frame i is a flat grey of level 4 i (so decoded frames can be identified)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt, stream.gop_size = size[0], size[1], "yuv420p", gop
        for i in range(int(seconds * rate)):
            image = np.full((size[1], size[0], 3), (4 * i) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """Four clips, a corrupt file, a truncated clip nobody lists, and the annotation CSV."""
    root = tmp_path_factory.mktemp("videos")
    folder = root / "videos"
    (folder / "sub").mkdir(parents=True)
    for vid, seconds in DURATIONS.items():
        make_video((folder / "sub" if vid == "clip3" else folder) / f"{vid}.mp4", seconds)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    make_video(folder / "unlisted.mp4", 1)
    (root / "list.csv").write_text(ANNOTATIONS)
    return root


def run(videos: Path, out: Path, cfg: ExtractConfig = ExtractConfig(flush_every=1, batch_size=4), **kwargs):
    return extract(videos / "list.csv", "csv", videos / "videos", out, cfg, show_progress=False, **kwargs)


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory) -> Path:
    """One uninterrupted single-process extraction."""
    out = tmp_path_factory.mktemp("reference") / "store"
    run(videos, out)
    return out


def features_by_id(path: Path) -> dict[str, dict[str, np.ndarray]]:
    store = FeatureStore.open(path)
    rows = np.arange(store.manifest.num_videos)
    out = {}
    arrays = {}
    for stream, spec in store.manifest.streams.items():
        arrays[stream] = np.zeros((store.manifest.num_frames, spec.dim), np.float16)
        store.read_frames(stream, rows, arrays[stream])
    offsets = store.header.offsets
    for i, vid in enumerate(store.header.video_ids.tolist()):
        out[vid] = {s: a[offsets[i] : offsets[i + 1]] for s, a in arrays.items()}
    return out


def test_decoding_samples_one_frame_per_second_and_seeks(tmp_path):
    make_video(tmp_path / "short.mp4", 4)
    decoded = decode_at_fps(tmp_path / "short.mp4", 1.0, 32)
    assert decoded.frames.shape == (4, 32, 43, 3)  # short side 32, aspect kept
    grey = decoded.frames[:, 16, 20, 0].astype(int)  # frames 0, 10, 20, 30: levels 0, 40, 80, 120
    assert np.abs(grey - np.array([0, 40, 80, 120])).max() <= 6  # MPEG-4 is lossy
    make_video(tmp_path / "long.mp4", 60, rate=25, gop=25, size=(32, 32))
    sparse = decode_at_fps(tmp_path / "long.mp4", 0.2, 16)
    assert len(sparse.frames) == 12
    assert sparse.decoded < 1500 / 5  # seeking: a fraction of the 1,500 frames was decoded
    (tmp_path / "junk.mp4").write_bytes(b"junk")
    with pytest.raises(VideoDecodeError, match="cannot open"):
        decode_at_fps(tmp_path / "junk.mp4", 1.0, 32)


def test_extraction_end_to_end(reference, videos):
    assert validate_store(reference, show_progress=False) == []
    store = FeatureStore.open(reference)
    m = store.manifest
    assert store.header.video_ids.tolist() == ["clip0", "clip1", "clip2", "clip3"]  # train first, list order
    assert store.header.lengths.tolist() == [DURATIONS[v] for v in ("clip0", "clip1", "clip2", "clip3")]
    assert m.streams["coarse"].dim == 1280 and m.streams["fine"].dim == 2048
    assert m.streams["fine"].backbone == "resnet101" and m.streams["coarse"].resolution == 112
    assert m.provenance["random_init"] == ["coarse", "fine"] and "RANDOMLY INITIALISED" in m.provenance["warning"]
    assert m.streams["fine"].provenance["weights"]["random"]
    feats = features_by_id(reference)
    assert all(np.isfinite(f["fine"].astype(np.float32)).all() for f in feats.values())
    assert np.abs(feats["clip1"]["fine"][0].astype(np.float32) - feats["clip1"]["fine"][3]).max() > 0  # frames differ
    with open(failures_path(reference)) as handle:
        failures = {row["video_id"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(failures) == {"broken", "missing"}
    assert "cannot open" in failures["broken"] and "no video file found" in failures["missing"]
    report = json.loads(report_path(reference).read_text())
    assert report["extracted"] == 4 and report["failed"] == 2 and report["not_listed_video_files"] == ["unlisted.mp4"]
    assert report["ranks"][0]["per_backbone_frames_per_second"]["fine"] > 0


def test_an_interrupted_extraction_resumes_without_redoing_anything(videos, reference, tmp_path, monkeypatch):
    out = tmp_path / "store"
    decoded: list[str] = []
    real_decode = extract_module.decode_at_fps

    def counting(path, *args, **kwargs):
        decoded.append(Path(path).stem)
        if Path(path).stem == "clip2" and not getattr(counting, "resumed", False):
            raise KeyboardInterrupt  # the job is killed while clip2 is being decoded
        return real_decode(path, *args, **kwargs)

    monkeypatch.setattr(extract_module, "decode_at_fps", counting)
    with pytest.raises(KeyboardInterrupt):
        run(videos, out)
    assert not out.exists() and not (shards_root(out) / "rank-00000-of-00001" / COMPLETE_FILE).exists()
    saved = read_state(shards_root(out) / "rank-00000-of-00001")  # what the killed job had saved
    assert set(saved.done) == {"clip0", "clip1"} and set(saved.failed) == set()
    decoded.clear()
    counting.resumed = True
    run(videos, out)
    assert "clip2" in decoded and not set(saved.done) & set(decoded)  # nothing extracted twice
    again, expected = features_by_id(out), features_by_id(reference)
    assert again.keys() == expected.keys()
    for vid in expected:
        for stream in ("coarse", "fine"):
            np.testing.assert_array_equal(again[vid][stream], expected[vid][stream])


def test_resume_with_other_settings_is_refused(videos, tmp_path):
    out = tmp_path / "store"
    run(videos, out, merge_when_done=False)
    with pytest.raises(StoreError, match="other settings"):
        extract(videos / "list.csv", "csv", videos / "videos", out, ExtractConfig(fps=2.0), show_progress=False)


def test_shards_by_rank_and_merge(videos, reference, tmp_path):
    out = tmp_path / "store"
    first = run(videos, out, rank=0, world=2, cfg=ExtractConfig(flush_every=16, batch_size=4))  # one part at the end
    assert (first["videos"], first["done"], first["failed"]) == (3, 3, 0) and not out.exists()  # rank 1 not done yet
    run(videos, out, rank=1, world=2)  # not rank 0: leaves the merge to it
    complete = shards_root(out) / "rank-00001-of-00002" / COMPLETE_FILE
    moved = complete.with_suffix(".moved")
    complete.rename(moved)
    with pytest.raises(StoreError, match="not complete"):
        merge(shards_root(out), out, show_progress=False)
    moved.rename(complete)
    merge(shards_root(out), out, show_progress=False)
    merged, expected = features_by_id(out), features_by_id(reference)
    assert list(merged) == list(expected)
    for vid in expected:
        np.testing.assert_array_equal(merged[vid]["fine"], expected[vid]["fine"])
    with pytest.raises(FileExistsError):
        merge(shards_root(out), out, show_progress=False)


def test_torchrun_shards_the_list_and_rank_0_merges(videos, tmp_path):
    out = tmp_path / "store"
    env = {**os.environ, "LITEEVAL_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "datasets",
         "extract", "--videos", str(videos / "videos"), "--list", str(videos / "list.csv"), "--out", str(out),
         "--batch-size", "4", "--name", "clips"],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 0 of 2" in done.stdout and "rank 1 of 2" in done.stdout
    assert "WARNING: randomly initialised" in done.stdout
    assert sorted(p.name for p in shards_root(out).iterdir()) == ["rank-00000-of-00002", "rank-00001-of-00002"]
    store = FeatureStore.open(out)
    assert store.header.video_ids.tolist() == ["clip0", "clip1", "clip2", "clip3"] and store.manifest.name == "clips"


def test_checkpoints_are_loaded_and_recorded(tmp_path):
    spec = PAPER_STREAMS["coarse"]
    model = build_feature_extractor(spec.name)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    state["module.classifier.1.weight"] = torch.zeros(1000, 1280)  # torchvision's head: dropped
    torch.save({"state_dict": state}, tmp_path / "mnv2.pth")
    loaded = load_backbone("coarse", spec, tmp_path / "mnv2.pth", torch.device("cpu"))
    assert not loaded.random and loaded.weights["sha256"] and loaded.weights["checkpoint"].endswith("mnv2.pth")
    assert all(torch.equal(p, torch.full_like(p, 0.01)) for p in loaded.model.parameters())
    torch.save(build_feature_extractor("resnet18").state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="does not fit the backbone's MobileNetV2"):
        load_backbone("coarse", spec, tmp_path / "wrong.pth", torch.device("cpu"))
    with pytest.raises(FileNotFoundError, match="--coarse-weights"):
        load_backbone("coarse", spec, tmp_path / "none.pth", torch.device("cpu"))


def test_extract_cli_refuses_an_existing_store(videos, reference, capsys):
    code = datasets_main(["-q", "extract", "--videos", str(videos / "videos"), "--list", str(videos / "list.csv"),
                          "--out", str(reference)])
    assert code == 2 and "already exists" in capsys.readouterr().err


def test_fcvid_paths_and_activitynet_names_are_found(tmp_path):
    from datasets.extraction.pipeline import find_videos
    from datasets.sources.annotations import Annotations, VideoAnnotation

    folder = tmp_path / "v"
    (folder / "Food").mkdir(parents=True)
    for name in ("Food/a1.mp4", "v_Yt_Id-123.mkv", "other.webm"):
        (folder / name).write_bytes(b"")
    annotations = Annotations([VideoAnnotation("a1", "train", ("x",), path="Food/a1.mp4"),
                               VideoAnnotation("Yt_Id-123", "training", ("x",)),
                               VideoAnnotation("gone", "training", ("x",))], source="test")
    found, extra = find_videos(annotations, folder)
    assert found["a1"] == folder / "Food/a1.mp4" and found["Yt_Id-123"] == folder / "v_Yt_Id-123.mkv"
    assert found["gone"] is None and extra == ["other.webm"]
    shutil.rmtree(folder)


def test_activitynet_videos_extract_with_an_unlabelled_testing_split(videos, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    names = {"clip0": "abcDEF12345", "clip1": "xyz-_987654", "clip2": "tst00000001"}
    for clip, youtube_id in names.items():
        shutil.copy(videos / "videos" / f"{clip}.mp4", folder / f"v_{youtube_id}.mp4")
    taxonomy = [{"nodeName": "Root", "parentName": None}, {"nodeName": "Fencing", "parentName": "Root"},
                {"nodeName": "Archery", "parentName": "Root"}]
    database = {
        "abcDEF12345": {"subset": "training", "annotations": [{"segment": [0, 1], "label": "Fencing"}]},
        "xyz-_987654": {"subset": "validation", "annotations": [{"segment": [0, 1], "label": "Archery"}]},
        "tst00000001": {"subset": "testing", "annotations": []},
    }
    (tmp_path / "anet.json").write_text(json.dumps({"version": "1.3", "taxonomy": taxonomy, "database": database}))
    out = tmp_path / "anet"
    extract(tmp_path / "anet.json", "activitynet", folder, out, ExtractConfig(batch_size=4), show_progress=False)
    store = FeatureStore.open(out)
    splits = store.manifest.splits
    assert splits["training"].labelled and splits["validation"].labelled and not splits["testing"].labelled
    assert store.header.video_ids.tolist() == ["abcDEF12345", "xyz-_987654", "tst00000001"]
    assert store.header.labels.tolist() == [[0, 1], [1, 0], [0, 0]]  # classes: Archery, Fencing


def test_when_every_video_fails_the_reasons_are_still_written(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "bad.mp4").write_bytes(b"junk")
    (tmp_path / "list.csv").write_text("video_id,split,labels\nbad,train,a\ngone,train,a\n")
    out = tmp_path / "store"
    with pytest.raises(StoreError, match="every video failed"):
        extract(tmp_path / "list.csv", "csv", tmp_path / "videos", out, show_progress=False)
    with open(failures_path(out)) as handle:
        assert sorted(row["video_id"] for row in csv.DictReader(handle)) == ["bad", "gone"]
