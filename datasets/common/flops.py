"""The one ptflops wrapper: multiply-accumulates of one call of a module on an example input.

Every cost in the suite comes from here: the per-frame cost of a stream's backbone
(datasets/extraction/backbones.py, recorded in the manifest and recounted by the harness)
and the per-run cost of a method's own modules (benchmark/measurement/costs.py). ptflops' ``aten``
backend is named explicitly: it counts the multiply-accumulates of convolutions and matrix
products only, the convention behind the field's "GFLOPs" (the ``pytorch`` backend also
counts batch norm, activations and pooling and lands 1-8% higher). On CPU a fused ``nn.LSTM``
runs as one op the ``aten`` backend counts as 0, so methods expose their recurrent steps as
``nn.LSTMCell`` modules, whose matrix products it does count (tests/benchmark/test_costs.py checks a
cell against 4 x (in x h + h x h) multiply-accumulates).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

COST_BACKEND = "aten"


def count_gmacs(module: Any, example_args: Callable[[], tuple[Any, ...]], backend: str = COST_BACKEND) -> float:
    """Multiply-accumulates (in 1e9) of ``module(*example_args())``, counted on a CPU copy in
    eval mode (the module itself is left alone)."""
    import torch
    from ptflops import get_model_complexity_info
    from torch import nn

    class _Call(nn.Module):
        """Runs the call with no input, so ptflops can count any signature."""

        def __init__(self) -> None:
            super().__init__()
            self.module = copy.deepcopy(module).cpu().eval()

        def forward(self) -> object:
            return self.module(*example_args())

    with torch.no_grad():
        macs, _ = get_model_complexity_info(
            _Call(), (1,), input_constructor=lambda _: {}, as_strings=False, backend=backend,
            print_per_layer_stat=False, verbose=False,
        )
    return float(macs or 0) / 1e9
