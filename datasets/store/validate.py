"""Full validation of a feature store: the cheap header checks plus a scan of every frame.

``python -m datasets validate DIR`` prints every problem and exits non-zero if there is
any. The scan reads each stream in blocks, so memory stays bounded on a 100 GB store.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from datasets.common.errors import Problem, StoreError
from datasets.common.progress import progress_bar
from datasets.store import layout
from datasets.store.checks import REBUILD, frame_problems, header_problems
from datasets.store.manifest import load_manifest
from datasets.store.reader import open_h5, read_header

SCAN_BLOCK_BYTES = 64 * 1024 * 1024


def _scan_stream(ds: h5py.Dataset, where: str, progress) -> tuple[np.ndarray, list[Problem]]:
    """Rows of ``ds`` holding NaN/Inf, and read errors (a checksum mismatch, a short file)."""
    rows, dim = ds.shape
    block = max(1, SCAN_BLOCK_BYTES // (2 * max(dim, 1)))
    bad: list[np.ndarray] = []
    for lo in range(0, rows, block):
        hi = min(rows, lo + block)
        try:
            values = ds[lo:hi]
        except OSError as exc:
            return np.array([], dtype=np.int64), [
                Problem(where, f"frame rows {lo}..{hi} cannot be read ({exc}); the file is corrupt", REBUILD)
            ]
        finite = np.isfinite(values).all(axis=1)
        if not finite.all():
            bad.append(lo + np.flatnonzero(~finite))
        progress.update(hi - lo)
    return (np.concatenate(bad) if bad else np.array([], dtype=np.int64)), []


def validate_store(path: Path | str, *, show_progress: bool = True) -> list[Problem]:
    """Check everything about the store at ``path``; return every problem found."""
    path = Path(path)
    manifest, problems = load_manifest(path)
    h5_path = path / layout.FEATURES_FILE
    if not path.is_dir() or (manifest is None and not h5_path.exists()):
        return problems  # not a store at all: one finding, not a list of its missing parts
    try:
        with open_h5(h5_path) as h5:
            header, header_read = read_header(h5, str(h5_path))
            problems += header_read
            if manifest is None or header is None:
                return problems
            cheap = header_problems(manifest, header, str(h5_path))
            problems += cheap
            offsets = header.offsets
            monotone = (offsets.ndim == 1 and len(offsets) == header.num_videos + 1
                        and bool((np.diff(offsets) >= 0).all()))
            for stream in sorted(set(header.stream_shapes) & set(manifest.streams)):
                ds = h5[layout.feature_dataset(stream)]
                if ds.ndim != 2:
                    continue
                where = f"{h5_path} ({layout.feature_dataset(stream)})"
                with progress_bar(total=ds.shape[0], desc=f"scan {stream}", unit="frame", enable=show_progress) as bar:
                    bad_rows, read_problems = _scan_stream(ds, where, bar)
                problems += read_problems
                if len(bad_rows):
                    if monotone and int(offsets[-1]) == ds.shape[0]:
                        problems += frame_problems(bad_rows, header.offsets, header.video_ids, where)
                    else:
                        problems.append(
                            Problem(where, f"{len(bad_rows)} frame(s) hold NaN or Inf (offsets are broken, so "
                                    "the videos cannot be named)", REBUILD)
                        )
    except StoreError as exc:
        message = str(exc)
        prefix = f"{h5_path}: "
        problems.append(Problem(str(h5_path), message.removeprefix(prefix)))
    return problems
