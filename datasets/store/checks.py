"""The checks a feature store must pass, shared by `datasets validate` and every loader.

Checks are split by price. ``header_problems`` looks only at the manifest and the small
per-video arrays (ids, splits, labels, offsets) and the shapes of the frame arrays: every
loader runs it on open. ``frame_problems`` scans frame values for NaN and Inf, which costs
a pass over the data: ``validate`` runs it over the whole store, and the feature bank runs
it on the split it loads (on the device, after the copy it makes anyway).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from datasets.common.errors import Problem
from datasets.store import layout
from datasets.store.manifest import Manifest

MAX_LISTED = 10  # ids named in one problem message before "... and N more"
REBUILD = "rebuild the store with `python -m datasets ingest` (or `synth`) from the source files"


def _list_ids(ids: list[str] | np.ndarray) -> str:
    ids = [str(i) for i in ids]
    shown = ", ".join(repr(i) for i in ids[:MAX_LISTED])
    if len(ids) > MAX_LISTED:
        shown += f", ... and {len(ids) - MAX_LISTED} more"
    return shown


@dataclass
class Header:
    """The per-video arrays of features.h5 and the shapes of its frame arrays."""

    video_ids: np.ndarray  # (N,) str
    splits: np.ndarray  # (N,) str
    labels: np.ndarray  # (N, C) uint8
    offsets: np.ndarray  # (N + 1,) int64
    stream_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    stream_dtypes: dict[str, str] = field(default_factory=dict)

    @property
    def num_videos(self) -> int:
        return len(self.video_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def header_digest(video_ids: ArrayLike, splits: ArrayLike, labels: ArrayLike, offsets: ArrayLike) -> str:
    """SHA-256 of the per-video arrays as the store holds them (manifest "checksums")."""
    digest = hashlib.sha256()
    for strings in (video_ids, splits):
        digest.update("\n".join(str(s) for s in np.asarray(strings).tolist()).encode("utf-8") + b"\0")
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    digest.update(repr(labels.shape).encode() + labels.tobytes())
    digest.update(np.ascontiguousarray(offsets, dtype="<i8").tobytes())
    return digest.hexdigest()


def header_problems(manifest: Manifest, header: Header, file: str) -> list[Problem]:
    """Every problem visible from the manifest and the header arrays (cheap: O(N + C))."""
    mfile = f"{file} vs {layout.MANIFEST_FILE}"
    problems = _shape_problems(header, file)
    if problems:
        return problems  # the remaining checks index these arrays by video
    for check in (_checksum_problems, _manifest_problems, _offset_problems, _id_and_split_problems,
                  _label_problems):
        problems += check(manifest, header, file, mfile)
    return problems


def _shape_problems(header: Header, file: str) -> list[Problem]:
    """The per-video arrays' shapes and the offsets' dtype."""
    problems: list[Problem] = []
    n = header.num_videos
    if header.splits.shape != (n,):
        problems.append(Problem(file, f"'{layout.SPLITS}' has shape {header.splits.shape}, expected ({n},)", REBUILD))
    if header.labels.ndim != 2 or header.labels.shape[0] != n:
        problems.append(Problem(file, f"'{layout.LABELS}' has shape {header.labels.shape}, expected ({n}, C)", REBUILD))
    if header.offsets.shape != (n + 1,):
        problems.append(
            Problem(file, f"'{layout.OFFSETS}' has shape {header.offsets.shape}, expected ({n + 1},) (N + 1)", REBUILD)
        )
    if not np.issubdtype(header.offsets.dtype, np.integer):
        problems.append(Problem(file, f"'{layout.OFFSETS}' must be int64, got {header.offsets.dtype}", REBUILD))
    return problems


def _checksum_problems(manifest: Manifest, header: Header, file: str, mfile: str) -> list[Problem]:
    """The header arrays against the checksum the writer recorded (older stores have none)."""
    problems: list[Problem] = []
    recorded = manifest.checksums.get(layout.HEADER_CHECKSUM)
    if recorded is not None and recorded != header_digest(header.video_ids, header.splits, header.labels,
                                                          header.offsets):
        problems.append(Problem(
            mfile, f"video ids, splits, labels or offsets differ from the checksum the writer recorded "
            f"(checksums.{layout.HEADER_CHECKSUM}): the store was changed after it was written",
            "rebuild the store, or restore features.h5 and manifest.json from the same build"))
    return problems


def _manifest_problems(manifest: Manifest, header: Header, file: str, mfile: str) -> list[Problem]:
    """The manifest against the file: counts, classes, streams, their shapes and dtypes."""
    problems: list[Problem] = []
    n = header.num_videos
    if manifest.num_videos != n:
        problems.append(Problem(mfile, f"manifest says {manifest.num_videos} videos, the file holds {n}", REBUILD))
    if header.labels.shape[1] != manifest.num_classes:
        problems.append(
            Problem(
                mfile,
                f"manifest lists {manifest.num_classes} classes, "
                f"'{layout.LABELS}' has {header.labels.shape[1]} columns",
                REBUILD,
            )
        )
    file_streams, manifest_streams = set(header.stream_shapes), set(manifest.streams)
    for missing in sorted(manifest_streams - file_streams):
        problems.append(Problem(mfile, f"stream {missing!r} is in the manifest but not in the file", REBUILD))
    for extra in sorted(file_streams - manifest_streams):
        problems.append(Problem(mfile, f"stream {extra!r} is in the file but not in the manifest", REBUILD))
    total = int(header.offsets[-1]) if n else 0
    for stream in sorted(file_streams & manifest_streams):
        shape, spec = header.stream_shapes[stream], manifest.streams[stream]
        where = f"{file} ({layout.feature_dataset(stream)})"
        if len(shape) != 2:
            problems.append(Problem(where, f"must be 2-D (frames, dim), got shape {shape}", REBUILD))
            continue
        if shape[1] != spec.dim:
            problems.append(Problem(where, f"feature dimension is {shape[1]}, the manifest says {spec.dim}", REBUILD))
        if shape[0] != total:
            problems.append(
                Problem(where, f"has {shape[0]} frame rows but offsets[-1] = {total}; offsets do not cover the array",
                        REBUILD)
            )
        if shape[0] != manifest.num_frames:
            problems.append(
                Problem(where, f"has {shape[0]} frame rows, the manifest says {manifest.num_frames}", REBUILD))
        dtype = header.stream_dtypes.get(stream)
        if dtype != layout.FEATURE_DTYPE:
            problems.append(Problem(where, f"dtype is {dtype}, expected {layout.FEATURE_DTYPE}", REBUILD))
    return problems


def _offset_problems(manifest: Manifest, header: Header, file: str, mfile: str) -> list[Problem]:
    """Offsets start at 0, never decrease, and give every video at least one frame."""
    problems: list[Problem] = []
    n = header.num_videos
    offsets = header.offsets
    if n and offsets[0] != 0:
        problems.append(Problem(file, f"offsets[0] is {offsets[0]}, must be 0", REBUILD))
    steps = np.diff(offsets)
    backwards = np.flatnonzero(steps < 0)
    if len(backwards):
        problems.append(
            Problem(
                file,
                f"offsets are not monotone: they decrease at {len(backwards)} video(s): "
                f"{_list_ids(header.video_ids[backwards])}",
                REBUILD,
            )
        )
    empty = np.flatnonzero(steps == 0)
    if len(empty):
        problems.append(
            Problem(
                file,
                f"{len(empty)} video(s) have zero frames: {_list_ids(header.video_ids[empty])}",
                "drop these videos from the annotations or re-extract their features, then rebuild the store",
            )
        )
    return problems


def _id_and_split_problems(manifest: Manifest, header: Header, file: str, mfile: str) -> list[Problem]:
    """Video ids unique and in one split; split sizes as the manifest says."""
    problems: list[Problem] = []
    counts = Counter(header.video_ids.tolist())
    repeated = [vid for vid, c in counts.items() if c > 1]
    if repeated:
        splits_of: dict[str, set[str]] = defaultdict(set)
        for vid, split in zip(header.video_ids.tolist(), header.splits.tolist()):
            if counts[vid] > 1:
                splits_of[vid].add(split)
        two_splits = [v for v in repeated if len(splits_of[v]) > 1]
        same_split = [v for v in repeated if len(splits_of[v]) == 1]
        if two_splits:
            problems.append(
                Problem(
                    file,
                    f"{len(two_splits)} video(s) are in two splits: "
                    + ", ".join(f"{v!r} ({'/'.join(sorted(splits_of[v]))})" for v in two_splits[:MAX_LISTED]),
                    "a video belongs to exactly one split; fix the annotation file and rebuild",
                )
            )
        if same_split:
            problems.append(
                Problem(file, f"{len(same_split)} duplicate video id(s): {_list_ids(same_split)}",
                        "make video ids unique and rebuild")
            )
    split_counts = Counter(header.splits.tolist())
    for split in sorted(set(split_counts) | set(manifest.splits)):
        have = split_counts.get(split, 0)
        spec = manifest.splits.get(split)
        if spec is None:
            problems.append(Problem(mfile, f"split {split!r} ({have} videos) is not listed in the manifest", REBUILD))
        elif spec.num_videos != have:
            problems.append(
                Problem(mfile, f"manifest says split {split!r} has {spec.num_videos} videos, the file has {have}",
                        REBUILD)
            )
    return problems


def _label_problems(manifest: Manifest, header: Header, file: str, mfile: str) -> list[Problem]:
    """Labels 0/1, present exactly in labelled splits, one per video unless multi-label."""
    problems: list[Problem] = []
    labels = header.labels
    if labels.size and labels.max(initial=0) > 1:
        bad = np.flatnonzero((labels > 1).any(axis=1))
        problems.append(
            Problem(
                file,
                f"labels must be multi-hot 0/1; {len(bad)} video(s) have other values: "
                f"{_list_ids(header.video_ids[bad])}",
                REBUILD,
            )
        )
    # Count labels, not label values: a value of 5 is reported above as not 0/1, not as "several labels".
    per_video = (labels > 0).astype(np.int64).sum(axis=1)
    for split, spec in manifest.splits.items():
        rows = header.splits == split
        if spec.labelled:
            unlabelled = np.flatnonzero(rows & (per_video == 0))
            if len(unlabelled):
                problems.append(
                    Problem(
                        file,
                        f"split {split!r} is labelled but {len(unlabelled)} video(s) have no label: "
                        f"{_list_ids(header.video_ids[unlabelled])}",
                        "add their labels to the annotation file (or move them to an unlabelled split) and rebuild",
                    )
                )
        else:
            labelled = np.flatnonzero(rows & (per_video > 0))
            if len(labelled):
                problems.append(
                    Problem(
                        mfile,
                        f"manifest marks split {split!r} unlabelled but {len(labelled)} of its video(s) have labels: "
                        f"{_list_ids(header.video_ids[labelled])}",
                        REBUILD,
                    )
                )
    if not manifest.multi_label:
        multi = np.flatnonzero(per_video > 1)
        if len(multi):
            problems.append(
                Problem(
                    file,
                    f"the manifest says single-label but {len(multi)} video(s) have several labels: "
                    f"{_list_ids(header.video_ids[multi])}",
                    "set \"multi_label\": true in the manifest if the dataset is multi-label, else fix the labels",
                )
            )
    return problems


def frame_problems(bad_rows: np.ndarray, offsets: np.ndarray, video_ids: np.ndarray, where: str) -> list[Problem]:
    """Turn frame rows holding NaN/Inf into one problem naming the videos they belong to."""
    if len(bad_rows) == 0:
        return []
    videos = np.unique(np.searchsorted(offsets, bad_rows, side="right") - 1)
    return [
        Problem(
            where,
            f"{len(bad_rows)} frame(s) hold NaN or Inf, in {len(videos)} video(s): {_list_ids(video_ids[videos])}",
            "re-extract the features of these videos (check the extractor's normalisation), then rebuild the store",
        )
    ]
