"""One live video as a metered batch: features computed from frames, not read from a store.

The harness feeds methods batches from a bank (datasets/loading/bank.py). A video that is being
decoded now (``python -m benchmark stream``) has no bank: its features exist only for the frames
a backbone was run on. ``live_batch`` wraps those in the same ``Batch`` and metered accessor, so
an offline method (Uniform) runs unchanged on them, and the meter says which frames it read;
``unread_by`` then proves it read none of the frames that were not computed.
"""

from __future__ import annotations

import torch

from datasets.common.errors import UsageError
from datasets.loading.access import MeteredFeatures
from datasets.loading.bank import Batch
from datasets.loading.meter import ReadMeter
from datasets.loading.sampling import FrameSampler


def sampled_positions(sampler: FrameSampler, length: int) -> torch.Tensor:
    """The distinct frame positions of a ``length``-frame video that ``sampler`` picks at
    evaluation (what the backbones must be run on for a method that reads its grid)."""
    lengths = torch.tensor([length])
    frames, mask = sampler.sample(lengths, length, train=False, generator=None)
    return torch.unique(frames[mask])


def live_batch(features: dict[str, torch.Tensor], length: int, sampler: FrameSampler, *,
               video_id: str, reader: str, device: torch.device) -> tuple[Batch, ReadMeter]:
    """A one-video batch over ``features`` (stream -> (length, D), zero where not computed), on
    ``sampler``'s evaluation grid, with a meter of its reads. Reads are restricted to the given
    streams (the method's declared ones)."""
    for stream, values in features.items():
        if values.shape[0] != length:
            raise UsageError(f"live features of stream {stream!r}: {values.shape[0]} frames, the video has {length}")
    lengths = torch.tensor([length], device=device)
    frames, mask = sampler.sample(lengths, length, train=False, generator=None)
    offsets = torch.tensor([0, length], device=device)
    meter = ReadMeter(offsets, list(features))
    zero = torch.zeros(1, dtype=torch.long, device=device)
    sources = {s: torch.cat([v.to(device, torch.float16), v.new_zeros(1, v.shape[1]).to(device, torch.float16)])
               for s, v in features.items()}
    accessor = MeteredFeatures(sources, zero, zero, lengths, frames, mask, meter, video_ids=[video_id],
                               declared=tuple(features), reader=reader)
    batch = Batch(index=zero, video_ids=[video_id], targets=None,  # a live video has no label
                  lengths=lengths, frames=frames, mask=mask, features=accessor)
    return batch, meter


def unread_by(meter: ReadMeter, computed: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    """Per stream, the frame positions the method read that are not among ``computed`` (empty
    lists when it read only frames whose features exist)."""
    out = {}
    for stream, positions in computed.items():
        read = meter.frames_of(stream, 0).cpu()
        out[stream] = sorted(set(read.tolist()) - set(positions.cpu().tolist()))
    return out
