"""The manifest: the JSON half of a feature store, parsed into typed records.

The manifest says what the arrays in features.h5 mean (classes, streams, backbones, costs)
and where they came from. Parsing collects every problem it finds instead of stopping at
the first, so ``python -m datasets validate`` can list them all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from datasets.common.atomic import atomic_write_json
from datasets.common.errors import Problem, StoreValidationError
from datasets.common.paths import name_problem
from datasets.store import layout


@dataclass(frozen=True)
class StreamSpec:
    """One feature stream: which backbone produced it, at what resolution and cost.

    ``gmacs_per_frame`` is the backbone's multiply-accumulates per frame in units of 1e9
    (the field calls these "GFLOPs"); it is counted with ptflops, see datasets/extraction/backbones.py.
    ``provenance`` records where the numbers came from: the synthetic generator and its
    parameters, or the extractor with its weights file (or ``null`` for random weights).
    """

    backbone: str
    resolution: int
    dim: int
    gmacs_per_frame: float
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitSpec:
    """One split: how many videos it holds and whether they carry labels."""

    num_videos: int
    labelled: bool


@dataclass(frozen=True)
class Manifest:
    """Typed view of manifest.json."""

    name: str
    classes: tuple[str, ...]
    multi_label: bool
    fps: float
    streams: dict[str, StreamSpec]
    splits: dict[str, SplitSpec]
    num_videos: int
    num_frames: int
    provenance: dict[str, Any] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # layout.HEADER_CHECKSUM, set by the writer
    format: str = layout.FORMAT_NAME
    format_version: int = layout.FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data

    def save(self, directory: Path | str) -> Path:
        """Write ``directory/manifest.json`` atomically."""
        path = Path(directory) / layout.MANIFEST_FILE
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, directory: Path | str) -> Manifest:
        """Read and parse ``directory/manifest.json``; raise with every problem found."""
        manifest, problems = load_manifest(directory)
        if problems or manifest is None:
            raise StoreValidationError(directory, problems)
        return manifest


def load_manifest(directory: Path | str) -> tuple[Manifest | None, list[Problem]]:
    """Read ``directory/manifest.json``; return the manifest (if parseable) and problems."""
    directory = Path(directory)
    path = directory / layout.MANIFEST_FILE
    if not directory.is_dir():
        return None, [
            Problem(
                str(directory),
                "is not a directory; a feature store is a directory with "
                f"{layout.MANIFEST_FILE} and {layout.FEATURES_FILE}",
                "pass the store directory (create one with `python -m datasets synth` "
                "or `python -m datasets ingest`)",
            )
        ]
    if not path.is_file():
        return None, [
            Problem(
                str(path),
                "missing: this directory is not a feature store",
                "point at a directory written by `python -m datasets synth` or `ingest`",
            )
        ]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [
            Problem(str(path), f"is not valid JSON ({exc})", "restore it or rebuild the store")
        ]
    return parse_manifest(data, str(path))


def _require(
    data: dict[str, Any], key: str, kind: type | tuple[type, ...], file: str, problems: list[Problem]
) -> Any:
    if key not in data:
        problems.append(Problem(file, f"missing required key {key!r}", "see docs/feature-store.md"))
        return None
    value = data[key]
    # bool is an int in Python; do not let True pass for a count.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        value_ok = False
    else:
        value_ok = isinstance(value, kind)
    if not value_ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        problems.append(
            Problem(file, f"key {key!r} must be {names}, got {type(value).__name__}", "see docs/feature-store.md")
        )
        return None
    return value


def parse_manifest(data: Any, file: str) -> tuple[Manifest | None, list[Problem]]:
    """Parse a manifest dictionary; collect every problem instead of raising."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return None, [Problem(file, "top level must be a JSON object", "see docs/feature-store.md")]
    unknown = sorted(set(data) - {f.name for f in fields(Manifest)})
    if unknown:
        problems.append(Problem(file, f"unknown key(s) {unknown}", "remove them or check their spelling "
                                                                   "(docs/feature-store.md lists every key)"))
    fmt = data.get("format")
    if fmt != layout.FORMAT_NAME:
        problems.append(
            Problem(file, f"'format' is {fmt!r}, expected {layout.FORMAT_NAME!r}", "see docs/feature-store.md")
        )
    version = data.get("format_version")
    if version != layout.FORMAT_VERSION:
        problems.append(
            Problem(
                file,
                f"'format_version' is {version!r}; this code reads version {layout.FORMAT_VERSION}",
                "rebuild the store with this version of the suite",
            )
        )
    name = _require(data, "name", str, file, problems)
    if isinstance(name, str) and name_problem(name):
        problems.append(Problem(file, f"'name' {name!r} cannot name a results folder: {name_problem(name)}",
                                "give the store a plain name such as 'fcvid' (letters, digits, '-', '_', '.')"))
    classes = _require(data, "classes", list, file, problems)
    multi_label = _require(data, "multi_label", bool, file, problems)
    fps = _require(data, "fps", (int, float), file, problems)
    num_videos = _require(data, "num_videos", int, file, problems)
    num_frames = _require(data, "num_frames", int, file, problems)
    streams_raw = _require(data, "streams", dict, file, problems)
    splits_raw = _require(data, "splits", dict, file, problems)
    provenance = data.get("provenance", {})
    checksums = data.get("checksums", {})
    if not isinstance(checksums, dict) or not all(isinstance(v, str) for v in checksums.values()):
        problems.append(Problem(file, "'checksums' must be an object of strings", "rebuild the store"))

    problems += _class_and_fps_problems(classes, fps, file)
    streams = _parse_streams(streams_raw, file, problems)
    splits = _parse_splits(splits_raw, file, problems)

    if problems:
        return None, problems
    manifest = Manifest(
        name=name,
        classes=tuple(classes),
        multi_label=multi_label,
        fps=float(fps),
        streams=streams,
        splits=splits,
        num_videos=num_videos,
        num_frames=num_frames,
        provenance=dict(provenance) if isinstance(provenance, dict) else {"value": provenance},
        checksums=dict(checksums),
    )
    return manifest, []


