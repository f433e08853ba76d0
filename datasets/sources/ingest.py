"""Ingest: build a feature store from per-video features and an annotation file.

Input layout (what most research code already has): per stream, either one ``<video_id>.npy`` of
shape (T, D) per video in one directory, or one HDF5 file with one (T, D) dataset per video (at
the top level, or alone in a group, named by the video id); for ActivityNet, ``v_<id>`` as its
released features name them, too. The annotation file is in one of the formats of
datasets/sources/annotations.py.

Nothing is dropped silently. Every listed video without a feature file, every feature
file nobody listed, every video whose coarse and fine frame counts differ (or whose file
is unreadable or badly shaped), and every unlabelled video of a labelled split is counted
and named in a JSON report written next to the store (``<out>.ingest-report.json``). If
there is any, ingest fails, unless ``allow_missing`` is set: then those videos are left
out of the store, and the report says which.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datasets.common.atomic import atomic_write_json
from datasets.common.errors import IngestError, StoreError
from datasets.common.progress import progress_bar
from datasets.extraction.backbones import (
    COST_BACKEND,
    PAPER_STREAMS,
    BackboneSpec,
    count_gmacs_per_frame,
    is_known,
)
from datasets.sources.annotations import Annotations, read_annotations
from datasets.store.manifest import StreamSpec
from datasets.store.writer import StoreWriter

log = logging.getLogger(__name__)

STREAMS = ("coarse", "fine")
# Canonical split order in a store: the usual names first, others alphabetically.
SPLIT_ORDER = ("train", "training", "val", "validation", "test", "testing")

# Report categories that make ingest fail unless --allow-missing.
CATEGORIES = {
    "missing_coarse": "listed in the annotations but no coarse .npy file",
    "missing_fine": "listed in the annotations but no fine .npy file",
    "not_listed": "feature file(s) present but the video is not in the annotations",
    "frame_mismatch": "coarse and fine frame counts differ",
    "unreadable": "a feature file cannot be read as a .npy array",
    "bad_shape": "a feature file is not (T, D) with T > 0 and the stream's D",
    "unlabelled_in_labelled_split": "no label, in a split where other videos have labels",
}


@dataclass
class IngestReport:
    """Everything ingest found, by category, plus what it kept."""

    annotations: str
    out: str
    allow_missing: bool
    problems: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})
    kept: int = 0
    listed: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    classes: int = 0

    def add(self, category: str, video_id: str, **detail: Any) -> None:
        self.problems[category].append({"video_id": video_id, **detail})

    @property
    def problem_count(self) -> int:
        return sum(len(v) for v in self.problems.values())

    def excluded_ids(self) -> set[str]:
        return {p["video_id"] for v in self.problems.values() for p in v}

    def summary(self) -> str:
        lines = [f"annotations list {self.listed} videos; {self.kept} kept"]
        for category, items in self.problems.items():
            if items:
                ids = ", ".join(repr(p["video_id"]) for p in items[:5])
                more = f", ... and {len(items) - 5} more" if len(items) > 5 else ""
                lines.append(f"  {category}: {len(items)} ({CATEGORIES[category]}): {ids}{more}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotations": self.annotations,
            "out": self.out,
            "allow_missing": self.allow_missing,
            "listed": self.listed,
            "kept": self.kept,
            "splits": self.splits,
            "classes": self.classes,
            "counts": {c: len(v) for c, v in self.problems.items()},
            "meaning": CATEGORIES,
            "problems": self.problems,
        }


def report_path(out: Path) -> Path:
    """Where ingest writes its report: next to the store, ``<out>.ingest-report.json``."""
    return out.with_name(out.name + ".ingest-report.json")


#: The prefix ActivityNet's video files and most of its released features carry before the YouTube id
#: (``v_<id>.npy``), while the official JSON's keys do not; the extractor finds videos under both names.
ACTIVITYNET_PREFIX = "v_"
#: File suffixes read as one HDF5 file of every video's features of a stream.
HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class Features:
    """Where one video's features of one stream are: a ``.npy`` file, or a dataset of an HDF5 file
    (opened once per stream for the whole ingest, not once per video)."""

    path: Path
    key: str | None = None  # the HDF5 dataset's name; None: a .npy file
    file: Any = field(default=None, compare=False, repr=False)  # the open HDF5 file holding ``key``

    def __str__(self) -> str:
        return str(self.path) if self.key is None else f"{self.path}:{self.key}"

    @property
    def name(self) -> str:
        """As the source names it: the file's name in its directory, or the dataset's in its file."""
        return self.path.name if self.key is None else self.key

    def shape(self) -> tuple[tuple[int, ...], np.dtype]:
        """Shape and dtype, from the header only (no frame is read)."""
        array = np.load(self.path, mmap_mode="r", allow_pickle=False) if self.key is None else self.file[self.key]
        return tuple(array.shape), array.dtype

    def load(self) -> np.ndarray:
        if self.key is None:
            return np.load(self.path, allow_pickle=False)
        return np.asarray(self.file[self.key][()])


def _hdf5_entries(path: Path, stream: str, opened: ExitStack) -> dict[str, Features]:
    """An HDF5 file's videos: each top-level dataset is one (named by its video id), or each top-level
    group holding exactly one dataset (as ActivityNet's released C3D features are laid out). The file
    stays open until ``opened`` closes."""
    import h5py

    try:
        f = opened.enter_context(h5py.File(path, "r"))
    except OSError as exc:
        raise IngestError(f"--{stream} {path}: not a readable HDF5 file ({exc})") from exc
    entries: dict[str, Features] = {}
    for name, item in f.items():
        if isinstance(item, h5py.Dataset):
            entries[name] = Features(path, name, f)
            continue
        inner = [k for k, v in item.items() if isinstance(v, h5py.Dataset)]
        if len(inner) != 1:
            raise IngestError(f"--{stream} {path}: group {name!r} holds {len(inner)} datasets ({inner[:5]}); "
                              "ingest reads one (T, D) dataset per video, at the top level or alone in a group "
                              "named by the video id. Write one file per stream with one dataset per video")
        entries[name] = Features(path, f"{name}/{inner[0]}", f)
    return entries


def _feature_files(source: Path, stream: str, fmt: str, listed: set[str], opened: ExitStack) -> dict[str, Features]:
    """A stream's features by video id: a directory of ``<video_id>.npy`` files, or one HDF5 file (one
    dataset per video). For ActivityNet, ``v_<id>`` is the listed video ``<id>`` (as ``<id>`` is); a
    source holding both names of one video is refused, since either could be the one meant."""
    if source.is_file() and source.suffix.lower() in HDF5_SUFFIXES:
        found = _hdf5_entries(source, stream, opened)
    elif source.is_dir():
        found = {p.stem: Features(p) for p in source.iterdir() if p.suffix == ".npy" and p.is_file()}
    else:
        raise IngestError(f"--{stream} {source}: neither a directory of <video_id>.npy files nor an HDF5 file "
                          f"({', '.join(HDF5_SUFFIXES)}) of one dataset per video")
    if fmt != "activitynet":
        return found
    by_video: dict[str, Features] = {}
    for name, features in sorted(found.items()):
        bare = name[len(ACTIVITYNET_PREFIX):] if name.startswith(ACTIVITYNET_PREFIX) else None
        vid = bare if bare is not None and bare in listed and name not in listed else name
        if vid in by_video:
            raise IngestError(f"--{stream} {source}: both {by_video[vid].name} and {features.name} are features of "
                              f"video {vid!r}; keep one of them")
        by_video[vid] = features
    return by_video


def _split_key(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


#: Where a stream's provenance keeps a declared cost (the manifest's, and the table's caption reads it).
DECLARED_KEY = "declared_cost"


@dataclass(frozen=True)
class DeclaredCost:
    """A per-frame cost the suite cannot count (a backbone it cannot build), as its source reports
    it: GMACs (multiply-accumulates / 1e9, what the field calls GFLOPs) per frame, and where the
    number comes from (a paper's table, a model card), recorded in the manifest and the caption."""

    gmacs: float
    source: str


def check_declared(backbones: dict[str, BackboneSpec], declared: dict[str, DeclaredCost]) -> None:
    """Every stream's cost is counted or declared, never both: a backbone the suite can build is
    counted (the count is what every run charges); one it cannot must be declared."""
    for stream, spec in backbones.items():
        cost = declared.get(stream)
        if cost is not None:
            if is_known(spec.name):
                raise IngestError(f"--{stream}-gmacs: {spec.name} is a model the suite builds and counts "
                                  f"({count_gmacs_per_frame(spec.name, spec.resolution):.3f} GMACs per frame at "
                                  f"{spec.resolution}); declare a cost only for a backbone it cannot count")
            if not math.isfinite(cost.gmacs) or cost.gmacs <= 0:
                raise IngestError(f"--{stream}-gmacs {cost.gmacs}: must be a positive number of GMACs per frame")
            if not cost.source.strip():
                raise IngestError(f"--{stream}-gmacs: say where the number comes from with --cost-source, e.g. "
                                  "'CLIP ViT-B/16, Radford et al. 2021, Table 18'")
        elif not is_known(spec.name):
            raise IngestError(f"--{stream}-backbone {spec.name}@{spec.resolution}: not a model the suite can build "
                              f"to count its cost; declare it: --{stream}-gmacs GMACS_PER_FRAME --cost-source "
                              "'where the number comes from'")


def parse_backbone(text: str) -> BackboneSpec:
    """``name@resolution`` (e.g. ``resnet101@224``) into a spec (feature dim from the files)."""
    name, _, res = text.partition("@")
    if not name or not res.isdigit():
        raise IngestError(f"backbone {text!r} must look like NAME@RESOLUTION, e.g. resnet101@224")
    return BackboneSpec(name, int(res), 0)


def ingest(
    annotations_path: Path | str | Sequence[Path | str],
    fmt: str,
    coarse_dir: Path | str,
    fine_dir: Path | str,
    out: Path | str,
    *,
    fps: float = 1.0,
    name: str | None = None,
    allow_missing: bool = False,
    overwrite: bool = False,
    backbones: dict[str, BackboneSpec] | None = None,
    declared: dict[str, DeclaredCost] | None = None,
    show_progress: bool = True,
) -> IngestReport:
    """Build a store at ``out``; return the report (also written next to the store).

    ``declared``: per stream, the per-frame cost of a backbone the suite cannot build and count
    (CLIP, I3D, a lab's network), as its paper reports it (``DeclaredCost``)."""
    out = Path(out)
    if fps <= 0:
        raise IngestError(f"--fps must be positive, got {fps}")
    declared = dict(declared or {})
    check_declared({**PAPER_STREAMS, **(backbones or {})}, declared)
    if out.exists() and not overwrite:
        raise IngestError(f"{out} already exists; refusing to overwrite it (pass --overwrite to replace it)")
    backbones = {**PAPER_STREAMS, **(backbones or {})}
    annotations: Annotations = read_annotations(annotations_path, fmt)
    paths = [annotations_path] if isinstance(annotations_path, (str, Path)) else list(annotations_path)
    dirs = {"coarse": Path(coarse_dir), "fine": Path(fine_dir)}
    listed = {v.video_id for v in annotations.videos}
    with ExitStack() as opened:  # the HDF5 sources, open for the whole ingest
        files = {s: _feature_files(d, s, fmt, listed, opened) for s, d in dirs.items()}
        report = IngestReport(annotations.source, str(out), allow_missing, listed=len(annotations.videos))

        for vid in sorted((set(files["coarse"]) | set(files["fine"])) - listed):
            report.add("not_listed", vid, streams=[s for s in STREAMS if vid in files[s]])

        shapes, dims = _feature_shapes(annotations, files, dirs, report, out)
        classes = annotations.class_names()
        class_index = {c: i for i, c in enumerate(classes)}
        labelled_splits = _check_labels(annotations, class_index, report)
        excluded = report.excluded_ids()
        kept = [v for v in annotations.videos if v.video_id not in excluded]
        kept.sort(key=lambda v: _split_key(v.split))  # stable: annotation order within a split
        report.kept = len(kept)
        report.splits = dict(Counter(v.split for v in kept))
        report.classes = len(classes)
        atomic_write_json(report_path(out), report.to_dict())
        if report.problem_count and not allow_missing:
            raise IngestError(
                f"ingest found {report.problem_count} problem(s) and wrote no store:\n{report.summary()}\n"
                f"Full list: {report_path(out)}. Fix the inputs, or pass --allow-missing to leave these videos out."
            )
        if report.problem_count:
            # The list itself is the report's (printed by the command line once, and in the JSON).
            log.warning("leaving %d video(s) out (--allow-missing); the list: %s", len(excluded & listed),
                        report_path(out))
        if not kept:
            raise IngestError(f"no video is left to ingest; see {report_path(out)}")

        labels = np.zeros((len(kept), len(classes)), dtype=np.uint8)
        for row, video in enumerate(kept):
            labels[row, [class_index[n] for n in video.labels]] = 1
        streams = _stream_specs(backbones, dims, dirs, declared)
        nonfinite: list[str] = []
        with StoreWriter(
            out,
            name=name or out.name,
            classes=classes,
            multi_label=any(len(v.labels) > 1 for v in kept),
            fps=fps,
            streams=streams,
            video_ids=[v.video_id for v in kept],
            splits=[v.split for v in kept],
            labels=labels,
            lengths=[shapes["coarse"][v.video_id][0] for v in kept],
            labelled_splits={s: s in labelled_splits for s in report.splits},
            provenance={
                "kind": "ingest",
                "annotations": [str(Path(p).resolve()) for p in paths],
                "format": fmt,
                "report": str(report_path(out).resolve()),
                "left_out": len(excluded & listed),
            },
            overwrite=overwrite,
        ) as writer:
            with progress_bar(total=len(kept), desc="ingest", unit="video", enable=show_progress) as bar:
                for row, video in enumerate(kept):
                    arrays = {s: files[s][video.video_id].load() for s in STREAMS}
                    try:
                        writer.write_video(row, arrays)
                    except StoreError as exc:
                        nonfinite.append(str(exc))
                    bar.update(1)
            if nonfinite:
                raise IngestError(
                    f"{len(nonfinite)} video(s) have features that cannot be stored; no store was written:\n  "
                    + "\n  ".join(nonfinite[:10])
                    + ("\n  ..." if len(nonfinite) > 10 else "")
                    + "\nFix or re-extract these files (or remove the videos from the annotations) and ingest again."
                )
        return report


def _feature_shapes(annotations: Annotations, files: dict[str, dict[str, Features]], dirs: dict[str, Path],
                    report: IngestReport, out: Path) -> tuple[dict[str, dict[str, tuple[int, ...]]], dict[str, int]]:
    """Every listed video's (frames, dim) per stream, from headers only (no frame read), and each
    stream's dimension (the most common); every file that is missing,
    unreadable, of a wrong shape, or whose streams disagree on the frame count goes into ``report``."""
    shapes: dict[str, dict[str, tuple[int, ...]]] = {s: {} for s in STREAMS}
    for video in annotations.videos:
        for stream in STREAMS:
            path = files[stream].get(video.video_id)
            if path is None:
                expected = (f"{dirs[stream]}:{video.video_id}" if dirs[stream].is_file() else
                            str(dirs[stream] / f"{video.video_id}.npy"))
                report.add(f"missing_{stream}", video.video_id, expected=expected)
                continue
            try:
                shape, dtype = path.shape()
            except (OSError, ValueError, KeyError) as exc:
                report.add("unreadable", video.video_id, file=str(path), error=str(exc))
                continue
            if len(shape) != 2 or shape[0] == 0 or not np.issubdtype(dtype, np.floating):
                report.add("bad_shape", video.video_id, file=str(path), shape=list(shape), dtype=str(dtype))
                continue
            shapes[stream][video.video_id] = shape
    dims: dict[str, int] = {}
    for stream in STREAMS:
        counts = Counter(shape[1] for shape in shapes[stream].values())
        if not counts:
            raise IngestError(
                f"no readable {stream} feature file matches the annotations ({dirs[stream]}); "
                f"see {report_path(out)}"
            )
        dims[stream] = counts.most_common(1)[0][0]
        for vid, shape in list(shapes[stream].items()):
            if shape[1] != dims[stream]:
                report.add("bad_shape", vid, file=str(files[stream][vid]), shape=list(shape),
                           expected_dim=dims[stream])
                del shapes[stream][vid]
    for video in annotations.videos:
        vid = video.video_id
        if vid in shapes["coarse"] and vid in shapes["fine"] and shapes["coarse"][vid][0] != shapes["fine"][vid][0]:
            report.add("frame_mismatch", vid, coarse_frames=shapes["coarse"][vid][0],
                       fine_frames=shapes["fine"][vid][0])
    return shapes, dims


def _check_labels(annotations: Annotations, class_index: dict[str, int], report: IngestReport) -> set[str]:
    """The labelled splits; an unknown label is an error, an unlabelled video in a labelled split
    goes into ``report``."""
    labelled_splits = {v.split for v in annotations.videos if v.labels}
    for video in annotations.videos:
        unknown = [n for n in video.labels if n not in class_index]
        if unknown:
            raise IngestError(
                f"{annotations.source}: video {video.video_id!r} has labels {unknown} not in the class list")
        if video.split in labelled_splits and not video.labels:
            report.add("unlabelled_in_labelled_split", video.video_id, split=video.split)
    return labelled_splits


def _stream_specs(backbones: dict[str, BackboneSpec], dims: dict[str, int], dirs: dict[str, Path],
                  declared: dict[str, DeclaredCost] | None = None) -> dict[str, StreamSpec]:
    """The manifest's stream records: declared backbone, measured dimension, counted (or, for a
    backbone the suite cannot build, declared) cost."""
    declared = declared or {}
    streams = {}
    known = {b.name: b.feature_dim for b in PAPER_STREAMS.values()}
    for stream in STREAMS:
        spec = backbones[stream]
        expected = spec.feature_dim or known.get(spec.name, 0)
        mismatch = {}
        if expected and dims[stream] != expected:
            # Features of another network (or reduced ones) under this backbone's name: the cost
            # charged is the declared backbone's, which these features may not have come from.
            log.warning("the %s features are %d-d, but %s gives %d-d features: they cannot be %s's own; their cost "
                        "is charged as %s@%d's, as declared (pass the backbone they came from with --%s-backbone)",
                        stream, dims[stream], spec.name, expected, spec.name, spec.name, spec.resolution, stream)
            mismatch = {"width_mismatch": f"{dims[stream]}-d features, {spec.name} gives {expected}-d"}
        cost = declared.get(stream)
        streams[stream] = StreamSpec(
            backbone=spec.name,
            resolution=spec.resolution,
            dim=dims[stream],
            gmacs_per_frame=cost.gmacs if cost else count_gmacs_per_frame(spec.name, spec.resolution),
            provenance={
                "kind": "ingest",
                "source": str(dirs[stream].resolve()),
                "backbone": f"{spec.name}@{spec.resolution} as declared to ingest (not verified from the files)",
                "cost": (f"declared: {cost.gmacs:g} GMACs per frame ({cost.source}); not counted" if cost else
                         f"ptflops backend={COST_BACKEND} on torchvision {spec.name} at {spec.resolution}"),
                **({DECLARED_KEY: {"gmacs": cost.gmacs, "source": cost.source}} if cost else {}),
                **mismatch,
            },
        )
    return streams
