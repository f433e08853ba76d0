"""The read meter: which frames of which stream a method actually read, per video.

A video's cost is computed from this record (frames read x per-frame backbone cost), never
from what a method reports about itself. The meter holds one int32 counter per frame of a
bank and per stream, on the bank's device; recording a read is a single ``index_add_``
(no host synchronisation, no Python loop over videos), so metering stays cheap on a GPU.
A frame read twice is paid once: costs count distinct frames (a backbone would not be run
twice on the same frame).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class ReadMeter:
    """Per-frame read counters for the frames of one bank (one split)."""

    def __init__(self, offsets: torch.Tensor, streams: Iterable[str]) -> None:
        self.offsets = offsets  # (N + 1,) int64 on the bank's device, split-local
        total = int(offsets[-1])
        self.counts = {s: torch.zeros(total, dtype=torch.int32, device=offsets.device) for s in streams}

    @property
    def streams(self) -> list[str]:
        return list(self.counts)

    def record(self, stream: str, frame_rows: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """Count reads of bank frame rows ``frame_rows`` where ``valid`` is true."""
        counts = self.counts.get(stream)
        if counts is None:
            raise KeyError(f"the meter does not track stream {stream!r} (tracks {self.streams})")
        rows = frame_rows.reshape(-1)
        if valid is None:
            weight = torch.ones_like(rows, dtype=torch.int32)
        else:
            weight = valid.reshape(-1).to(torch.int32)
        counts.index_add_(0, rows, weight)

    def read_mask(self, stream: str) -> torch.Tensor:
        """(F,) bool: which frame rows of the bank were read at least once."""
        return self.counts[stream] > 0

    def frames_read(self, stream: str) -> torch.Tensor:
        """(N,) int64: distinct frames of ``stream`` read per video."""
        read = torch.cumsum(self.read_mask(stream).to(torch.int64), 0)
        read = torch.cat([read.new_zeros(1), read])
        return read[self.offsets[1:]] - read[self.offsets[:-1]]

    def frames_of(self, stream: str, video: int) -> torch.Tensor:
        """Frame positions (within the video) of ``stream`` read for bank row ``video``."""
        lo, hi = int(self.offsets[video]), int(self.offsets[video + 1])
        return torch.nonzero(self.counts[stream][lo:hi] > 0).flatten()

    def horizon(self) -> torch.Tensor:
        """(N,) int64: one past the latest frame position read in any stream, per video.

        For an online method, which reads frames in the order they arrive, this is how
        many frames of the video had arrived when it predicted (0 if it read nothing).
        """
        total = len(self.offsets) - 1
        out = torch.zeros(total, dtype=torch.int64, device=self.offsets.device)
        for counts in self.counts.values():
            rows = torch.nonzero(counts > 0).flatten()
            video = torch.searchsorted(self.offsets, rows, right=True) - 1
            out.scatter_reduce_(0, video, rows - self.offsets[video] + 1, reduce="amax")
        return out