def _class_and_fps_problems(classes: list | None, fps: float | None, file: str) -> list[Problem]:
    """Class names non-empty, unique and at least one; a positive, finite frame rate."""
    problems: list[Problem] = []
    if classes is not None:
        if not all(isinstance(c, str) and c for c in classes):
            problems.append(Problem(file, "'classes' must be non-empty strings", "fix the class list"))
        elif len(set(classes)) != len(classes):
            dupes = sorted({c for c in classes if classes.count(c) > 1})
            problems.append(Problem(file, f"'classes' has duplicates: {dupes}", "make class names unique"))
        elif not classes:
            problems.append(Problem(file, "'classes' is empty", "a store needs at least one class"))
    if fps is not None and (not math.isfinite(fps) or fps <= 0):
        problems.append(Problem(file, f"'fps' must be a positive number, got {fps}", "set the frame rate"))
    return problems


def _parse_streams(streams_raw: dict | None, file: str, problems: list[Problem]) -> dict[str, StreamSpec]:
    """The stream records (both required streams present, each complete); problems appended."""
    streams: dict[str, StreamSpec] = {}
    if streams_raw is not None:
        for required in layout.REQUIRED_STREAMS:
            if required not in streams_raw:
                problems.append(
                    Problem(file, f"stream {required!r} is missing from 'streams'", "every store needs coarse and fine")
                )
        for sname, raw, where in _records(streams_raw, "streams", file, problems, StreamSpec):
            sub: list[Problem] = []
            backbone = _require(raw, "backbone", str, where, sub)
            resolution = _require(raw, "resolution", int, where, sub)
            dim = _require(raw, "dim", int, where, sub)
            gmacs = _require(raw, "gmacs_per_frame", (int, float), where, sub)
            prov = raw.get("provenance", {})
            if dim is not None and dim <= 0:
                sub.append(Problem(where, f"'dim' must be positive, got {dim}", "fix the feature dimension"))
            if gmacs is not None and (not math.isfinite(gmacs) or gmacs < 0):
                sub.append(Problem(where, f"'gmacs_per_frame' must be >= 0, got {gmacs}", "recount the cost"))
            problems.extend(sub)
            if not sub:
                streams[sname] = StreamSpec(backbone, resolution, dim, float(gmacs), dict(prov))
    return streams


def _parse_splits(splits_raw: dict | None, file: str, problems: list[Problem]) -> dict[str, SplitSpec]:
    """The split records (at least one, each complete); problems appended."""
    splits: dict[str, SplitSpec] = {}
    if splits_raw is not None:
        if not splits_raw:
            problems.append(Problem(file, "'splits' is empty", "list every split with its video count"))
        for sname, raw, where in _records(splits_raw, "splits", file, problems, SplitSpec):
            sub: list[Problem] = []
            count = _require(raw, "num_videos", int, where, sub)
            labelled = _require(raw, "labelled", bool, where, sub)
            if count is not None and count < 1:
                sub.append(Problem(where, f"the split has {count} videos", "leave an empty split out of 'splits'"))
            problems.extend(sub)
            if not sub:
                splits[sname] = SplitSpec(count, labelled)
    return splits


def _records(section: dict, name: str, file: str, problems: list[Problem],
             record: type) -> Iterator[tuple[str, dict, str]]:
    """Each entry of the manifest's ``name`` section that is an object, with where it is; any
    other entry, or a key the ``record`` dataclass does not have, is a problem."""
    for key, raw in section.items():
        where = f"{file} ({name}.{key})"
        if not isinstance(raw, dict):
            problems.append(Problem(where, "must be an object", "see docs/feature-store.md"))
            continue
        unknown = sorted(set(raw) - {f.name for f in fields(record)})
        if unknown:
            problems.append(Problem(where, f"unknown key(s) {unknown}", "remove them or check their spelling"))
        yield key, raw, where
