"""Reading a feature store: open it, check its header, read whole splits in large blocks.

Methods never use this module directly; the feature bank (datasets/loading/bank.py) reads each
split once through it and serves batches from memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from datasets.common.errors import Problem, StoreError, StoreValidationError
from datasets.store import layout
from datasets.store.checks import REBUILD, Header, header_problems
from datasets.store.manifest import Manifest, load_manifest

# Read at most this many frame rows per HDF5 call, so a progress callback can report
# and memory for one call stays bounded; large enough to be a few big sequential reads.
READ_BLOCK_BYTES = 256 * 1024 * 1024


@contextmanager
def open_h5(path: Path) -> Iterator[h5py.File]:
    """Open features.h5 read-only, turning HDF5's errors into ones that name the fix."""
    if not path.is_file():
        raise StoreError(
            f"{path}: missing. The store's manifest is there but its features file is not; "
            "copy it again or rebuild the store"
        )
    try:
        # locking=False: readers never write, and HDF5's lock can fail (or block) on
        # network file systems.
        handle = h5py.File(path, "r", locking=False)
    except OSError as exc:
        reason = str(exc)
        if "truncated" in reason:
            detail = "is truncated (an interrupted copy or write?)"
        elif "signature" in reason:
            detail = "is not an HDF5 file (or its first bytes are corrupt)"
        else:
            detail = f"cannot be opened by HDF5 ({reason})"
        raise StoreError(f"{path}: {detail}. Fix: copy it again or {REBUILD}") from exc
    try:
        yield handle
    finally:
        handle.close()


def storage_problems(h5: h5py.File, file: str) -> list[Problem]:
    """Anything in features.h5 whose data lies outside it: an external link, a dataset with
    external storage or a virtual dataset. A store is one self-contained folder; such a file
    would read (or, if written, change) files elsewhere. Found before any value is read."""
    problems: list[Problem] = []

    def walk(group: h5py.Group, prefix: str) -> None:
        for name in group:
            link = group.get(name, getlink=True)
            path = f"{prefix}{name}"
            if isinstance(link, h5py.ExternalLink):
                problems.append(Problem(file, f"'{path}' is an external link to {link.filename}", REBUILD))
                continue
            item = group.get(name)
            if isinstance(item, h5py.Group):
                walk(item, f"{path}/")
            elif isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
                kind = "is a virtual dataset" if item.is_virtual else f"stores its data in {item.external}"
                problems.append(Problem(file, f"'{path}' {kind}, outside the store", REBUILD))

    walk(h5, "")
    return problems


def read_header(h5: h5py.File, file: str) -> tuple[Header | None, list[Problem]]:
    """The per-video arrays and frame-array shapes of an open features.h5, or the problems."""
    problems: list[Problem] = storage_problems(h5, file)
    if problems:
        return None, problems
    for name in (layout.VIDEO_IDS, layout.SPLITS, layout.LABELS, layout.OFFSETS):
        if name not in h5 or not isinstance(h5[name], h5py.Dataset):
            problems.append(Problem(file, f"dataset '{name}' is missing", REBUILD))
    if layout.FEATURES_GROUP not in h5 or not isinstance(h5[layout.FEATURES_GROUP], h5py.Group):
        problems.append(Problem(file, f"group '{layout.FEATURES_GROUP}' is missing", REBUILD))
    if problems:
        return None, problems
    try:
        ids_ds, splits_ds = h5[layout.VIDEO_IDS], h5[layout.SPLITS]
        if ids_ds.ndim != 1:
            return None, [Problem(file, f"'{layout.VIDEO_IDS}' must be 1-D, got shape {ids_ds.shape}", REBUILD)]
        if h5py.check_string_dtype(ids_ds.dtype) is None or h5py.check_string_dtype(splits_ds.dtype) is None:
            return None, [Problem(file, f"'{layout.VIDEO_IDS}' and '{layout.SPLITS}' must hold strings", REBUILD)]
        header = Header(
            video_ids=np.asarray(ids_ds.asstr()[()], dtype=object).astype(str),
            splits=np.asarray(splits_ds.asstr()[()], dtype=object).astype(str),
            labels=np.asarray(h5[layout.LABELS][()]),
            offsets=np.asarray(h5[layout.OFFSETS][()]),
        )
        for stream, ds in h5[layout.FEATURES_GROUP].items():
            if isinstance(ds, h5py.Dataset):
                header.stream_shapes[stream] = tuple(ds.shape)
                header.stream_dtypes[stream] = str(ds.dtype)
    except OSError as exc:
        return None, [Problem(file, f"the per-video arrays cannot be read ({exc}); the file is corrupt", REBUILD)]
    return header, []


