"""Feature extraction: a folder of videos and an annotation list into a feature store.

    python -m datasets extract --videos DIR --list FILE [FILE ...] --format FMT --out STORE
    torchrun --nproc-per-node N -m datasets extract ...     (the same, N processes per node)

For every listed video: decode at ``fps`` (datasets/extraction/decode.py), run both backbones
(datasets/extraction/features.py: MobileNetV2 on 112x112 for the coarse stream, ResNet-101 on 224x224 for
the fine one), keep float16 penultimate features. Work is kept in shards (datasets/extraction/shards.py),
so an interrupted run started again continues where it stopped, and a video that cannot be
read is recorded with its reason and skipped. Under ``torchrun`` (or any launcher that sets
torch.distributed's RANK and WORLD_SIZE) rank r of W takes every W-th video of the list from
the r-th, and writes its own shard. When all shards are complete they are merged into the
store (datasets/extraction/merge.py): by the single process, or by rank 0 after all ranks are done when
the shards share a file system; otherwise run ``python -m datasets merge`` where they are.

Videos are found under ``--videos`` by the path the annotations give (FCVID), else by id:
``<id>.<ext>`` or ``v_<id>.<ext>`` (ActivityNet's usual file names), in any sub-folder.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from datasets.common.distributed import barrier, distributed_rank, rank_device
from datasets.common.errors import StoreError, UsageError
from datasets.common.progress import progress_bar
from datasets.extraction.backbones import PAPER_STREAMS, BackboneSpec
from datasets.extraction.decode import DecodedVideo, VideoDecodeError, decode_at_fps
from datasets.extraction.features import Backbone, decode_short_side, frame_features, load_backbone
from datasets.extraction.shards import COMPLETE_FILE, ShardWriter, shard_dir, shards_root
from datasets.sources.annotations import Annotations, read_annotations

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".3gp", ".wmv")
EXTRACTOR_VERSION = 1


@dataclass(frozen=True)
class ExtractConfig:
    """Settings of an extraction (recorded in every shard; a resume must use the same)."""

    fps: float = 1.0
    batch_size: int = 64  # frames per forward pass
    device: str = "auto"
    coarse_weights: str | None = None
    fine_weights: str | None = None
    flush_every: int = 16  # videos per part file (what an interruption can lose)
    decode_workers: int = 2  # videos decoded ahead, in threads, while the backbones run
    retry_failed: bool = False  # try again the videos an earlier run recorded as failed


def find_videos(annotations: Annotations, videos_dir: Path) -> tuple[dict[str, Path | None], list[str]]:
    """Each listed video's file (None if not found), and the video files nobody listed."""
    if not videos_dir.is_dir():
        raise StoreError(f"--videos {videos_dir}: not a directory")
    files = [p for p in videos_dir.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
    by_stem: dict[str, Path] = {}
    for path in sorted(files):
        by_stem.setdefault(path.stem, path)
    found: dict[str, Path | None] = {}
    for video in annotations.videos:
        path = None
        if video.path is not None and (videos_dir / video.path).is_file():
            path = videos_dir / video.path
        else:
            path = by_stem.get(video.video_id) or by_stem.get(f"v_{video.video_id}")
        found[video.video_id] = path
    used = {p.resolve() for p in found.values() if p is not None}
    extra = sorted(str(p.relative_to(videos_dir)) for p in files if p.resolve() not in used)
    return found, extra


def _decode_ahead(pool: ThreadPoolExecutor, jobs: list[tuple[str, Path | None]], fps: float, short_side: int,
                  lookahead: int) -> Iterator[tuple[str, Path | None, Future | None]]:
    """Yield (id, path, future decode) in order, keeping ``lookahead`` decodes in flight."""
    queue: list[tuple[str, Path | None, Future | None]] = []
    for vid, path in jobs:
        queue.append((vid, path, pool.submit(decode_at_fps, path, fps, short_side) if path else None))
        if len(queue) > lookahead:
            yield queue.pop(0)
    yield from queue


def extract(
    annotation_paths: list[Path] | Path,
    fmt: str,
    videos_dir: Path | str,
    out: Path | str,
    cfg: ExtractConfig = ExtractConfig(),
    *,
    backbones: dict[str, BackboneSpec] | None = None,
    rank: int | None = None,
    world: int | None = None,
    merge_when_done: bool = True,
    name: str | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Extract this process's share of the listed videos; merge when every shard is done.

    ``rank``/``world`` default to torch.distributed's (one process: 0 of 1). Returns this
    shard's statistics (also in its complete.json).
    """
    out, videos_dir = Path(out), Path(videos_dir)
    if cfg.fps <= 0:
        raise UsageError(f"--fps must be positive, got {cfg.fps}")
    if out.exists():
        raise FileExistsError(f"{out} already exists; refusing to overwrite it (choose another --out)")
    local_rank = 0
    if rank is None or world is None:
        rank, world, local_rank = distributed_rank()
    backbones = {**PAPER_STREAMS, **(backbones or {})}
    annotations = read_annotations(annotation_paths, fmt)
    found, extra = find_videos(annotations, videos_dir)
    paths = [annotation_paths] if isinstance(annotation_paths, (str, Path)) else list(annotation_paths)
    job = _job_record(cfg, fmt, paths, videos_dir, world, backbones, annotations)
    owned = [{"index": rank + k * world, "id": v.video_id, "split": v.split, "labels": list(v.labels),
              "file": str(found[v.video_id]) if found[v.video_id] else None}
             for k, v in enumerate(annotations.videos[rank::world])]
    folder = shard_dir(shards_root(out), rank, world)
    folder.mkdir(parents=True, exist_ok=True)
    shard = ShardWriter(folder, job, owned, list(backbones), cfg.flush_every)
    skip = set(shard.state.done) | (set() if cfg.retry_failed else set(shard.state.failed))
    todo = [(v["id"], Path(v["file"]) if v["file"] else None) for v in owned if v["id"] not in skip]
    if skip:
        log.info("rank %d: resuming, %d of %d videos already done or recorded as failed", rank, len(skip),
                 len(owned))
    device = rank_device(cfg.device, local_rank)
    weights = {"coarse": cfg.coarse_weights, "fine": cfg.fine_weights}
    models = {s: load_backbone(s, b, weights.get(s), device) for s, b in backbones.items()}
    start = time.perf_counter()
    frames = _extract_videos(todo, shard, models, cfg, device, videos_dir, f"extract (rank {rank}/{world})",
                             show_progress)
    seconds = time.perf_counter() - start
    stats = {
        "rank": rank, "world": world, "device": str(device), "videos": len(owned),
        "done": len(shard.state.done), "failed": len(shard.state.failed), "frames_this_run": frames,
        "seconds_this_run": seconds, "frames_per_second": frames / max(seconds, 1e-9),
        "per_backbone_frames_per_second": {s: m.frames / max(m.seconds, 1e-9) for s, m in models.items()},
        "weights": {s: m.weights for s, m in models.items()},
        "extra_files": extra if rank == 0 else [],  # video files under --videos that nobody listed
    }
    shard.complete(stats)
    log.info("rank %d: %d frames in %.1f s (%.1f frames/s; %s); %d failed", rank, frames, seconds,
             stats["frames_per_second"], ", ".join(f"{s} {v:.1f} frames/s" for s, v in
                                                   stats["per_backbone_frames_per_second"].items()),
             len(shard.state.failed))
    if merge_when_done:
        _merge_if_all_done(out, rank, world, name)
    return stats


def _extract_videos(todo: list[tuple[str, Path | None]], shard: ShardWriter, models: dict[str, Backbone],
                    cfg: ExtractConfig, device: torch.device, videos_dir: Path, desc: str,
                    show_progress: bool) -> int:
    """Decode (in threads, ahead) and extract every video of ``todo`` into ``shard``; return
    the frames extracted. A video that cannot be used is recorded as failed, with the reason."""
    short_side = decode_short_side([m.spec.resolution for m in models.values()])
    workers = max(1, cfg.decode_workers)
    frames = 0
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            progress_bar(total=len(todo), desc=desc, unit="video", enable=show_progress) as bar:
        for vid, path, future in _decode_ahead(pool, todo, cfg.fps, short_side, workers):
            if future is None:
                shard.fail(vid, f"no video file found under {videos_dir} (looked for the listed path, "
                                f"{vid}.<ext> and v_{vid}.<ext>)")
            else:
                try:
                    decoded: DecodedVideo = future.result()
                except VideoDecodeError as exc:
                    shard.fail(vid, str(exc))  # it names the file
                else:
                    pixels = torch.from_numpy(decoded.frames).to(device).permute(0, 3, 1, 2)
                    features = {s: frame_features(m, pixels, cfg.batch_size) for s, m in models.items()}
                    bad = [s for s, f in features.items()
                           if not np.isfinite(f).all() or np.abs(f).max() > np.finfo(np.float16).max]
                    if bad:
                        shard.fail(vid, f"features of stream(s) {bad} are not finite in float16")
                    else:
                        shard.add(vid, features)
                        frames += len(decoded.frames)
            bar.update(1)
            bar.set_postfix(frames_per_s=f"{frames / max(time.perf_counter() - start, 1e-9):.1f}")
    shard.flush()  # the last videos may still be pending
    return frames


def _merge_if_all_done(out: Path, rank: int, world: int, name: str | None) -> None:
    from datasets.extraction.merge import merge

    if world > 1:
        barrier()
        if rank != 0:
            return
    root = shards_root(out)
    missing = [r for r in range(world) if not (shard_dir(root, r, world) / COMPLETE_FILE).is_file()]
    if missing:
        log.warning("shards of rank(s) %s are not here (another node's disk?); copy them to %s and run "
                    "`python -m datasets merge --shards %s --out %s`", missing, root, root, out)
        return
    merge(root, out, name=name)


def _job_record(cfg: ExtractConfig, fmt: str, paths: list, videos_dir: Path, world: int,
                backbones: dict[str, BackboneSpec], annotations: Any) -> dict[str, Any]:
    """What every shard of one extraction must agree on (resuming with other values is refused)."""
    return {
        "extractor_version": EXTRACTOR_VERSION,
        # What the features depend on; batch size, device and the like may change between resumes.
        "config": {k: v for k, v in asdict(cfg).items() if k in ("fps", "coarse_weights", "fine_weights")},
        "format": fmt,
        "annotations": [str(Path(p).resolve()) for p in paths],
        "videos_dir": str(videos_dir.resolve()),
        "world": world,
        "backbones": {s: asdict(b) for s, b in backbones.items()},
        "classes": annotations.class_names(),
        "multi_label": any(len(v.labels) > 1 for v in annotations.videos),
    }
