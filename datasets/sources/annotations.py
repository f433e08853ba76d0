"""Annotation readers: one small function per format, all producing the same records.

A reader takes the file(s) the user gave to ``--annotations`` and returns ``Annotations``;
ingest (datasets/sources/ingest.py) and the extractor (datasets/extraction/pipeline.py) do the rest. A new
format is one function with ``@register_annotation_format("name", files=(...))``, where
``files`` names the files it takes, in order.

* ``csv``: the header ``video_id,split,labels``; ``labels`` holds one or more class names
  separated by ``|`` and is empty for unlabelled (test) videos.
* ``activitynet``: the official ActivityNet v1.3 JSON (``activity_net.v1-3.min.json``): see
  ``read_activitynet`` for how labels and class indices are derived.
* ``fcvid``: three files, row-aligned: the split file, the N x 239 label matrix and the class
  names; see ``read_fcvid``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets.common.errors import StoreError, UsageError

LABEL_SEPARATOR = "|"
CSV_HEADER = ("video_id", "split", "labels")


@dataclass(frozen=True)
class VideoAnnotation:
    """One annotated video: its id, its split and its class names (empty: unlabelled)."""

    video_id: str
    split: str
    labels: tuple[str, ...]
    path: str | None = None  # where the video file is, relative to the videos folder, if the format says


@dataclass
class Annotations:
    """What a reader returns.

    ``classes`` is the class list in index order when the format defines one (FCVID's
    class file, ActivityNet's taxonomy); None means "the sorted set of names seen".
    """

    videos: list[VideoAnnotation]
    source: str
    classes: list[str] | None = None

    def class_names(self) -> list[str]:
        if self.classes is not None:
            return list(self.classes)
        return sorted({name for video in self.videos for name in video.labels})


class AnnotationError(StoreError):
    """An annotation file cannot be read; the message names the file and line."""


Reader = Callable[..., Annotations]  # called with one Path per entry of its ``files``
READERS: dict[str, Reader] = {}
FILES: dict[str, tuple[str, ...]] = {}


def register_annotation_format(name: str, files: tuple[str, ...] = ("annotation file",)) -> Callable[[Reader], Reader]:
    """Register ``reader`` as the reader of ``--format name``; ``files`` describes its inputs."""

    def decorate(reader: Reader) -> Reader:
        if name in READERS:
            raise UsageError(f"annotation format {name!r} is registered twice")
        READERS[name] = reader
        FILES[name] = files
        return reader

    return decorate


def describe_formats() -> str:
    """One line per format: its name and the files it takes (for --help)."""
    return "; ".join(f"{name}: {' + '.join(FILES[name])}" for name in sorted(READERS))


def read_annotations(paths: Path | str | Sequence[Path | str], fmt: str) -> Annotations:
    """Read ``paths`` with the reader of format ``fmt`` and check ids are unique."""
    if fmt not in READERS:
        raise AnnotationError(f"unknown annotation format {fmt!r}; known formats: {sorted(READERS)}")
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    expected = FILES[fmt]
    if len(paths) != len(expected):
        raise AnnotationError(
            f"--format {fmt} takes {len(expected)} annotation file(s) ({', '.join(expected)}), got {len(paths)}: "
            + " ".join(map(str, paths))
        )
    for path, what in zip(paths, expected):
        if not path.exists():
            raise AnnotationError(f"{path}: {what} not found")
    annotations = READERS[fmt](*paths)
    path = paths[0]
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for video in annotations.videos:
        if video.video_id in seen:
            other = seen[video.video_id]
            clashes.append(
                f"{video.video_id!r} ({other} and {video.split})" if other != video.split
                else f"{video.video_id!r} (twice in {other})"
            )
        seen[video.video_id] = video.split
    if clashes:
        raise AnnotationError(
            f"{path}: {len(clashes)} video id(s) appear more than once (a video belongs to exactly one split): "
            + ", ".join(clashes[:10])
            + (f", ... and {len(clashes) - 10} more" if len(clashes) > 10 else "")
        )
    return annotations


@register_annotation_format("csv")
def read_csv(path: Path) -> Annotations:
    """``video_id,split,labels`` with ``|``-separated class names (empty: unlabelled)."""
    videos: list[VideoAnnotation] = []
    # utf-8-sig: a byte-order mark (Excel) is read, not refused
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
            raise AnnotationError(
                f"{path}: line 1 must be the header {','.join(CSV_HEADER)!r}, got {','.join(header or [])!r}"
            )
        for line, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 3:
                raise AnnotationError(
                    f"{path}:{line}: expected 3 columns (video_id,split,labels), got {len(row)}: {row}")
            video_id, split, labels = (cell.strip() for cell in row)
            if not video_id or not split:
                raise AnnotationError(f"{path}:{line}: video_id and split must not be empty")
            names = tuple(n.strip() for n in labels.split(LABEL_SEPARATOR)) if labels else ()
            if any(not n for n in names):
                raise AnnotationError(f"{path}:{line}: empty class name in labels {labels!r}")
            if len(set(names)) != len(names):
                raise AnnotationError(f"{path}:{line}: class listed twice in labels {labels!r}")
            videos.append(VideoAnnotation(video_id, split, names))
    if not videos:
        raise AnnotationError(f"{path}: no videos listed")
    return Annotations(videos=videos, source=str(path))




def _leaf_classes(path: Path, taxonomy: object) -> list[str]:
    """ActivityNet's classes: the taxonomy's leaves (nodes nobody names as parent), sorted."""
    if not isinstance(taxonomy, list) or not all(isinstance(n, dict) and "nodeName" in n for n in taxonomy):
        raise AnnotationError(f"{path}: 'taxonomy' must be a list of {{nodeName, parentName, ...}} objects")
    parents = {n.get("parentName") for n in taxonomy}
    return sorted({n["nodeName"] for n in taxonomy if n["nodeName"] not in parents})


@register_annotation_format("activitynet", files=("ActivityNet JSON (e.g. activity_net.v1-3.min.json)",))
def read_activitynet(path: Path) -> Annotations:
    """ActivityNet v1.3: ``{"version", "taxonomy", "database": {youtube_id: entry}}``.

    Video ids are the database keys (YouTube ids, no ``v_`` prefix); the split is the
    entry's ``subset``. A video's labels are the distinct ``label`` names of its
    ``annotations`` segments (several segments of one label give that label once; several
    labels make it multi-label). ``testing`` videos carry no labels and become an
    unlabelled split. Class index order: the taxonomy's leaf names, sorted alphabetically
    (the 200 classes); without a taxonomy, the sorted names seen in the annotations.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(
            f"{path}: not valid JSON ({exc}); expected the ActivityNet v1.3 annotation file") from None
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise AnnotationError(f"{path}: no 'database' object; expected ActivityNet's {{version, taxonomy, database}}")
    classes = _leaf_classes(path, data["taxonomy"]) if "taxonomy" in data else None
    known = set(classes) if classes is not None else None
    videos = []
    for video_id, entry in data["database"].items():
        where = f"{path}: database[{video_id!r}]"
        if not isinstance(entry, dict) or "subset" not in entry:
            raise AnnotationError(f"{where} has no 'subset' (training, validation or testing)")
        segments = entry.get("annotations") or []
        if not isinstance(segments, list) or not all(isinstance(a, dict) and "label" in a for a in segments):
            raise AnnotationError(f"{where}: 'annotations' must be a list of {{segment, label}} objects")
        labels = tuple(sorted({a["label"] for a in segments}))
        unknown = [name for name in labels if known is not None and name not in known]
        if unknown:
            raise AnnotationError(f"{where} has label(s) {unknown} that are not leaves of the taxonomy")
        videos.append(VideoAnnotation(str(video_id), str(entry["subset"]), labels))
    if not videos:
        raise AnnotationError(f"{path}: the database lists no videos")
    return Annotations(videos=videos, source=str(path), classes=classes)


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-blank lines of a text file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{path}: not a UTF-8 text file ({exc})") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


@register_annotation_format("fcvid", files=("split file", "label matrix file", "class-name file"))
def read_fcvid(split_file: Path, label_file: Path, class_file: Path) -> Annotations:
    """FCVID: three row-aligned files.

    * the split file: one video per line, ``relative/path.ext train|test`` (whitespace
      separated); the video id is the file name without its extension;
    * the label matrix: one row per line of the split file, 239 (one per class) 0/1 values
      separated by spaces or commas; a row may have several 1s (multi-label);
    * the class-name file: one class name per line, in column order of the matrix.

    Row counts and widths are checked, and a mismatch names the files and the first row
    that does not line up.
    """
    classes = [name for _, name in _read_lines(class_file)]
    if not classes:
        raise AnnotationError(f"{class_file}: no class names")
    if len(set(classes)) != len(classes):
        raise AnnotationError(f"{class_file}: a class name is listed twice")
    split_rows = _read_lines(split_file)
    label_rows = _read_lines(label_file)
    if len(split_rows) != len(label_rows):
        raise AnnotationError(
            f"{split_file} lists {len(split_rows)} videos but {label_file} has {len(label_rows)} label rows; "
            "the two files must be row-aligned (same videos, same order). Are they from the same FCVID release?"
        )
    videos = []
    for (split_line, split_text), (label_line, label_text) in zip(split_rows, label_rows):
        parts = split_text.split()
        if len(parts) != 2:
            raise AnnotationError(
                f"{split_file}:{split_line}: expected 'relative/path.ext train|test', got {split_text!r}")
        relative, split = parts
        values = re.split(r"[\s,]+", label_text)
        if len(values) != len(classes):
            raise AnnotationError(
                f"{label_file}:{label_line}: {len(values)} values, but {class_file} names {len(classes)} classes "
                f"(row for {relative!r})"
            )
        if any(v not in ("0", "1") for v in values):
            raise AnnotationError(f"{label_file}:{label_line}: values must be 0 or 1, got {label_text[:80]!r}")
        labels = tuple(classes[i] for i, v in enumerate(values) if v == "1")
        video_id = Path(relative).stem
        videos.append(VideoAnnotation(video_id, split, labels, path=relative))
    if not videos:
        raise AnnotationError(f"{split_file}: no videos listed")
    return Annotations(videos=videos, source=f"{split_file} + {label_file} + {class_file}", classes=classes)
