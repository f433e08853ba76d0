"""The arithmetic a pair is computed in: float32 (the default) or bfloat16 matrix products.

``--precision bf16`` runs every forward pass (training, validation, evaluation) under
``torch.autocast`` with bfloat16: matrix products and the fused LSTM kernel take bfloat16
inputs and accumulate in float32, everything else (states carried over time, losses, the
optimiser, the weights) stays float32. On CPUs with AVX-512 BF16 and on GPUs such products run
about 2.5 times faster (docs/performance.md). It changes the numbers, so the precision is part
of a pair's identity (a pair computed in one is never reused for the other) and of its record,
and it is the default nowhere until a noise study shows that the table does not move beyond
the spread of its seeds (docs/performance.md has the study).

LiteEval's gated recurrence (methods/gated_recurrence.py) always runs in float32: its per-step
products are small (no speed to gain) and its state is carried over hundreds of steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from datasets.common.errors import UsageError

if TYPE_CHECKING:
    import torch

#: The precisions a run may compute in, and the autocast type each means (None: none), by name:
#: names only here, so that the command line's help starts without importing torch.
PRECISIONS: dict[str, str | None] = {"fp32": None, "bf16": "bfloat16"}
DEFAULT = "fp32"


def check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    return precision


@contextmanager
def computing_in(precision: str, device: torch.device) -> Iterator[None]:
    """Run the enclosed forward passes in ``precision`` on ``device``."""
    import torch

    dtype = PRECISIONS[check(precision)]
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=getattr(torch, dtype)):
        yield