@dataclass
class FeatureStore:
    """An opened, header-checked feature store.

    ``FeatureStore.open(path)`` reads the manifest and the per-video arrays and runs the
    cheap checks (datasets/store/checks.py), raising ``StoreValidationError`` naming the file,
    the videos and the fix. Frame arrays are read later, a split at a time.
    """

    path: Path
    manifest: Manifest
    header: Header

    @classmethod
    def open(cls, path: Path | str) -> FeatureStore:
        path = Path(path)
        manifest, problems = load_manifest(path)
        if manifest is None:
            raise StoreValidationError(path, problems)
        h5_path = path / layout.FEATURES_FILE
        with open_h5(h5_path) as h5:
            header, problems = read_header(h5, str(h5_path))
        if header is None:
            raise StoreValidationError(path, problems)
        problems = header_problems(manifest, header, str(h5_path))
        if problems:
            raise StoreValidationError(path, problems)
        return cls(path, manifest, header)

    @property
    def features_path(self) -> Path:
        return self.path / layout.FEATURES_FILE

    def split_rows(self, split: str) -> np.ndarray:
        """Store rows (video indices) of ``split``, in store order."""
        if split not in self.manifest.splits:
            raise StoreError(
                f"{self.path}: no split {split!r}; the store has {sorted(self.manifest.splits)}"
            )
        return np.flatnonzero(self.header.splits == split)

    def frame_runs(self, rows: np.ndarray) -> list[tuple[int, int]]:
        """Contiguous frame-row ranges covering ``rows`` (ascending), merged where adjacent."""
        starts, stops = self.header.offsets[rows], self.header.offsets[rows + 1]
        if len(rows) == 0:
            return []
        breaks = np.flatnonzero(starts[1:] != stops[:-1]) + 1  # where a run ends
        firsts = np.concatenate([[0], breaks])
        lasts = np.concatenate([breaks - 1, [len(rows) - 1]])
        return list(zip(starts[firsts].tolist(), stops[lasts].tolist()))

    def read_frames(
        self,
        stream: str,
        rows: np.ndarray,
        out: np.ndarray,
        progress=None,
    ) -> None:
        """Read all frames of videos ``rows`` (ascending) of ``stream`` into ``out``.

        ``out`` is a (sum of lengths, D) float16 array (for example the numpy view of a
        pinned torch tensor, so no extra copy is made). Frames are read with one HDF5 call
        per contiguous run of videos (one run per split in stores written by this suite),
        split into blocks of ~256 MiB. ``progress(n_rows)`` is called after each block.
        """
        if stream not in self.manifest.streams:
            raise StoreError(f"{self.path}: no stream {stream!r}; the store has {sorted(self.manifest.streams)}")
        dim = self.manifest.streams[stream].dim
        block = max(1, READ_BLOCK_BYTES // (2 * dim))
        dest = 0
        with open_h5(self.features_path) as h5:
            ds = h5[layout.feature_dataset(stream)]
            for a, b in self.frame_runs(rows):
                for lo in range(a, b, block):
                    hi = min(b, lo + block)
                    try:
                        ds.read_direct(out, np.s_[lo:hi], np.s_[dest : dest + hi - lo])
                    except OSError as exc:
                        vids = self.videos_in_frame_range(lo, hi)
                        raise StoreError(
                            f"{self.features_path}: stream {stream!r} frame rows {lo}..{hi} "
                            f"(videos {vids[0]!r} .. {vids[-1]!r}) cannot be read: {exc}. "
                            f"The file is corrupt; copy it again or {REBUILD}"
                        ) from exc
                    dest += hi - lo
                    if progress is not None:
                        progress(hi - lo)
        if dest != out.shape[0]:
            raise StoreError(f"{self.features_path}: read {dest} frame rows, expected {out.shape[0]}")

    def videos_in_frame_range(self, lo: int, hi: int) -> list[str]:
        """Ids of the videos owning frame rows ``lo`` .. ``hi - 1``."""
        first = int(np.searchsorted(self.header.offsets, lo, side="right") - 1)
        last = int(np.searchsorted(self.header.offsets, max(lo, hi - 1), side="right") - 1)
        return self.header.video_ids[first : last + 1].tolist()
