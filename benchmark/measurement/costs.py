"""The cost model: what a video costs, from what a method read and ran.

    cost(video) = sum over streams of frames read (from the meter) x per-frame backbone cost
                + sum over the method's modules of runs (step_counts) x per-run cost

Every cost is counted by the suite's one ptflops wrapper (datasets/common/flops.py, ``aten``
backend, named explicitly), never typed in; per-frame stream costs come from
datasets/extraction/backbones.py, which records them in the manifest and is asked again here.
Costs are multiply-accumulates in units of
1e9, which the field reports as "GFLOPs"; tables say "GFLOPs (GMACs)".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from datasets.common.errors import UsageError
from datasets.common.flops import COST_BACKEND, count_gmacs
from datasets.extraction.backbones import count_gmacs_per_frame, is_known
from datasets.store.manifest import Manifest
from methods.base import StepModule, VideoMethod

log = logging.getLogger(__name__)

# Percentiles reported for the per-video cost distribution.
PERCENTILES = (5, 25, 50, 75, 95)


def count_module_gmacs(step: StepModule, backend: str = COST_BACKEND) -> float:
    """Multiply-accumulates (1e9) of one call of ``step.module`` on its example input."""
    return count_gmacs(step.module, step.example_args, backend)


def step_costs(method: VideoMethod) -> dict[str, float]:
    """GMACs per run of each of the method's cost modules."""
    return {name: count_module_gmacs(step) for name, step in method.cost_modules().items()}


def frame_costs(manifest: Manifest, streams: list[str] | None = None) -> dict[str, float]:
    """GMACs per frame of each stream, counted on the stream's torchvision backbone.

    For a backbone torchvision does not have (hand-made test stores), the manifest's value
    is used, with a warning. If the manifest disagrees with the count, the count wins.
    """
    costs = {}
    for stream in streams or list(manifest.streams):
        spec = manifest.streams[stream]
        if is_known(spec.backbone):
            counted = count_gmacs_per_frame(spec.backbone, spec.resolution)
            if abs(counted - spec.gmacs_per_frame) > 1e-3 * max(counted, 1e-9):
                log.warning(
                    "stream %r: the manifest says %.4f GMACs/frame, ptflops counts %.4f for %s@%d; using the count",
                    stream, spec.gmacs_per_frame, counted, spec.backbone, spec.resolution,
                )
            costs[stream] = counted
        else:
            log.warning(
                "stream %r: backbone %r is neither a torchvision model nor a packaged one; using the manifest's "
                "%.4f GMACs/frame",
                stream, spec.backbone, spec.gmacs_per_frame,
            )
            costs[stream] = spec.gmacs_per_frame
    return costs


def video_gmacs(
    frames_read: Mapping[str, np.ndarray],
    step_counts: Mapping[str, np.ndarray],
    per_frame: Mapping[str, float],
    per_step: Mapping[str, float],
) -> np.ndarray:
    """Per-video cost in GMACs (see the module docstring)."""
    unknown = sorted(set(step_counts) - set(per_step))
    if unknown:
        raise UsageError(f"step_counts name modules {unknown} that cost_modules() does not declare")
    total = None
    for stream, frames in frames_read.items():
        part = np.asarray(frames, dtype=np.float64) * per_frame[stream]
        total = part if total is None else total + part
    for name, runs in step_counts.items():
        part = np.asarray(runs, dtype=np.float64) * per_step[name]
        total = part if total is None else total + part
    if total is None:
        raise UsageError("nothing to cost: no frames read and no steps run")
    return total


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max and percentiles of a per-video quantity."""
    values = np.asarray(values, dtype=np.float64)
    out = {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
           "max": float(values.max())}
    out.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))})
    return out
