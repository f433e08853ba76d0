"""Metered feature access: the only way a method sees frame features.

A ``MeteredFeatures`` object belongs to one batch. Every read goes through its ``_gather``,
which does one ``index_select`` on the stream's packed frame array for the whole batch
(no Python loop over videos) and one ``index_add_`` on the meter. Reads return float32 by
default (``dtype`` changes that, e.g. ``torch.bfloat16`` under autocast); storage stays
float16. Positions that are not read (masked out, or not selected by ``where``/``rows``)
come back as exact zeros: every source array ends with one all-zero row, and unread slots
gather that row instead of a frame, so zeroing costs no extra pass over (B, T, D) and even
NaN in an unread frame cannot leak into the result.

Three ways to read, from dense to sparse:

* ``read(stream, where=None)``: the sampled (B, T) grid as a padded (B, T, D) tensor;
* ``read_step(stream, t, rows=None)``: step ``t`` of the grid for some batch rows only,
  (R, D), for methods that decide per step which videos need a feature (LiteEval);
* ``read_frames(stream, positions, rows=None, valid=None)``: arbitrary frame positions,
  for agents that jump around the video (FrameGlimpse, FastForward).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from datasets.common.errors import UsageError
from datasets.loading.meter import ReadMeter


class UndeclaredStreamError(UsageError):
    """A method read a stream that its ``streams`` does not declare.

    The run loads and charges only the streams its methods declare, so such a read would
    be free when another method of the run happens to load the stream (and a KeyError when
    none does). It is refused the same way in both cases, naming the method and the stream."""


class MeteredFeatures:
    """Batch-local, metered view of the frame features of B videos.

    ``declared`` (with ``reader``, the method's name) restricts reads to the streams the
    reading method declares; the harness always sets it.

    The feature arrays are held only inside the closure that meters every read (``_gather``):
    no attribute of a batch leads to them, so a method has no unmetered path to a frame short of
    unpicking the closure, which the conformance check's poisoned frames catch
    (benchmark/conformance.py)."""

    def __init__(
        self,
        sources: dict[str, torch.Tensor],
        source_start: torch.Tensor,
        bank_start: torch.Tensor,
        lengths: torch.Tensor,
        frames: torch.Tensor,
        mask: torch.Tensor,
        meter: ReadMeter | None,
        video_ids: list[str] | None = None,
        dtype: torch.dtype = torch.float32,
        declared: tuple[str, ...] | None = None,
        reader: str | None = None,
    ) -> None:
        self._declared = None if declared is None else tuple(declared)
        self._reader = reader
        self._loaded = tuple(sources)
        self._frames = frames  # (B, T) sampled positions
        self._mask = mask  # (B, T)
        self.dtype = dtype
        # sources: stream -> (rows + 1, D) float16, these videos' frames then a zero row;
        # source_start / bank_start: (B,) first row of each video in the source / in the bank (for the meter).
        self._gather = _metered_gather(sources, source_start, bank_start, lengths, meter, video_ids,
                                       self._declared, reader)

    @property
    def streams(self) -> list[str]:
        """The streams this view may read: loaded and (where set) declared by the reader."""
        return [s for s in self._loaded if self._declared is None or s in self._declared]

    def on_grid(self, frames: torch.Tensor, mask: torch.Tensor) -> MeteredFeatures:
        """The same features, sources and meter, exposing another (B, T') grid of positions."""
        view = copy.copy(self)
        view._frames, view._mask = frames, mask
        return view

    def read(self, stream: str, where: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) features of the sampled grid; zero at padded or unselected steps.

        ``where`` ((B, T) bool) reads only the selected steps (it is intersected with the
        batch mask); only those are metered.
        """
        valid = self._mask if where is None else (where & self._mask)
        return self._gather(stream, None, self._frames, valid, self.dtype)

    def read_step(
        self, stream: str, step: int, rows: torch.Tensor | None = None, where: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(R, D) features of grid step ``step`` for batch rows ``rows`` (int64; all if None).

        Rows whose video has no frame at this step (padding) read zeros and are not metered;
        so do rows where ``where`` ((R,) bool, optional) is false, which lets a method skip
        videos without a host synchronisation (e.g. videos that stopped under a budget).
        """
        frames, mask = self._frames[:, step], self._mask[:, step]
        if rows is not None:
            frames, mask = frames[rows], mask[rows]
        if where is not None:
            mask = mask & where
        return self._gather(stream, rows, frames, mask, self.dtype)

    def read_frames(
        self,
        stream: str,
        positions: torch.Tensor,
        rows: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Features at arbitrary frame ``positions`` ((R,) or (R, S) int64) of batch ``rows``.

        Positions must lie inside their video (checked); ``valid`` masks slots to skip.
        """
        return self._gather(stream, rows, positions.long(), valid, self.dtype)


def _check_positions(positions: torch.Tensor, lengths: torch.Tensor, valid: torch.Tensor | None,
                     rows: torch.Tensor | None, video_ids: list[str] | None) -> None:
    bad = (positions < 0) | (positions >= lengths)
    if valid is not None:
        bad &= valid
    if positions.is_cuda:
        # A host-side check would synchronise every step; assert on the device instead.
        torch._assert_async(~bad.any(), "a method read a frame position outside its video")
        return
    if not bad.any():
        return
    row, col = (int(i) for i in torch.nonzero(bad)[0])
    batch_row = int(rows[row]) if rows is not None else row
    name = f" {video_ids[batch_row]!r}" if video_ids else ""
    raise IndexError(
        f"a method read frame {int(positions[row, col])} of video{name}, which has "
        f"{int(lengths[row, 0])} frames; positions must lie in [0, length)"
    )


def _metered_gather(sources: dict[str, torch.Tensor], source_start: torch.Tensor, bank_start: torch.Tensor,
                    lengths: torch.Tensor, meter: ReadMeter | None, video_ids: list[str] | None,
                    declared: tuple[str, ...] | None, reader: str | None) -> Callable[..., torch.Tensor]:
    """The one function that reads features: the arrays stay in its closure, and every read is recorded."""

    def gather(stream: str, rows: torch.Tensor | None, positions: torch.Tensor, valid: torch.Tensor | None,
               dtype: torch.dtype) -> torch.Tensor:
        """Features at ``positions`` ((R,) or (R, S)) of batch rows ``rows`` (all if None)."""
        if declared is not None and stream not in declared:
            who = f"method {reader!r}" if reader else "the reader"
            raise UndeclaredStreamError(
                f"{who} read the {stream!r} stream but declares streams = {declared}; add {stream!r} to its "
                "`streams` so that the run loads that stream and charges its reads")
        if stream not in sources:
            loaded = [s for s in sources if declared is None or s in declared]
            raise KeyError(f"stream {stream!r} is not loaded; this bank has {loaded}")
        source = sources[stream]
        starts, bank, lens = source_start, bank_start, lengths
        if rows is not None:
            starts, bank, lens = starts[rows], bank[rows], lens[rows]
        squeeze = positions.dim() == 1
        if squeeze:
            positions = positions[:, None]
            valid = None if valid is None else valid[:, None]
        _check_positions(positions, lens[:, None], valid, rows, video_ids)
        rows_in_source = starts[:, None] + positions
        if valid is not None:
            zero_row = source.shape[0] - 1
            rows_in_source = torch.where(valid, rows_in_source, zero_row)
            positions = torch.where(valid, positions, 0)  # in bounds for the meter, with weight 0
        out = source.index_select(0, rows_in_source.reshape(-1))
        out = out.view(*positions.shape, source.shape[1]).to(dtype)
        if meter is not None:
            meter.record(stream, bank[:, None] + positions, valid)
        return out[:, 0] if squeeze else out

    return gather
