"""Provenance: what produced a result (config, seeds, versions, commit, device)."""

from __future__ import annotations

import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

import torch

from datasets.gitinfo import git_state  # noqa: F401  (re-exported: one git query)

PACKAGES = ("torch", "torchvision", "numpy", "h5py", "scikit-learn", "pandas", "tabulate", "ptflops", "tqdm",
            "matplotlib", "av")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {"device": str(device), "machine": platform.machine(), "platform": platform.platform(),
                            "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info.update(gpu=torch.cuda.get_device_name(index), cuda=torch.version.cuda)
    return info


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
