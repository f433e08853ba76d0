"""Extraction shards: what one extractor process has finished, kept safe across interruptions.

An extraction writes into ``<out>.shards/rank-RRRRR-of-WWWWW/`` (one folder per process of a
``torchrun`` job; one folder in all for a single process)::

    shard.json        the job (arguments, weights, classes) and the videos this rank owns
    part-000000.npz   finished videos: ids, frame counts, float16 features per stream, and
    part-000001.npz   the videos that failed, with the reason; each part is written atomically
    ...
    complete.json     written when every owned video is in a part; throughput figures

A restarted job reads the parts, skips the videos in them and goes on; a part is never
rewritten, so nothing is extracted or written twice (videos finished after the last part
are redone). ``python -m datasets merge`` joins complete shards into one store
(datasets/extraction/merge.py).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from datasets.common.atomic import atomic_write_bytes, atomic_write_json
from datasets.common.errors import StoreError

SHARD_FILE = "shard.json"
COMPLETE_FILE = "complete.json"


def shards_root(out: Path) -> Path:
    """Where the shards of a store at ``out`` are written."""
    return out.with_name(out.name + ".shards")


def shard_dir(root: Path, rank: int, world: int) -> Path:
    return root / f"rank-{rank:05d}-of-{world:05d}"


@dataclass
class ShardState:
    """What the parts of a shard hold."""

    done: dict[str, tuple[Path, int]] = field(default_factory=dict)  # id -> (part file, frames)
    failed: dict[str, str] = field(default_factory=dict)  # id -> reason
    parts: int = 0


def read_state(folder: Path) -> ShardState:
    """Scan a shard's parts (headers and ids only)."""
    state = ShardState()
    for part in sorted(folder.glob("part-*.npz")):
        try:
            with np.load(part) as data:
                ids, lengths = data["ids"].tolist(), data["lengths"].tolist()
                failed = dict(zip(data["failed_ids"].tolist(), data["failed_reasons"].tolist()))
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"{part}: unreadable part ({exc}); delete it and run the extraction again "
                             "(its videos are redone)") from None
        for vid, length in zip(ids, lengths):
            state.done[vid] = (part, int(length))
            state.failed.pop(vid, None)  # a retried video that worked
        for vid, reason in failed.items():
            if vid not in state.done:
                state.failed[vid] = reason
        state.parts += 1
    return state


class ShardWriter:
    """Appends finished videos to a shard, one atomic part file every ``flush_every`` videos."""

    def __init__(self, folder: Path, job: dict[str, Any], videos: list[dict[str, Any]], streams: list[str],
                 flush_every: int) -> None:
        self.folder = folder
        self.streams = streams
        self.flush_every = max(1, flush_every)
        meta = {"job": job, "videos": videos}
        path = folder / SHARD_FILE
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored != json.loads(json.dumps(meta)):
                changed = sorted(k for k in job if stored.get("job", {}).get(k) != job[k]) or ["the video list"]
                raise StoreError(
                    f"{folder} holds an extraction with other settings ({', '.join(changed)} differ). "
                    "Resume with the same arguments, or choose another --out (or delete that folder)"
                )
        else:
            atomic_write_json(path, meta)
        self.state = read_state(folder)
        self._pending: list[tuple[str, dict[str, np.ndarray]]] = []
        self._failures: list[tuple[str, str]] = []

    def add(self, video_id: str, features: dict[str, np.ndarray]) -> None:
        self._pending.append((video_id, {s: features[s].astype(np.float16) for s in self.streams}))
        self._maybe_flush()

    def fail(self, video_id: str, reason: str) -> None:
        self._failures.append((video_id, reason))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._pending) + len(self._failures) >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if not self._pending and not self._failures:
            return
        arrays: dict[str, np.ndarray] = {
            "ids": np.asarray([v for v, _ in self._pending], dtype=str),
            "lengths": np.asarray([f[self.streams[0]].shape[0] for _, f in self._pending], dtype=np.int64),
            "failed_ids": np.asarray([v for v, _ in self._failures], dtype=str),
            "failed_reasons": np.asarray([r for _, r in self._failures], dtype=str),
        }
        for stream in self.streams:
            blocks = [f[stream] for _, f in self._pending]
            arrays[stream] = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float16)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        part = self.folder / f"part-{self.state.parts:06d}.npz"
        atomic_write_bytes(part, buffer.getvalue())
        for vid, feats in self._pending:
            self.state.done[vid] = (part, feats[self.streams[0]].shape[0])
            self.state.failed.pop(vid, None)
        for vid, reason in self._failures:
            self.state.failed[vid] = reason
        self.state.parts += 1
        self._pending, self._failures = [], []

    def complete(self, stats: dict[str, Any]) -> None:
        self.flush()
        atomic_write_json(self.folder / COMPLETE_FILE, stats)
