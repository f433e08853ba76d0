"""Small hand-made stores for tests, with known contents."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from datasets.store import layout
from datasets.store.manifest import StreamSpec
from datasets.store.writer import StoreWriter

DIMS = {"coarse": 4, "fine": 6}


def stream_specs(dims: dict[str, int] = DIMS) -> dict[str, StreamSpec]:
    # Costs are typed in here on purpose: these stores test the format, not the cost model.
    return {
        s: StreamSpec(backbone="test", resolution=1, dim=d, gmacs_per_frame=1.0 if s == "fine" else 0.1)
        for s, d in dims.items()
    }


def frame_values(lengths: list[int], dims: dict[str, int] = DIMS) -> dict[str, np.ndarray]:
    """Features that encode where they come from, exactly in float16.

    Column 0 is ``100 * video + frame``, column 1 the stream's index, the rest column
    numbers; ``decode`` recovers (video, frame) from a read.
    """
    out = {}
    for k, (stream, dim) in enumerate(dims.items()):
        rows = []
        for v, length in enumerate(lengths):
            block = np.tile(np.arange(dim, dtype=np.float64), (length, 1))
            block[:, 0] = 100 * v + np.arange(length)
            block[:, 1] = k
            rows.append(block)
        out[stream] = np.concatenate(rows).astype(np.float16)
    return out


def decode(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(video, frame) encoded in column 0 of features from ``frame_values``."""
    code = np.asarray(features)[..., 0].astype(np.int64)
    return code // 100, code % 100


def write_store(
    path: Path,
    lengths: list[int] = (3, 5, 2, 4, 6),
    splits: list[str] | None = None,
    labels: list[list[int]] | None = None,
    classes: list[str] = ("a", "b", "c"),
    dims: dict[str, int] = DIMS,
    multi_label: bool = False,
) -> dict[str, np.ndarray]:
    """Write a valid store at ``path``; return its frame arrays."""
    lengths = list(lengths)
    n = len(lengths)
    splits = splits or (["train"] * (n - 2) + ["test"] * 2)
    if labels is None:
        labels = [[1 if c == v % len(classes) else 0 for c in range(len(classes))] for v in range(n)]
    values = frame_values(lengths, dims)
    with StoreWriter(
        path, name="hand", classes=list(classes), multi_label=multi_label, fps=1.0, streams=stream_specs(dims),
        video_ids=[f"v{i}" for i in range(n)], splits=splits, labels=np.asarray(labels, dtype=np.uint8),
        lengths=lengths,
    ) as writer:
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        for i in range(n):
            writer.write_video(i, {s: a[offsets[i] : offsets[i + 1]] for s, a in values.items()})
    return values


def replace_dataset(path: Path, name: str, data: np.ndarray, **kwargs) -> None:
    """Overwrite dataset ``name`` of ``path/features.h5`` (to plant a defect)."""
    with h5py.File(path / layout.FEATURES_FILE, "r+") as h5:
        del h5[name]
        h5.create_dataset(name, data=data, **kwargs)


def poison_split(source: Path, out: Path, split: str, seed: int = 0) -> Path:
    """A copy of the store ``source`` at ``out`` whose ``split`` is poisoned: its labels shuffled
    between its videos and every one of its frames NaN. Whatever reads that split gives other
    (or no) numbers; what never reads it gives the same. The manifest's header checksum is
    recomputed, so the copy is a valid store."""
    import json
    import shutil

    from datasets.store.checks import header_digest

    shutil.copytree(source, out)
    with h5py.File(out / layout.FEATURES_FILE, "r+") as f:
        splits = f[layout.SPLITS][:].astype(str)
        rows = np.flatnonzero(splits == split)
        offsets = f[layout.OFFSETS][:]
        labels = f[layout.LABELS][:]
        labels[rows] = labels[np.random.default_rng(seed).permutation(rows)]
        f[layout.LABELS][...] = labels
        for stream in f[layout.FEATURES_GROUP]:
            frames = f[layout.feature_dataset(stream)]
            for row in rows:
                frames[offsets[row] : offsets[row + 1]] = np.nan
        digest = header_digest(f[layout.VIDEO_IDS][:].astype(str), splits, labels, offsets)
    manifest_path = out / layout.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    manifest["checksums"][layout.HEADER_CHECKSUM] = digest
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return out


def blank_readme() -> str:
    """A README holding only the markers of every block ``python -m benchmark report`` generates."""
    from benchmark.presentation import report

    pairs = ((report.HEADLINE_START, report.HEADLINE_END), (report.CURVES_START, report.CURVES_END),
             (report.STREAM_START, report.STREAM_END), (report.IN_SHORT_START, report.IN_SHORT_END))
    return "".join(f"{start}\n{end}\n" for start, end in pairs)


def count_pair_reads(monkeypatch: Any) -> Counter:
    """How often each pair folder's state is read (checksums and re-scored numbers) from now on,
    by absolute path: a command that asks about a pair several times should read it once."""
    from benchmark import results

    reads: Counter = Counter()
    read = results._read_pair_state

    def counted(folder: Path) -> Any:
        reads[Path(folder).resolve()] += 1
        return read(folder)

    monkeypatch.setattr(results, "_read_pair_state", counted)
    return reads
