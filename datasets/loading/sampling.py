"""Frame sampling, shared by every method so that all of them see frames the same way.

A sampler turns the lengths of a batch of videos into a (B, T) grid of frame positions
and a (B, T) validity mask. Random draws (training jitter, random starts) come from a CPU
``torch.Generator`` and are moved to the device, so a seed gives the same frames on a CPU
and on a GPU.

* ``AllFrames``: every frame (the 1 fps stream), padded to the longest video in the batch.
* ``UniformFrames(k)``: k frames spread over the video, one per equal segment: the
  segment centre at evaluation, a uniformly jittered position inside the segment in
  training (TSN-style). Videos shorter than k repeat frames; all k steps are valid.
* ``ConsecutiveFrames(k)``: k consecutive frames, from the first frame at evaluation (the
  paper's Seq-K) and from a random start in training. Short videos are padded and masked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from datasets.common.errors import UsageError


class FrameSampler(ABC):
    """Chooses which frame positions of each video a batch exposes."""

    @abstractmethod
    def num_steps(self, max_length: int) -> int:
        """Grid width T for a batch whose longest video has ``max_length`` frames."""

    @abstractmethod
    def sample(
        self, lengths: torch.Tensor, max_length: int, *, train: bool, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(frames, mask): (B, T) int64 positions in [0, length) and (B, T) bool validity.

        ``lengths`` is on the target device; positions under a false mask are clamped to
        a valid frame so that gathers stay in bounds, and are never metered as reads.
        """

    @property
    def variable_length(self) -> bool:
        """Does the grid width follow the batch's longest video (so batching by length pays)?"""
        return False


def _draw(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(device)


@dataclass(frozen=True)
class AllFrames(FrameSampler):
    """Every frame of the video, optionally capped at ``max_frames`` from the start."""

    max_frames: int | None = None

    @property
    def variable_length(self) -> bool:
        return True

    def num_steps(self, max_length: int) -> int:
        return max_length if self.max_frames is None else min(max_length, self.max_frames)

    def sample(self, lengths, max_length, *, train, generator):
        steps = self.num_steps(max_length)
        grid = torch.arange(steps, device=lengths.device).expand(len(lengths), steps)
        mask = grid < lengths[:, None]
        return torch.minimum(grid, lengths[:, None] - 1), mask


@dataclass(frozen=True)
class UniformFrames(FrameSampler):
    """``k`` frames, one per equal segment (centre at evaluation, jittered in training)."""

    k: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise UsageError(f"UniformFrames needs k >= 1, got {self.k}")

    def num_steps(self, max_length: int) -> int:
        return self.k

    def sample(self, lengths, max_length, *, train, generator):
        b, device = len(lengths), lengths.device
        segment = torch.arange(self.k, device=device, dtype=torch.float64)[None, :]
        offset = (_draw((b, self.k), generator, device) if train
                  else torch.full((1, 1), 0.5, dtype=torch.float64, device=device))
        frames = torch.floor((segment + offset) * lengths[:, None].double() / self.k).long()
        frames = torch.minimum(frames, lengths[:, None] - 1)
        return frames, torch.ones_like(frames, dtype=torch.bool)


@dataclass(frozen=True)
class ConsecutiveFrames(FrameSampler):
    """``k`` consecutive frames: from the start at evaluation, a random start in training."""

    k: int

    def __post_init__(self) -> None:
        if self.k < 1:
            raise UsageError(f"ConsecutiveFrames needs k >= 1, got {self.k}")

    def num_steps(self, max_length: int) -> int:
        return self.k

    def sample(self, lengths, max_length, *, train, generator):
        b, device = len(lengths), lengths.device
        if train:
            room = torch.clamp(lengths - self.k, min=0).double() + 1
            start = torch.floor(_draw((b,), generator, device) * room).long()
        else:
            start = torch.zeros(b, dtype=torch.long, device=device)
        grid = start[:, None] + torch.arange(self.k, device=device)[None, :]
        mask = grid < lengths[:, None]
        return torch.minimum(grid, lengths[:, None] - 1), mask
