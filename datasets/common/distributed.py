"""torchrun support shared by the commands that split work over ranks (extract, benchmark run).

Under ``torchrun`` every process gets RANK, WORLD_SIZE and LOCAL_RANK; these helpers start a
gloo group (the ranks only meet at barriers, which may be hours or days apart) once per process
and pick each rank's GPU.
"""

from __future__ import annotations

import atexit
import os
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a rank needs it: launched_world is asked by every command
    import torch


def launched_world() -> int:
    """How many processes torchrun started (its WORLD_SIZE); 1 outside torchrun."""
    world = os.environ.get("WORLD_SIZE", "1").strip()
    return int(world) if world.isdigit() and int(world) > 1 else 1


def distributed_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) under torchrun; (0, 1, 0) for a single process.

    The gloo group is started at the first call and lives until the process ends: a command that
    uses it twice (run's selection, then its table) keeps one group, since a group destroyed and
    started again on torchrun's store can hang at its first barrier (seen: its keys repeat the
    first group's)."""
    if launched_world() <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", timeout=timedelta(days=7))
        atexit.register(dist.destroy_process_group)
    return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))


def rank_device(asked: str, local_rank: int) -> torch.device:
    """The device of a rank: with ``auto`` or ``cuda`` and GPUs present, the rank's own
    (``cuda:LOCAL_RANK``, wrapped over the visible GPUs); otherwise what was asked for."""
    import torch

    from datasets.loading.device import resolve_device

    if asked in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
    return resolve_device(asked)


def barrier() -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
