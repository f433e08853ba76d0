"""Merge extraction shards into one feature store, then validate it.

    python -m datasets merge --shards STORE.shards --out STORE

Every shard of the job must be present and complete (rank 0 .. W-1 of the same W, the same
job settings). The store holds the videos that were extracted, in annotation order grouped by
split; the ones that failed or whose file was not found are left out and listed, with the
reason, in ``<out>.failures.csv``; ``<out>.extract-report.json`` has the counts, the listed
video files nobody asked for, the weights and the throughput of every rank. The store is
validated (datasets/store/validate.py) before the command reports success.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from datasets.common.atomic import atomic_write_bytes, atomic_write_json
from datasets.common.errors import StoreError
from datasets.common.progress import progress_bar
from datasets.extraction.backbones import COST_BACKEND, count_gmacs_per_frame
from datasets.extraction.shards import COMPLETE_FILE, SHARD_FILE, read_state
from datasets.sources.ingest import SPLIT_ORDER
from datasets.store.manifest import StreamSpec
from datasets.store.writer import StoreWriter

log = logging.getLogger(__name__)


def failures_path(out: Path) -> Path:
    return out.with_name(out.name + ".failures.csv")


def report_path(out: Path) -> Path:
    return out.with_name(out.name + ".extract-report.json")


def _write_failures(out: Path, failed: dict[str, str], file_of: dict[str, str | None]) -> None:
    """``<out>.failures.csv``: video_id, file, reason of every video left out."""
    buffer = io.StringIO()
    table = csv.writer(buffer)
    table.writerow(["video_id", "file", "reason"])
    for vid, reason in sorted(failed.items()):
        table.writerow([vid, file_of.get(vid) or "", reason])
    atomic_write_bytes(failures_path(out), buffer.getvalue().encode())


def _split_key(split: str) -> int:
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def _load_shards(root: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[Path]]:
    folders = sorted(p for p in root.glob("rank-*-of-*") if p.is_dir())
    if not folders:
        raise StoreError(f"{root}: no shard folders (rank-RRRRR-of-WWWWW); run `python -m datasets extract` first")
    metas = []
    for folder in folders:
        if not (folder / SHARD_FILE).is_file():
            raise StoreError(f"{folder}: no {SHARD_FILE}; this is not an extraction shard")
        metas.append(json.loads((folder / SHARD_FILE).read_text()))
    job = metas[0]["job"]
    world = int(job["world"])
    for folder, meta in zip(folders, metas):
        if meta["job"] != job:
            differ = sorted(k for k in job if meta["job"].get(k) != job[k])
            raise StoreError(f"{folder} belongs to another extraction job than {folders[0]} ({differ} differ)")
    expected = {f"rank-{r:05d}-of-{world:05d}" for r in range(world)}
    have = {f.name for f in folders}
    if have != expected:
        raise StoreError(f"{root}: expected the shards of ranks 0..{world - 1} of {world}; missing "
                         f"{sorted(expected - have)}, unexpected {sorted(have - expected)}")
    incomplete = [f.name for f in folders if not (f / COMPLETE_FILE).is_file()]
    if incomplete:
        raise StoreError(f"{root}: shard(s) {incomplete} are not complete; run the same extract command again "
                         "to finish them (it resumes), then merge")
    stats = [json.loads((f / COMPLETE_FILE).read_text()) for f in folders]
    return job, [v for m in metas for v in m["videos"]], stats, folders


def merge(root: Path | str, out: Path | str, *, name: str | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Join the shards under ``root`` into a validated store at ``out``; return the report.

    ``name`` is the dataset name in the manifest (default: the directory name of ``out``);
    the harness applies a method's per-dataset presets by it ("fcvid", "activitynet")."""
    from datasets.store.validate import validate_store

    root, out = Path(root), Path(out)
    if out.exists():
        raise FileExistsError(f"{out} already exists; refusing to overwrite it (choose another --out)")
    job, videos, stats, folders = _load_shards(root)
    ids = [v["id"] for v in videos]
    twice = [vid for vid, n in Counter(ids).items() if n > 1]
    if twice:
        raise StoreError(f"{root}: video(s) {twice[:5]} are in more than one shard")
    done, failed = _finished_videos(root, videos, folders)
    _write_failures(out, failed, {v["id"]: v["file"] for v in videos})
    kept = sorted((v for v in videos if v["id"] in done), key=lambda v: (_split_key(v["split"]), v["index"]))
    if not kept:
        raise StoreError(f"{root}: every video failed; the reasons are in {failures_path(out)}")
    classes = job["classes"]
    class_index = {c: i for i, c in enumerate(classes)}
    labels = np.zeros((len(kept), len(classes)), dtype=np.uint8)
    for row, video in enumerate(kept):
        labels[row, [class_index[name] for name in video["labels"]]] = 1
    labelled = {v["split"] for v in videos if v["labels"]}
    weights = stats[0]["weights"]
    random_streams = sorted(s for s, w in weights.items() if w["random"])
    streams = _stream_specs(job["backbones"], weights)
    provenance = {
        "kind": "extract", "extractor_version": job["extractor_version"], "annotations": job["annotations"],
        "format": job["format"], "videos_dir": job["videos_dir"], "config": job["config"], "world": job["world"],
        "random_init": random_streams,
        "warning": (f"stream(s) {random_streams} come from RANDOMLY INITIALISED backbones (no checkpoint given): "
                    "the features test the pipeline and mean nothing for recognition") if random_streams else None,
        "failures": len(failed), "failures_file": str(failures_path(out).resolve()),
    }
    by_part: dict[Path, list[tuple[int, str]]] = {}
    for row, video in enumerate(kept):
        by_part.setdefault(done[video["id"]][0], []).append((row, video["id"]))
    with StoreWriter(
        out, name=name or out.name, classes=classes, multi_label=bool(job.get("multi_label")), fps=job["config"]["fps"],
        streams=streams, video_ids=[v["id"] for v in kept], splits=[v["split"] for v in kept], labels=labels,
        lengths=[done[v["id"]][1] for v in kept],
        labelled_splits={s: s in labelled for s in {v["split"] for v in kept}}, provenance=provenance,
    ) as writer, progress_bar(total=len(kept), desc="merge", unit="video", enable=show_progress) as bar:
        for part, rows in by_part.items():
            _copy_part(part, rows, list(streams), writer, bar)
    problems = validate_store(out, show_progress=show_progress)
    if problems:
        raise StoreError(f"{out}: the merged store does not validate:\n" + "\n".join(map(str, problems[:10])))
    report = {
        "store": str(out.resolve()), "listed": len(videos), "extracted": len(kept), "failed": len(failed),
        "splits": dict(Counter(v["split"] for v in kept)), "classes": len(classes),
        "not_listed_video_files": stats[0].get("extra_files", []), "random_init": random_streams,
        "ranks": stats, "failures_file": str(failures_path(out)),
    }
    atomic_write_json(report_path(out), report)
    summary = f"{out}: {len(kept)} of {len(videos)} videos extracted"
    if failed:
        summary += f"; {len(failed)} failed (reasons in {failures_path(out)})"
    log.info("%s", summary)
    if random_streams:
        log.warning("%s", provenance["warning"])
    return report


