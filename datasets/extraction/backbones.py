"""The frame backbones behind the feature streams, and their per-frame cost.

Per-frame cost is counted, never typed in: the suite's one ptflops wrapper
(datasets/common/flops.py, ``aten`` backend: the convention behind the paper's 0.08 and 7.82
"GFLOPs") runs the torchvision model, with its classifier removed since the suite uses
penultimate features, on one frame at the stream's input resolution. Counts are cached on
disk because building ResNet-101 takes seconds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from datasets.common.atomic import atomic_write_json
from datasets.common.errors import UsageError
from datasets.common.flops import COST_BACKEND, count_gmacs

__all__ = ["COST_BACKEND", "PAPER_STREAMS", "BackboneSpec", "backbone_spec", "build_feature_extractor",
           "count_gmacs_per_frame"]


@dataclass(frozen=True)
class BackboneSpec:
    """A torchvision image model used as a per-frame feature extractor."""

    name: str  # torchvision.models builder name
    resolution: int  # square input side in pixels
    feature_dim: int  # penultimate feature size


# The two streams of the paper (section 3.1): MobileNetV2 on 112x112 frames for the coarse
# stream and ResNet-101 on 224x224 frames for the fine stream.
COARSE_BACKBONE = BackboneSpec("mobilenet_v2", 112, 1280)
FINE_BACKBONE = BackboneSpec("resnet101", 224, 2048)
PAPER_STREAMS: dict[str, BackboneSpec] = {"coarse": COARSE_BACKBONE, "fine": FINE_BACKBONE}


def build_feature_extractor(name: str):
    """Return torchvision's ``name`` with random weights and its classifier removed.

    The output of the returned module is the penultimate feature vector. Loading real
    weights is the extractor's job (it takes a local checkpoint path). Residual networks are
    built with torchvision's ``zero_init_residual=True``: with the default initialisation a
    random ResNet-101 in eval mode produces features around 1e5, beyond float16's range, so
    an extraction without a checkpoint could not even exercise the pipeline. (Loaded weights
    replace every parameter, and the cost count does not depend on the values.)
    """
    import torch.nn as nn
    import torchvision

    try:
        builder = getattr(torchvision.models, name)
    except AttributeError as exc:
        raise UsageError(f"torchvision.models has no model {name!r}") from exc
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
    """The spec of torchvision's ``name`` at ``resolution``, its feature size measured on one frame."""
    for known in PAPER_STREAMS.values():
        if known.name == name:
            return BackboneSpec(name, resolution, known.feature_dim)
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
    versions = ",".join(f"{p}={metadata.version(p)}" for p in ("torch", "torchvision", "ptflops"))
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

    gmacs = count_gmacs(build_feature_extractor(name), lambda: (torch.zeros(1, 3, resolution, resolution),), backend)
    if not gmacs:
        raise RuntimeError(f"ptflops counted no operations for {name}@{resolution} ({backend} backend)")
    cache[key] = gmacs
    try:
        atomic_write_json(path, cache)
    except OSError:
        pass  # a read-only home only costs a recount next time
    return gmacs
