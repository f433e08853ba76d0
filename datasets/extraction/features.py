"""Frames to features: ImageNet preprocessing and the streams' backbones, with weights.

Preprocessing is what ImageNet models expect: the frame's short side is resized to
``resolution * 256 / 224`` (256 for 224, 128 for 112), the centre ``resolution`` square is
cropped, and pixels are scaled to [0, 1] and normalised as the backbone's weights were trained
(torchvision's models: the ImageNet mean and standard deviation; datasets/extraction/backbones.py
``input_normalisation``). Features are the penultimate layer (the classifier is removed):
1280-d for MobileNetV2 and EfficientNet-Lite, 2048-d for ResNet-101.

Weights cannot be downloaded here. With a checkpoint path the weights are loaded from it (a
torchvision state dict, or a training checkpoint holding one under ``state_dict`` or
``model``; ``module.`` prefixes and the classifier's keys are dropped); a packaged backbone
(EfficientNet-Lite) without one loads the ImageNet weights installed with it; any other backbone
without one keeps its random initialisation, and everything that reports on the features says so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datasets.common.atomic import file_sha256
from datasets.common.errors import UsageError
from datasets.extraction.backbones import (
    PACKAGED,
    BackboneSpec,
    build_feature_extractor,
    input_normalisation,
    packaged_weights,
)

log = logging.getLogger(__name__)

RESIZE_RATIO = 256 / 224  # short side before the centre crop, as in torchvision's ImageNet transforms
CLASSIFIER_PREFIXES = ("fc.", "classifier.", "_fc.")  # torchvision's, EfficientNet-Lite's
RANDOM_INIT_SEED = 0


def decode_short_side(resolutions: list[int]) -> int:
    """The short side frames are decoded at: enough for the largest crop."""
    return max(round(r * RESIZE_RATIO) for r in resolutions)


def load_checkpoint(model: torch.nn.Module, path: Path, what: str) -> None:
    """Load backbone weights from ``path`` into ``model`` (classifier keys dropped), strictly."""
    if not path.is_file():
        raise FileNotFoundError(f"{what}: checkpoint {path} not found")
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise UsageError(f"{what}: {path} is not a PyTorch checkpoint torch.load can read ({exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UsageError(f"{what}: {path} holds a {type(state).__name__}, not a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise UsageError(
            f"{what}: {path} does not fit the backbone's {type(model).__name__}: "
            f"{len(result.missing_keys)} missing key(s) (e.g. {result.missing_keys[:3]}), "
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
        )


@dataclass
class Backbone:
    """One stream's backbone on its device, with what its weights are."""

    stream: str
    spec: BackboneSpec
    model: torch.nn.Module
    weights: dict[str, Any]  # {"random": bool, "checkpoint": path or None, "sha256": ...}
    seconds: float = 0.0  # time spent in the model (preprocessing included), for throughput
    frames: int = 0

    @property
    def random(self) -> bool:
        return bool(self.weights["random"])


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of a model's parameters and buffers (names, dtypes, shapes, values): what its
    features depend on. Stores record it per stream, so that a later user of the same backbone
    (``python -m benchmark stream``) can prove it runs the weights the store was extracted with;
    for random weights too, whose initialisation may change with the torch version."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def load_backbone(stream: str, spec: BackboneSpec, checkpoint: Path | str | None, device: torch.device) -> Backbone:
    """The stream's backbone with the checkpoint's weights, a packaged backbone's installed ones,
    or random ones (seeded: a resumed or sharded extraction without a checkpoint still uses one
    set of weights throughout)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        model = build_feature_extractor(spec.name, spec.resolution)
    packaged = None
    if checkpoint is None and spec.name in PACKAGED:
        checkpoint = packaged = packaged_weights(spec.name)
    if checkpoint is None:
        weights = {"random": True, "checkpoint": None, "sha256": None, "seed": RANDOM_INIT_SEED,
                   "note": f"RANDOMLY INITIALISED {spec.name}: no --{stream}-weights checkpoint was given; these "
                           "features carry no ImageNet knowledge and are for testing the pipeline only"}
        log.warning("%s stream: %s", stream, weights["note"])
    else:
        path = Path(checkpoint)
        load_checkpoint(model, path, f"--{stream}-weights")
        weights = {"random": False, "checkpoint": str(path.resolve()), "sha256": file_sha256(path)}
        if packaged is not None:
            from importlib import metadata

            dist = PACKAGED[spec.name].weights
            weights["packaged"] = f"{dist} {metadata.version(dist)}"
            log.info("%s stream: %s's ImageNet weights from the installed %s", stream, spec.name, weights["packaged"])
    weights["state_sha256"] = weights_digest(model)
    return Backbone(stream, spec, model.to(device).eval(), weights)


def preprocess(frames: torch.Tensor, resolution: int, backbone: str = "") -> torch.Tensor:
    """(T, 3, H, W) uint8 frames to (T, 3, r, r) float32, normalised for ``backbone`` (see the
    module docstring)."""
    from torchvision.transforms.v2 import functional as F

    short = round(resolution * RESIZE_RATIO)
    x = F.resize(frames, [short], antialias=True)
    x = F.center_crop(x, [resolution, resolution])
    x = x.float().div_(255)
    mean, std = input_normalisation(backbone)
    return F.normalize(x, list(mean), list(std))


@torch.inference_mode()
def frame_features(backbone: Backbone, frames: torch.Tensor, batch_size: int) -> np.ndarray:
    """(T, D) float32 penultimate features of uint8 (T, 3, H, W) frames on the backbone's device."""
    device = frames.device
    start = time.perf_counter()
    out = []
    for lo in range(0, frames.shape[0], batch_size):
        x = preprocess(frames[lo : lo + batch_size], backbone.spec.resolution, backbone.spec.name)
        out.append(backbone.model(x).float().cpu())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    backbone.seconds += time.perf_counter() - start
    backbone.frames += frames.shape[0]
    return torch.cat(out).numpy()
