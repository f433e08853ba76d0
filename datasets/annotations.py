"""Annotation readers: one small function per format, all producing the same records.

A reader takes the path the user gave to ``--annotations`` and returns ``Annotations``;
ingest (datasets/ingest.py) does the rest (matching feature files, reporting, writing).
A new format is one function with ``@register_annotation_format("name")``.

The ``csv`` format has the header ``video_id,split,labels``; ``labels`` holds one or more
class names separated by ``|`` and is empty for unlabelled (test) videos.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datasets.errors import StoreError

LABEL_SEPARATOR = "|"
CSV_HEADER = ("video_id", "split", "labels")


@dataclass(frozen=True)
class VideoAnnotation:
    """One annotated video: its id, its split and its class names (empty: unlabelled)."""

    video_id: str
    split: str
    labels: tuple[str, ...]


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


Reader = Callable[[Path], Annotations]
READERS: dict[str, Reader] = {}


def register_annotation_format(name: str) -> Callable[[Reader], Reader]:
    """Register ``reader`` as the reader of ``--format name``."""

    def decorate(reader: Reader) -> Reader:
        if name in READERS:
            raise ValueError(f"annotation format {name!r} is registered twice")
        READERS[name] = reader
        return reader

    return decorate


def read_annotations(path: Path | str, fmt: str) -> Annotations:
    """Read ``path`` with the reader of format ``fmt`` and check ids are unique."""
    path = Path(path)
    if fmt not in READERS:
        raise AnnotationError(f"unknown annotation format {fmt!r}; known formats: {sorted(READERS)}")
    if not path.exists():
        raise AnnotationError(f"{path}: annotation file not found")
    annotations = READERS[fmt](path)
    seen: dict[str, str] = {}
    clashes: list[str] = []
    for video in annotations.videos:
        if video.video_id in seen:
            other = seen[video.video_id]
            clashes.append(
                f"{video.video_id!r} ({other} and {video.split})" if other != video.split else f"{video.video_id!r} (twice in {other})"
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
    with open(path, newline="", encoding="utf-8") as handle:
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
                raise AnnotationError(f"{path}:{line}: expected 3 columns (video_id,split,labels), got {len(row)}: {row}")
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
