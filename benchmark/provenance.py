"""Provenance: what produced a result (config, seeds, versions, commit, device)."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

import torch

from datasets.common.gitinfo import git_state  # noqa: F401  (re-exported: one git query)

PACKAGES = ("torch", "torchvision", "numpy", "h5py", "scikit-learn", "pandas", "tabulate", "ptflops", "tqdm",
            "matplotlib", "av")


#: The command a caller runs through ``benchmark.__main__.main(argv)`` (``python -m benchmark
#: reproduce`` runs each stage so), which its records name instead of the process's own.
_RUNNING: list[list[str]] = []


@contextmanager
def running(argv: list[str]) -> Iterator[None]:
    """While the block runs, ``invocation`` names ``python -m benchmark ARGV``."""
    _RUNNING.append(list(argv))
    try:
        yield
    finally:
        _RUNNING.pop()


def invocation() -> str | None:
    """The command being run, recorded in provenance.json and tune.json: the one a stage of
    ``reproduce`` runs (``running``), else this process's command line when it is ``python -m
    benchmark ...`` (None when the harness runs inside another program, e.g. the tests)."""
    if _RUNNING:
        return "python -m benchmark " + shlex.join(_RUNNING[-1])
    if not sys.argv or not sys.argv[0].replace(os.sep, "/").endswith("benchmark/__main__.py"):
        return None
    return "python -m benchmark " + shlex.join(sys.argv[1:])  # quoted: it can be pasted into a shell


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name(device: str) -> str | None:
    """The name of the GPU ``device`` ("cuda", "cuda:1") computes on; None for another device or
    where CUDA is not available (the kind is then the device type alone)."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    return torch.cuda.get_device_name(index)


def device_info(device: torch.device) -> dict[str, Any]:
    """Where a result is computed: what decides its floating-point rounding.

    The CPU model and the instruction set torch dispatches its kernels to (``cpu_isa``,
    e.g. AVX512) pick different kernels on different machines; thread counts change the
    order of reductions; the deterministic-algorithm switches are recorded as they were."""
    info: dict[str, Any] = {
        "device": str(device), "machine": platform.machine(), "platform": platform.platform(),
        "cpu": cpu_model(), "cpu_isa": torch.backends.cpu.get_cpu_capability(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
        "deterministic": {
            "torch.use_deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn.deterministic": torch.backends.cudnn.deterministic,
            "cudnn.benchmark": torch.backends.cudnn.benchmark,
            "mkldnn.enabled": torch.backends.mkldnn.enabled,
            "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        },
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info.update(gpu=torch.cuda.get_device_name(index), cuda=torch.version.cuda,
                    tf32_matmul=torch.backends.cuda.matmul.allow_tf32, tf32_cudnn=torch.backends.cudnn.allow_tf32)
    return info


def machine_kind(platform: Mapping[str, Any]) -> str:
    """The kind of machine a platform (``platform_key``, as a pair's record keeps it) names: the
    processor, and the GPU's name where it computed on one, else the device type. The one notion of
    "the same kind of machine" for a table (one kind per table), a time estimate (only pairs of
    this kind time a run here) and the runs listing; bit-identity asks for more (``platform_key``)."""
    device = str(platform.get("device") or "?").split(":")[0]
    return f"{platform.get('cpu') or '?'}, {platform.get('gpu') or device if device == 'cuda' else device}"


def platform_key(info: dict[str, Any], versions: dict[str, Any]) -> dict[str, Any]:
    """What must agree for two results to be bit-identical: the same kind of machine (CPU
    model and kernels, GPU), device and package versions. Not the host name: the same
    machine under another name computes the same bits."""
    device = str(info.get("device", "")).split(":")[0]  # "cuda:1" on a torchrun rank computes what "cuda" does
    return {"cpu": info.get("cpu"), "cpu_isa": info.get("cpu_isa"), "device": device,
            "gpu": info.get("gpu"), "torch": versions.get("torch"), "numpy": versions.get("numpy")}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
