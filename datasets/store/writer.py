"""Writing a feature store: arrays into features.h5, then manifest.json, then publish.

The store is built in a temporary directory and renamed into place only when every frame
of every stream was written, so an interrupted ingest or synth never leaves a store that
looks complete. Per-stream arrays are chunked with a Fletcher-32 checksum so a reader can
tell corrupted bytes from data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from datasets.common.atomic import atomic_directory
from datasets.common.errors import StoreError
from datasets.common.paths import name_problem
from datasets.store import layout
from datasets.store.checks import header_digest
from datasets.store.manifest import Manifest, SplitSpec, StreamSpec

FLOAT16_MAX = float(np.finfo(np.float16).max)


def chunk_rows(dim: int) -> int:
    """Frame rows per HDF5 chunk for a stream of ``dim`` float16 features."""
    return max(1, layout.CHUNK_BYTES // (2 * dim))


def to_float16(array: np.ndarray, *, what: str) -> np.ndarray:
    """Convert features to float16, refusing values that are not finite or overflow it."""
    array = np.asarray(array)
    if array.dtype == np.float16:
        if not np.isfinite(array).all():
            raise StoreError(f"{what}: features contain NaN or Inf; fix the extractor output")
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise StoreError(f"{what}: features must be floating point, got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise StoreError(f"{what}: features contain NaN or Inf; fix the extractor output")
    peak = float(np.abs(array).max()) if array.size else 0.0
    if peak > FLOAT16_MAX:
        raise StoreError(
            f"{what}: a value of magnitude {peak:.3g} overflows float16 (max {FLOAT16_MAX:.0f}); "
            "normalise or rescale the features before ingesting them"
        )
    return array.astype(np.float16)


class StoreWriter:
    """Context manager that writes one store and publishes it atomically on success.

    Usage::

        with StoreWriter(out, name=..., classes=..., ..., lengths=lengths) as writer:
            for i, arrays in enumerate(videos):
                writer.write_video(i, arrays)     # or writer.write_frames(stream, row, block)

    Videos should be ordered by split so that each split is one contiguous block of rows
    (loaders then read a split with one large read per stream); ingest and synth do this.
    """

    def __init__(
        self,
        out: Path | str,
        *,
        name: str,
        classes: Sequence[str],
        multi_label: bool,
        fps: float,
        streams: Mapping[str, StreamSpec],
        video_ids: Sequence[str],
        splits: Sequence[str],
        labels: np.ndarray,
        lengths: Sequence[int] | np.ndarray,
        provenance: Mapping[str, Any] | None = None,
        labelled_splits: Mapping[str, bool] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.out = Path(out)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.uint8)
        n = len(video_ids)
        if n == 0:
            raise StoreError(f"{self.out}: refusing to write a store with no videos")
        if name_problem(name):
            raise StoreError(f"{self.out}: the store's name {name!r} cannot name a results folder: "
                             f"{name_problem(name)}; pass a plain one with --name")
        if not (len(splits) == n == len(self.lengths) == self.labels.shape[0]):
            raise StoreError(
                f"{self.out}: video_ids ({n}), splits ({len(splits)}), lengths ({len(self.lengths)}) "
                f"and labels ({self.labels.shape[0]}) must have one entry per video"
            )
        if self.labels.ndim != 2 or self.labels.shape[1] != len(classes):
            raise StoreError(f"{self.out}: labels must be (N, {len(classes)}), got {self.labels.shape}")
        if (self.lengths <= 0).any():
            bad = [video_ids[i] for i in np.flatnonzero(self.lengths <= 0)[:5]]
            raise StoreError(f"{self.out}: videos with no frames cannot be stored: {bad}")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self.video_ids = list(video_ids)
        self.splits = list(splits)
        self.streams = dict(streams)
        split_names = list(dict.fromkeys(self.splits))
        if labelled_splits is None:
            labelled_splits = {
                s: bool(self.labels[np.asarray(self.splits) == s].any()) for s in split_names
            }
        self.manifest = Manifest(
            name=name,
            classes=tuple(classes),
            multi_label=multi_label,
            fps=float(fps),
            streams=self.streams,
            splits={
                s: SplitSpec(num_videos=self.splits.count(s), labelled=bool(labelled_splits[s]))
                for s in split_names
            },
            num_videos=n,
            num_frames=int(self.offsets[-1]),
            provenance=dict(provenance or {}),
        )
        self.overwrite = overwrite
        self._dir_ctx = None
        self._tmp: Path | None = None
        self._h5: h5py.File | None = None
        self._written: dict[str, np.ndarray] = {}

    def __enter__(self) -> StoreWriter:
        self._dir_ctx = atomic_directory(self.out, overwrite=self.overwrite)
        self._tmp = self._dir_ctx.__enter__()
        self._h5 = h5py.File(self._tmp / layout.FEATURES_FILE, "w")
        h5 = self._h5
        h5.attrs["format"] = layout.FORMAT_NAME
        h5.attrs["format_version"] = layout.FORMAT_VERSION
        strings = h5py.string_dtype("utf-8")
        h5.create_dataset(layout.VIDEO_IDS, data=np.array(self.video_ids, dtype=object), dtype=strings)
        h5.create_dataset(layout.SPLITS, data=np.array(self.splits, dtype=object), dtype=strings)
        h5.create_dataset(layout.LABELS, data=self.labels, dtype=layout.LABEL_DTYPE)
        h5.create_dataset(layout.OFFSETS, data=self.offsets, dtype=layout.OFFSET_DTYPE)
        total = int(self.offsets[-1])
        for stream, spec in self.streams.items():
            h5.create_dataset(
                layout.feature_dataset(stream),
                shape=(total, spec.dim),
                dtype=layout.FEATURE_DTYPE,
                chunks=(min(total, chunk_rows(spec.dim)), spec.dim),
                fletcher32=True,
            )
            self._written[stream] = np.zeros(total, dtype=bool)
        return self

    def write_frames(self, stream: str, start: int, block: np.ndarray, *, what: str | None = None) -> None:
        """Write consecutive frame rows ``start : start + len(block)`` of ``stream``."""
        if self._h5 is None:
            raise StoreError("StoreWriter is not open; use it as a context manager")
        spec = self.streams.get(stream)
        if spec is None:
            raise StoreError(f"{self.out}: unknown stream {stream!r}; expected one of {sorted(self.streams)}")
        what = what or f"{self.out} stream {stream!r} rows {start}..{start + len(block)}"
        if block.ndim != 2 or block.shape[1] != spec.dim:
            raise StoreError(f"{what}: expected shape (T, {spec.dim}), got {block.shape}")
        stop = start + block.shape[0]
        if start < 0 or stop > len(self._written[stream]):
            raise StoreError(f"{what}: rows {start}..{stop} are outside 0..{len(self._written[stream])}")
        self._h5[layout.feature_dataset(stream)][start:stop] = to_float16(block, what=what)
        self._written[stream][start:stop] = True

    def write_video(self, index: int, arrays: Mapping[str, np.ndarray]) -> None:
        """Write every stream of video ``index`` (arrays of shape (T_i, D_stream))."""
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        for stream, block in arrays.items():
            what = f"video {self.video_ids[index]!r} stream {stream!r}"
            if block.shape[0] != stop - start:
                raise StoreError(f"{what}: has {block.shape[0]} frames, the store expects {stop - start}")
            self.write_frames(stream, start, block, what=what)

    def write_extra(self, name: str, data: np.ndarray) -> None:
        """Store an optional array under extras/ (ignored by loaders; e.g. ground truth)."""
        if self._h5 is None:
            raise StoreError("StoreWriter is not open; use it as a context manager")
        self._h5.create_dataset(f"{layout.EXTRAS_GROUP}/{name}", data=data)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._dir_ctx is not None and self._h5 is not None and self._tmp is not None
        try:
            if exc_type is None:
                for stream, written in self._written.items():
                    if not written.all():
                        missing = int((~written).sum())
                        raise StoreError(
                            f"{self.out}: {missing} frame rows of stream {stream!r} were never written; "
                            "the store is incomplete and was not published"
                        )
            self._h5.close()
            if exc_type is None:
                digest = header_digest(self.video_ids, self.splits, self.labels, self.offsets)
                self.manifest = replace(self.manifest, checksums={layout.HEADER_CHECKSUM: digest})
                self.manifest.save(self._tmp)
        except BaseException as error:
            self._h5.close()
            self._dir_ctx.__exit__(type(error), error, error.__traceback__)
            raise
        self._dir_ctx.__exit__(exc_type, exc, tb)
