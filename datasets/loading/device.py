"""Choosing the device and deciding whether a split fits on it.

``resolve_device("auto")`` is CUDA when available, else CPU; ``--device`` overrides.

Residency rule (documented in docs/feature-store.md): a split's frame arrays need
``frames x sum(dims) x 2`` bytes. On CUDA the bank keeps the split on the GPU when that is
at most ``RESIDENT_FRACTION`` of the GPU memory free at load time (the rest is left to
models, activations and the other split); otherwise it keeps the split in pinned host
memory and streams each batch's videos to the GPU with asynchronous copies that overlap
the previous batch's compute. On CPU the split is always held in host memory. An explicit
``memory_budget_bytes`` replaces the automatic budget (tests use it to force streaming).
"""

from __future__ import annotations

import ctypes
import os

import torch

from datasets.common.errors import UsageError

RESIDENT_FRACTION = 0.5


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn "auto" / "cpu" / "cuda" / "cuda:1" into a usable ``torch.device``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"--device {device}: not a device this suite runs on; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {device}: the suite runs on cpu or cuda; use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and dev.index is not None and torch.cuda.is_available() \
            and dev.index >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"--device {device} was asked for, but this PyTorch build sees no CUDA GPU "
            f"(torch {torch.__version__}); use --device cpu or --device auto"
        )
    return dev


def device_budget_bytes(device: torch.device) -> int | None:
    """Bytes of split data the bank may keep on ``device``; None means no limit (CPU)."""
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free * RESIDENT_FRACTION)


def host_available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (None where that does not exist)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


_ALLOCATOR_TUNED = False


def tune_host_allocator() -> bool:
    """Let glibc reuse freed large blocks instead of handing them back to the OS.

    Every CPU batch allocates fresh (B, T, D) float32 tensors of a few to a few hundred
    MB. glibc serves blocks that size with mmap and unmaps them on free, so each batch
    page-faults its output in afresh: measured here, that was most of a CPU epoch's time
    (tests/perf/test_loader_speed.py). Raising M_MMAP_THRESHOLD and M_TRIM_THRESHOLD
    keeps such blocks in the heap for reuse, the effect PyTorch's CPU tuning guide gets
    by preloading jemalloc or tcmalloc. It is process-wide and only changes when memory
    goes back to the OS (the resident size stays at its peak). Set
    ``LITEEVAL_MALLOC_TUNING=0`` to opt out. Returns whether the setting was applied.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if os.environ.get("LITEEVAL_MALLOC_TUNING", "1") in ("0", "false", "no"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (macOS, musl): nothing to tune
    m_trim_threshold, m_mmap_threshold, most = -1, -3, ctypes.c_int(2**31 - 1)
    _ALLOCATOR_TUNED = bool(mallopt(m_mmap_threshold, most)) and bool(mallopt(m_trim_threshold, most))
    return _ALLOCATOR_TUNED