def _finished_videos(root: Path, videos: list[dict[str, Any]],
                     folders: list[Path]) -> tuple[dict[str, tuple[Path, int]], dict[str, str]]:
    """Every video the shards finished (its part file and frame count) and every one that failed
    (the reason); a listed video in neither means a shard is incomplete, which is an error."""
    done: dict[str, tuple[Path, int]] = {}
    failed: dict[str, str] = {}
    for folder in folders:
        state = read_state(folder)
        done.update(state.done)
        failed.update(state.failed)
    missing = [v for v in videos if v["id"] not in done and v["id"] not in failed]
    if missing:
        raise StoreError(f"{root}: {len(missing)} video(s) owned by complete shards are in no part "
                         f"(e.g. {missing[0]['id']!r}); run the extract command again")
    return done, failed


def _stream_specs(backbones: dict[str, dict[str, Any]], weights: dict[str, Any]) -> dict[str, StreamSpec]:
    """The manifest's stream records: the extraction's backbones, their counted cost and weights."""
    return {
        stream: StreamSpec(
            backbone=spec["name"], resolution=spec["resolution"], dim=spec["feature_dim"],
            gmacs_per_frame=count_gmacs_per_frame(spec["name"], spec["resolution"]),
            provenance={"kind": "extract", "weights": weights[stream],
                        "cost": f"ptflops backend={COST_BACKEND} on torchvision {spec['name']} "
                                f"at {spec['resolution']}"},
        )
        for stream, spec in backbones.items()
    }


def _copy_part(part: Path, rows: list[tuple[int, str]], streams: list[str], writer: StoreWriter, bar: Any) -> None:
    """Write the videos of one part file into their rows of the store."""
    with np.load(part) as data:
        part_ids = data["ids"].tolist()
        starts = np.concatenate([[0], np.cumsum(data["lengths"])])
        arrays = {s: data[s] for s in streams}
    where = {vid: i for i, vid in enumerate(part_ids)}
    for row, vid in rows:
        i = where[vid]
        writer.write_video(row, {s: a[starts[i] : starts[i + 1]] for s, a in arrays.items()})
        bar.update(1)
