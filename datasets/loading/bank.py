"""The feature bank: one split of a store, loaded once, served as batches on the device.

Every method of a run shares the same banks (one per split); methods never open files.
A batch is built with a handful of tensor ops on the device: index the videos, sample a
(B, T) grid of frame positions (datasets/loading/sampling.py), and hand out a metered accessor
(datasets/loading/access.py) through which the method reads features. Storage stays float16.

Where the split lives is decided once, at load (datasets/loading/device.py says how): *resident*
on the device, or, when it does not fit, in pinned host memory with each batch's videos
copied to the device asynchronously on a side CUDA stream while the previous batch is
being computed (double-buffered staging).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from datasets.common.errors import StoreError, StoreValidationError, UsageError
from datasets.common.progress import progress_bar
from datasets.loading.access import MeteredFeatures
from datasets.loading.device import device_budget_bytes, host_available_bytes, resolve_device, tune_host_allocator
from datasets.loading.guard import check_split
from datasets.loading.meter import ReadMeter
from datasets.loading.sampling import FrameSampler
from datasets.store.checks import frame_problems
from datasets.store.reader import FeatureStore

log = logging.getLogger(__name__)

FINITE_CHECK_ROWS = 1 << 16  # rows per block of the NaN/Inf check (bounds its temporary)
BUCKET_POOL = 16  # batches per pool when bucketing shuffled epochs by length


class LabelsHiddenError(UsageError):
    """A method asked an evaluation batch for its labels."""


@dataclass
class Batch:
    """B videos of one bank, with their sampled frame grid and a metered accessor.

    Labels are for the loss: a training batch carries them, an evaluation batch does not
    (``labels`` raises ``LabelsHiddenError``), so no ``forward`` can score a video by its label."""

    index: torch.Tensor  # (B,) bank rows
    video_ids: list[str]
    targets: torch.Tensor | None  # (B, C) float32 multi-hot (all zero in an unlabelled split); None: hidden
    lengths: torch.Tensor  # (B,) frames per video
    frames: torch.Tensor  # (B, T) sampled frame positions
    mask: torch.Tensor  # (B, T) which grid steps exist
    features: MeteredFeatures = field(repr=False)

    @property
    def labels(self) -> torch.Tensor:
        """(B, C) float32 multi-hot labels of a training batch (for the loss)."""
        if self.targets is None:
            reader = getattr(self.features, "_reader", None)
            who = f"method {reader!r} asked an evaluation batch for its labels: " if reader else ""
            raise LabelsHiddenError(
                f"{who}labels are for the loss: an evaluation batch carries none, so a method cannot score videos by "
                "their labels (read batch.labels only in loss(), on training batches)")
        return self.targets

    @property
    def size(self) -> int:
        return len(self.index)

    @property
    def steps(self) -> torch.Tensor:
        """(B,) valid grid steps per video."""
        return self.mask.sum(dim=1)

    def read(self, stream: str, where: torch.Tensor | None = None) -> torch.Tensor:
        """Shortcut for ``batch.features.read(stream, where)``: padded (B, T, D)."""
        return self.features.read(stream, where)

    def first_steps(self, k: int) -> Batch:
        """The batch cut to its first ``k`` grid steps: what an online method has seen after
        ``k`` frames of its (in-order) grid. Reads through the cut batch are metered as usual."""
        if k < 1:
            raise UsageError(f"first_steps needs k >= 1, got {k}")
        frames, mask = self.frames[:, :k], self.mask[:, :k]
        return replace(self, frames=frames, mask=mask, features=self.features.on_grid(frames, mask))


@dataclass
class _Pending:
    """A streamed batch whose copies to the device have been issued."""

    rows: np.ndarray
    sources: dict[str, torch.Tensor]
    source_start: torch.Tensor
    event: torch.cuda.Event | None


class FeatureBank:
    """All videos of one split, with their features on ``device`` (or streamed to it)."""

    def __init__(
        self,
        store: FeatureStore | Path | str,
        split: str,
        *,
        device: str | torch.device | None = "auto",
        streams: Sequence[str] | None = None,
        memory_budget_bytes: int | None = None,
        show_progress: bool = True,
    ) -> None:
        check_split(split, store.path if isinstance(store, FeatureStore) else store)  # a selection run's guard
        self.store = store if isinstance(store, FeatureStore) else FeatureStore.open(store)
        manifest = self.store.manifest
        self.split = split
        self.device = resolve_device(device)
        self.streams = list(streams) if streams is not None else list(manifest.streams)
        for stream in self.streams:
            if stream not in manifest.streams:
                raise StoreError(f"{self.store.path}: no stream {stream!r}; it has {sorted(manifest.streams)}")
        self._store_rows = self.store.split_rows(split)
        header = self.store.header
        self.video_ids: list[str] = header.video_ids[self._store_rows].tolist()
        self.lengths_host = header.lengths[self._store_rows].astype(np.int64)
        self.offsets_host = np.concatenate([[0], np.cumsum(self.lengths_host)]).astype(np.int64)
        self.class_names = list(manifest.classes)

        self.nbytes = int(self.offsets_host[-1]) * sum(2 * manifest.streams[s].dim for s in self.streams)
        budget = memory_budget_bytes if memory_budget_bytes is not None else device_budget_bytes(self.device)
        self.resident = budget is None or self.nbytes <= budget
        available = host_available_bytes()
        if available is not None and self.nbytes > available:
            raise StoreError(
                f"{self.store.path}: split {split!r} needs {self.nbytes / 2**30:.1f} GiB of host memory to load, "
                f"only {available / 2**30:.1f} GiB is available. Use a machine with more memory, fewer streams, "
                "or a store with fewer videos"
            )
        pin = self.device.type == "cuda" and not self.resident
        host = self._load_host(pin=pin, show_progress=show_progress)
        self._check_finite(host)
        if self.resident:
            self.features = {s: t.to(self.device) for s, t in host.items()}
            self._host = None
        else:
            self.features = {}
            self._host = host
        if self.device.type == "cpu":
            tune_host_allocator()  # batches are host tensors: see its docstring
        self.labels = torch.from_numpy(header.labels[self._store_rows].astype(np.float32)).to(self.device)
        self.lengths = torch.from_numpy(self.lengths_host).to(self.device)
        self.offsets = torch.from_numpy(self.offsets_host).to(self.device)
        log.info("%s", self.describe())

    # ------------------------------------------------------------------ loading
    def _load_host(self, *, pin: bool, show_progress: bool) -> dict[str, torch.Tensor]:
        total = int(self.offsets_host[-1])
        host: dict[str, torch.Tensor] = {}
        dims = {s: self.store.manifest.streams[s].dim for s in self.streams}
        with progress_bar(total=total * len(self.streams), desc=f"load {self.split}", unit="frame",
                          enable=show_progress) as bar:
            for stream in self.streams:
                # One extra all-zero row at the end: unread slots of a batch gather it.
                buffer = torch.empty((total + 1, dims[stream]), dtype=torch.float16, pin_memory=pin)
                buffer[total] = 0
                self.store.read_frames(stream, self._store_rows, buffer[:total].numpy(), progress=bar.update)
                host[stream] = buffer
        return host

    def _check_finite(self, host: dict[str, torch.Tensor]) -> None:
        """Cheap per-load check: no NaN/Inf in the frames of this split (blocked, on host)."""
        for stream, tensor in host.items():
            bad: list[torch.Tensor] = []
            for lo in range(0, tensor.shape[0], FINITE_CHECK_ROWS):
                block = tensor[lo : lo + FINITE_CHECK_ROWS]
                finite = torch.isfinite(block).all(dim=1)
                if not bool(finite.all()):
                    bad.append(lo + torch.nonzero(~finite).flatten())
            if bad:
                rows = torch.cat(bad).numpy()
                where = f"{self.store.features_path} (features/{stream}, split {self.split!r})"
                raise StoreValidationError(
                    self.store.path, frame_problems(rows, self.offsets_host, np.asarray(self.video_ids), where)
                )

    # ------------------------------------------------------------------ info
    @property
    def num_videos(self) -> int:
        return len(self.video_ids)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_frames(self) -> int:
        return int(self.offsets_host[-1])

    def dim(self, stream: str) -> int:
        return self.store.manifest.streams[stream].dim

    def describe(self) -> str:
        where = f"resident on {self.device}" if self.resident else f"pinned host memory, streamed to {self.device}"
        return (
            f"bank {self.store.manifest.name}/{self.split}: {self.num_videos} videos, {self.num_frames} frames, "
            f"streams {self.streams}, {self.nbytes / 2**20:.1f} MiB float16, {where}"
        )

    def new_meter(self) -> ReadMeter:
        """A fresh meter over this bank's frames (one per evaluation pass)."""
        return ReadMeter(self.offsets, self.streams)

    # ------------------------------------------------------------------ batches
    def batches(
        self,
        batch_size: int,
        sampler: FrameSampler,
        *,
        train: bool = False,
        shuffle: bool | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        meter: ReadMeter | None = None,
        rows: Sequence[int] | np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
        bucket: bool | None = None,
        horizons: Sequence[int] | np.ndarray | None = None,
        streams: Sequence[str] | None = None,
        reader: str | None = None,
        labels: bool | None = None,
    ) -> Iterator[Batch]:
        """Iterate over the split (or ``rows`` of it) in batches of ``batch_size`` videos.

        ``train`` turns on sampling jitter and (by default) shuffling; both draw from
        ``generator`` (or a new one seeded with ``seed``), which is required then, so that
        every run is reproducible. ``meter`` records every feature read.

        ``bucket`` groups videos of similar length into a batch, so a variable-length grid
        (``AllFrames``) pads little: without it a batch is as long as its longest video,
        about twice the mean on the synthetic default. Shuffled epochs are cut into pools of
        ``BUCKET_POOL`` batches, each pool sorted by length and split into batches, and the
        batches shuffled; unshuffled passes are simply sorted by length. The default is the
        sampler's ``variable_length``.

        ``horizons`` ((N,) ints >= 1, one per video of the bank) exposes only the first
        ``horizons[i]`` frames of video i, as if the video ended there: the sampler spreads
        its frames over them and a read past them is an error. Online evaluation uses it
        for frames that have not arrived yet (the paper's Uniform-K).

        ``streams`` (with ``reader``, the reading method's name) are the only streams the
        batches may read: a read of another one is refused (``UndeclaredStreamError``), so a
        method cannot read, uncharged, a stream that another method of the run loaded.

        ``labels``: whether the batches carry their labels; by default training batches do
        and evaluation batches do not (``Batch.labels``).
        """
        if batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        shuffle = train if shuffle is None else shuffle
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        if generator is None and (train or shuffle):
            raise UsageError("training batches and shuffling need a seed= or generator= (runs must be reproducible)")
        visible = self._visible_lengths(horizons)
        access = (None if streams is None else tuple(streams), reader, train if labels is None else labels)
        order = np.arange(self.num_videos) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(order) and (order.min() < 0 or order.max() >= self.num_videos):
            raise IndexError(f"rows must lie in [0, {self.num_videos}) for bank {self.split!r}")
        if shuffle:
            order = order[torch.randperm(len(order), generator=generator).numpy()]
        bucket = sampler.variable_length if bucket is None else bucket
        if bucket:
            pool = len(order) if not shuffle else BUCKET_POOL * batch_size
            order = np.concatenate([
                part[np.argsort(visible[0][part], kind="stable")]
                for part in np.array_split(order, max(1, -(-len(order) // pool)))
            ]) if len(order) else order
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if bucket and shuffle:
            chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
        if self.resident:
            for chunk in chunks:
                starts = self.offsets[torch.from_numpy(chunk).to(self.device)]
                yield self._finish(chunk, self.features, starts, sampler, train, generator, meter, dtype, visible,
                                   access)
        else:
            yield from self._streamed(chunks, sampler, train, generator, meter, dtype, visible, access)

    def _visible_lengths(self, horizons: Sequence[int] | np.ndarray | None) -> tuple[np.ndarray, torch.Tensor]:
        """Per-video frame counts a batch exposes, on the host and on the device."""
        if horizons is None:
            return self.lengths_host, self.lengths
        limits = np.asarray(horizons)
        if limits.shape != (self.num_videos,) or not np.issubdtype(limits.dtype, np.integer):
            raise UsageError(f"horizons must be {self.num_videos} integers (one per video of bank {self.split!r}), "
                             f"got an array of shape {limits.shape} and dtype {limits.dtype}")
        if len(limits) and limits.min() < 1:
            video = self.video_ids[int(np.argmin(limits))]
            raise UsageError(f"horizons must be >= 1 (a video shows at least one frame); video {video!r} has "
                             f"{int(limits.min())}")
        host = np.minimum(self.lengths_host, limits.astype(np.int64))
        return host, torch.from_numpy(host).to(self.device)

    def _finish(
        self,
        rows: np.ndarray,
        sources: dict[str, torch.Tensor],
        source_start: torch.Tensor,
        sampler: FrameSampler,
        train: bool,
        generator: torch.Generator | None,
        meter: ReadMeter | None,
        dtype: torch.dtype,
        visible: tuple[np.ndarray, torch.Tensor],
        access: tuple[tuple[str, ...] | None, str | None, bool] = (None, None, True),
    ) -> Batch:
        index = torch.from_numpy(rows).to(self.device)
        lengths = visible[1][index]
        max_length = int(visible[0][rows].max())
        frames, mask = sampler.sample(lengths, max_length, train=train, generator=generator)
        ids = [self.video_ids[i] for i in rows.tolist()]
        declared, reader, labelled = access
        features = MeteredFeatures(
            sources, source_start, self.offsets[index], lengths, frames, mask, meter, ids, dtype, declared, reader
        )
        return Batch(index, ids, self.labels[index] if labelled else None, lengths, frames, mask, features)

    # ------------------------------------------------------------------ streaming
    def _streamed(self, chunks, sampler, train, generator, meter, dtype, visible, access) -> Iterator[Batch]:
        assert self._host is not None
        cuda = self.device.type == "cuda"
        copy_stream = torch.cuda.Stream(self.device) if cuda else None
        most = max((int(self.lengths_host[c].sum()) for c in chunks), default=0) + 1  # + zero row
        zero_row = self.num_frames  # index of the host arrays' trailing zero row
        staging = [
            {s: torch.empty((most, t.shape[1]), dtype=t.dtype, pin_memory=True) for s, t in self._host.items()}
            for _ in range(2)
        ] if cuda else None
        events: list[torch.cuda.Event | None] = [None, None]

        def issue(k: int) -> _Pending:
            rows = chunks[k]
            lengths = self.lengths_host[rows]
            frame_rows = frame_ranges(self.offsets_host[rows], lengths)
            index = torch.from_numpy(np.append(frame_rows, zero_row))  # the batch keeps a zero row too
            start = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))
            if not cuda:
                sources = {s: t.index_select(0, index) for s, t in self._host.items()}
                return _Pending(rows, sources, start, None)
            slot = k % 2
            if events[slot] is not None:
                events[slot].synchronize()  # the copy that last used this staging slot is done
            sources = {}
            main = torch.cuda.current_stream(self.device)
            for s, t in self._host.items():
                buf = staging[slot][s][: len(index)]
                torch.index_select(t, 0, index, out=buf)
                dev = torch.empty(buf.shape, dtype=buf.dtype, device=self.device)  # allocated on main
                copy_stream.wait_stream(main)
                with torch.cuda.stream(copy_stream):
                    dev.copy_(buf, non_blocking=True)
                sources[s] = dev
            event = torch.cuda.Event()
            event.record(copy_stream)
            events[slot] = event
            return _Pending(rows, sources, start.to(self.device, non_blocking=True), event)

        pending = issue(0) if chunks else None
        for k in range(len(chunks)):
            upcoming = issue(k + 1) if k + 1 < len(chunks) else None  # overlaps batch k's compute
            if pending.event is not None:
                torch.cuda.current_stream(self.device).wait_event(pending.event)
            yield self._finish(pending.rows, pending.sources, pending.source_start, sampler, train, generator,
                               meter, dtype, visible, access)
            pending = upcoming


def frame_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each (s, l), vectorised: the frame rows of
    videos that start at ``starts`` (offsets into a frame array) and have ``lengths`` frames."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    base = np.repeat(starts - (ends - lengths), lengths)
    return (np.arange(total, dtype=np.int64) + base).astype(np.int64)
