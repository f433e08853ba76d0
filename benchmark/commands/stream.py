"""``python -m benchmark stream VIDEO --run results/<run> --method liteeval``: a trained online
method on a real video as it plays, with real conditional compute, beside Uniform.

Everywhere else the suite evaluates methods on stored features. Here the video (a file, or a
live source: standard input, a network stream, a capture device) is decoded at the store's frame
rate one frame at a time (datasets/extraction/decode.py ``FrameReader``: each frame is handed on
as soon as the video has played up to it), and for each frame the
method's ``FrameStream`` (methods/base.py) asks for the features it needs: LiteEval always the
coarse one (MobileNetV2 runs), the fine one (ResNet-101 runs) only where its gate fires. The
backbones run when asked and are counted when they run, so the fine frames reported are the
frames ResNet-101 really ran on. Per frame it prints the decision and the running top classes.

Then, in the same process, the same video through an offline method of the same run (Uniform
by default): the whole video decoded, the fine backbone run on the distinct frames of its
25-frame grid in one batch, its classifier; the meter of a one-video batch
(datasets/loading/live.py) checks it read no frame whose feature was not computed. "The whole
video" is what the live pass played: where it stopped early (``limit``, Ctrl-C) the file is
decoded as far; a live source plays once, so its frames are kept from the live pass (about
0.1-0.4 MB a frame) and the offline method's decoding is the live pass's.

Both backbones are warmed up on one blank frame before anything is timed, as a live system
holds them loaded and warm. Wall-clock times include decoding. They are this machine's
(recorded with its provenance) and say nothing about another.

A model only understands features of the backbones and weights its store was extracted with,
so the run's store manifest is checked first: the backbone, resolution and feature size of each
stream, and its weights (random with the recorded seed, or the checkpoint with the recorded
SHA-256; and, where the store records it, the digest of the weights as loaded). A mismatch, or
a synthetic store (its features come from no backbone), is refused with what to do instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark import pair, provenance, results
from datasets.common.atomic import atomic_write_json
from datasets.common.cli import Terminated
from datasets.common.errors import UsageError
from datasets.extraction.backbones import BackboneSpec
from datasets.extraction.decode import FrameReader, Source, VideoDecodeError, decode_at_fps, open_source
from datasets.extraction.features import Backbone, decode_short_side, frame_features, load_backbone
from datasets.loading.device import resolve_device
from datasets.loading.live import live_batch, sampled_positions, unread_by
from datasets.store.manifest import StreamSpec
from datasets.store.reader import FeatureStore
from methods.base import VideoMethod
from methods.registry import resolve_method

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamOptions:
    method: str = "liteeval"
    seed: int | None = None  # None: the lowest seed trained in the run
    compare: str | None = "uniform"  # an offline method of the same run; None: no comparison
    store: str | None = None  # the run's store, when it moved since training
    weights: dict[str, str] = field(default_factory=dict)  # stream -> checkpoint path, when it moved
    device: str = "auto"
    realtime: bool = False  # wait for each frame's time in the video, as a live source would
    top: int = 3
    input_format: str | None = None  # FFmpeg's name of a live source's format or device (v4l2, mpegts ...)
    seconds: float | None = None  # stop after this much of the video; None: at its end (a live source: Ctrl-C)


@dataclass
class TrainedPair:
    """A method/seed pair of a run, loaded for use outside the harness."""

    name: str
    seed: int
    model: VideoMethod
    folder: Path


def _seed_folders(run: Path, method: str) -> dict[int, Path]:
    """The complete pairs of ``method`` in ``run``, by seed."""
    folders = {seed: results.pair_dir(run, name, seed) for name, seed in results.pairs_on_disk(run) if name == method}
    return {seed: folder for seed, folder in folders.items() if results.pair_state(folder).done}


def load_pair(run: Path, method: str, seed: int | None, store: FeatureStore, device: torch.device) -> TrainedPair:
    """The trained ``method`` of ``run`` (seed ``seed``, else the lowest), checked against ``store``."""
    found = _seed_folders(run, method)
    if not found:
        raise FileNotFoundError(f"{run}: no complete trained {method!r} in runs/{method}/; train it first with "
                                f"`python -m benchmark run --dataset {store.path} --methods {method} --name {run.name} "
                                f"--results-dir {run.parent}`")
    seed = min(found) if seed is None else seed
    if seed not in found:
        raise FileNotFoundError(f"{run}: {method!r} has no complete seed {seed}; it has seeds {sorted(found)}")
    folder = found[seed]
    return TrainedPair(method, seed, pair.load_saved(folder, store, device), folder)


def run_store(run: Path, override: str | None) -> FeatureStore:
    """The store the run was trained on: --store, else the path its provenance.json recorded."""
    if override is None:
        record = results.read_json(run / results.PROVENANCE) or {}
        path = (record.get("dataset") or {}).get("path")
        if not path:
            raise FileNotFoundError(f"{run}: no provenance.json naming the run's store; pass it with --store")
        given = (record.get("config") or {}).get("dataset")  # as the run's command named it (relative paths too)
        candidates = [p for p in (Path(path), Path(given) if given else None) if p is not None and p.is_dir()]
        if not candidates:
            kind = ((record.get("dataset") or {}).get("provenance") or {}).get("kind")
            if kind == "synthetic":  # no store could be streamed: say that, not where the store went
                raise UsageError(not_from_video(f"{run}'s features", kind))
            raise FileNotFoundError(f"{run} was trained on the store {path}, which is not there; pass where it is "
                                    "now with --store")
        override = str(candidates[0])
    return FeatureStore.open(override)


def not_from_video(what: str, kind: object) -> str:
    """The refusal to stream a run whose features were not extracted from video."""
    return (f"{what} were not extracted from video (provenance kind {kind!r}; a synthetic store's features come "
            "from no backbone), so its models cannot read a video's frames; extract a store from videos (`python -m "
            "datasets extract`, docs/real-datasets.md), train on it, and stream that run")


def matching_backbone(stream: str, spec: StreamSpec, checkpoint: str | None, device: torch.device) -> Backbone:
    """The stream's backbone with the weights the store was extracted with, or a clear refusal."""
    origin = spec.provenance or {}
    if origin.get("kind") != "extract":
        raise UsageError(not_from_video(f"the run's {stream!r} features", origin.get("kind")))
    recorded = origin.get("weights") or {}
    if recorded.get("random"):
        if checkpoint is not None:
            raise UsageError(f"--{stream}-weights {checkpoint}: the store's {stream} features come from a randomly "
                             f"initialised {spec.backbone} (seed {recorded.get('seed')}); stream without the option")
        path = None
    elif recorded.get("packaged") and checkpoint is None:
        path = None  # the weights installed with the packaged backbone here; the sha256 check below proves them
    else:
        path = checkpoint or recorded.get("checkpoint")
        if not path or not Path(path).is_file():
            raise FileNotFoundError(f"the store's {stream} features come from the checkpoint "
                                    f"{recorded.get('checkpoint')} (sha256 {recorded.get('sha256')}), not found here; "
                                    f"pass it with --{stream}-weights")
    backbone = load_backbone(stream, BackboneSpec(spec.backbone, spec.resolution, spec.dim), path, device)
    for key in ("sha256", "seed", "state_sha256"):
        if key in recorded and key in backbone.weights and recorded[key] != backbone.weights[key]:
            raise UsageError(f"{stream} backbone: the store was extracted with weights whose {key} is {recorded[key]}, "
                             f"these have {backbone.weights[key]} ({path or 'random initialisation'}); a model trained "
                             "on that store cannot read these features. Use the checkpoint it was extracted with "
                             f"(--{stream}-weights), or extract and train again with these weights")
    return backbone


class CountingSources:
    """Per-frame feature sources that run a backbone when first asked, and count the runs."""

    def __init__(self, backbones: dict[str, Backbone], device: torch.device) -> None:
        self.backbones = backbones
        self.device = device
        self.runs = {s: 0 for s in backbones}
        self.seconds = {s: 0.0 for s in backbones}

    def features(self, pixels: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
        """Sources for one frame ((1, 3, H, W) uint8 on the device); each runs its backbone once."""
        cache: dict[str, torch.Tensor] = {}

        def source(stream: str) -> Callable[[], torch.Tensor]:
            def compute() -> torch.Tensor:
                if stream not in cache:
                    cache[stream] = self.compute(stream, pixels)[0]
                return cache[stream]
            return compute

        return {s: source(s) for s in self.backbones}

    def compute(self, stream: str, pixels: torch.Tensor) -> torch.Tensor:
        """(N, D) features of N frames, rounded to float16 as the store holds them."""
        start = time.perf_counter()
        values = frame_features(self.backbones[stream], pixels, batch_size=max(1, pixels.shape[0]))
        self.runs[stream] += pixels.shape[0]
        self.seconds[stream] += time.perf_counter() - start
        return torch.from_numpy(values.astype(np.float16).astype(np.float32)).to(self.device)


def _pixels(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, 3) uint8 to (1, 3, H, W) on the device, as the extractor hands frames over."""
    return torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)[None]


def _top(scores: torch.Tensor, classes: list[str], k: int) -> list[tuple[str, float]]:
    values, index = scores.float().cpu().topk(min(k, len(classes)))
    return [(classes[i], float(v)) for v, i in zip(values.tolist(), index.tolist())]


def stream_live(video: Source, pair: TrainedPair, sources: CountingSources, fps: float, short_side: int,
                classes: list[str], options: StreamOptions, on_frame: Callable[[dict[str, Any]], None],
                limit: int | None = None, kept: list[np.ndarray] | None = None) -> dict[str, Any]:
    """The online method on the video as it plays; per-frame records and the totals, and how it
    ended (``ended``: "end", "limit", "broke off" (a damaged tail, a live source gone quiet: why, in
    ``broke_off``) or "interrupted": Ctrl-C ends it as the video's end would, since a camera never
    ends); the frames go into ``kept`` where given."""
    stream = pair.model.start_stream()
    frames: list[dict[str, Any]] = []
    decode_seconds = method_seconds = 0.0
    start = time.perf_counter()
    with FrameReader(video, fps, short_side, limit) as reader:
        try:
            tick = time.perf_counter()
            for at, frame in reader:
                decode_seconds += time.perf_counter() - tick
                if options.realtime:  # a live source delivers frame k only once the video has played to it
                    time.sleep(max(0.0, start + at - time.perf_counter()))
                arrived = time.perf_counter()
                before = dict(sources.runs)
                backbone_before = sum(sources.seconds.values())
                scores = stream.step(sources.features(_pixels(frame, sources.device)))
                done = time.perf_counter()
                method_seconds += (done - arrived) - (sum(sources.seconds.values()) - backbone_before)
                ran = [s for s in sources.runs if sources.runs[s] > before[s]]
                record = {"frame": len(frames), "time_s": round(at, 3), "backbones": ran,
                          "ms": round(1000 * (done - arrived), 1), "top": _top(scores, classes, options.top)}
                frames.append(record)
                if kept is not None:
                    kept.append(frame)
                on_frame(record)
                tick = time.perf_counter()
            cut = limit is not None and len(frames) == limit and (reader.length is None or reader.length > limit)
            ended = "broke off" if reader.broke_off else "limit" if cut else "end"
        except KeyboardInterrupt as stop:
            if isinstance(stop, Terminated):  # SIGTERM ends the command, as everywhere
                raise
            ended = "interrupted"
    if not frames:
        why = "stopped before the first frame" if ended == "interrupted" else "no decodable frame"
        raise VideoDecodeError(f"{video.name}: {why}")
    wall = time.perf_counter() - start
    played = len(frames) / fps
    return {"method": pair.name, "seed": pair.seed, "frames": len(frames), "backbone_frames": dict(sources.runs),
            "wall_s": wall, "decode_s": decode_seconds, "backbone_s": dict(sources.seconds), "method_s": method_seconds,
            "video_s": min(reader.duration, played) if reader.duration else played, "ended": ended,
            "broke_off": reader.broke_off,
            "top": frames[-1]["top"], "per_frame": frames}


def offline_on_video(video: Source, pair: TrainedPair, backbones: dict[str, Backbone], fps: float, short_side: int,
                     classes: list[str], options: StreamOptions, device: torch.device, played: int,
                     kept: list[np.ndarray] | None = None) -> dict[str, Any]:
    """An offline method on the whole video the live pass ``played`` (its frames): decode it (a
    live source's frames ``kept`` from the live pass instead), run its streams' backbones on the
    distinct frames of its evaluation grid, run it, and check it read nothing else."""
    model = pair.model
    sources = CountingSources({s: backbones[s] for s in model.streams}, device)
    start = time.perf_counter()
    decode_seconds: float | None = None
    if kept is not None:
        video_frames = np.stack(kept)
    else:
        video_frames = decode_at_fps(video, fps, short_side, played).frames
        decode_seconds = time.perf_counter() - start
    length = len(video_frames)
    positions = sampled_positions(model.sampler(train=False), length)
    pixels = torch.from_numpy(video_frames[positions.numpy()]).to(device).permute(0, 3, 1, 2)
    features = {}
    for stream in model.streams:
        values = torch.zeros(length, backbones[stream].spec.feature_dim, device=device)
        values[positions.to(device)] = sources.compute(stream, pixels)
        features[stream] = values
    batch, meter = live_batch(features, length, model.sampler(train=False), video_id=Path(video.name).name,
                              reader=pair.name, device=device)
    with torch.no_grad():
        scores = model(batch).scores[0]
    wall = time.perf_counter() - start
    stray = {s: p for s, p in unread_by(meter, {s: positions for s in model.streams}).items() if p}
    if stray:
        raise RuntimeError(f"{pair.name} read frames whose features were not computed: {stray}")
    grid = int(batch.mask.sum())
    return {"method": pair.name, "seed": pair.seed, "frames": length, "grid": grid,
            "backbone_frames": dict(sources.runs), "wall_s": wall, "decode_s": decode_seconds,
            "backbone_s": dict(sources.seconds), "top": _top(scores, classes, options.top)}


def stream_video(video: Path | str, run: Path | str, options: StreamOptions,
                 on_frame: Callable[[dict[str, Any]], None] = lambda record: None) -> dict[str, Any]:
    """Stream ``video`` (a file, or a live source: datasets/extraction/decode.py ``open_source``)
    through ``options.method`` of ``run`` (then ``options.compare``); the record."""
    given, run = str(video), Path(run)
    if options.seconds is not None and not options.seconds > 0:
        raise UsageError(f"--seconds {options.seconds}: must be a positive length of video, e.g. 30")
    source = open_source(given, options.input_format)
    if source.live and options.realtime:
        raise UsageError(f"--realtime: {source.shown} is a live source, which delivers each frame when it is played; "
                         "the option paces a file as a camera would")
    if not run.is_dir():
        raise FileNotFoundError(f"--run {run}: no such results folder")
    device = resolve_device(options.device)
    store = run_store(run, options.store)
    manifest = store.manifest
    method_cls = resolve_method(options.method)
    if not method_cls.can_stream():
        raise UsageError(f"--method {options.method}: it does not process a live video frame by frame; stream an "
                         "online method that implements start_stream (liteeval, liteeval_rl)")
    pair = load_pair(run, options.method, options.seed, store, device)
    other = (load_pair(run, options.compare, options.seed if options.seed is not None else pair.seed, store, device)
             if options.compare else None)
    needed = sorted({*pair.model.streams, *(other.model.streams if other else ())})
    backbones = {s: matching_backbone(s, manifest.streams[s], options.weights.get(s), device) for s in needed}
    short_side = decode_short_side([spec.resolution for spec in manifest.streams.values()])
    blank = torch.zeros(1, 3, short_side, short_side, dtype=torch.uint8, device=device)
    for backbone in backbones.values():  # warm-up, untimed
        frame_features(backbone, blank, 1)
    classes = list(manifest.classes)
    kept: list[np.ndarray] | None = [] if source.live and other else None  # a live source plays once
    if kept is not None and options.seconds is None:
        log.warning("%s: %s runs after the live pass, on its frames, kept in memory until then (%g a second of video, "
                    "short side %d pixels); --seconds bounds them, --compare none keeps none", source.shown,
                    other.name if other else "", manifest.fps, short_side)
    limit = None if options.seconds is None else max(1, math.floor(options.seconds * manifest.fps + 1e-6))
    live = stream_live(source, pair, CountingSources(backbones, device), manifest.fps, short_side, classes, options,
                       on_frame, limit, kept)
    offline = (offline_on_video(source, other, backbones, manifest.fps, short_side, classes, options, device,
                                live["frames"], kept) if other else None)
    environment, command = provenance.device_info(device), provenance.invocation()
    return {
        "written": provenance.now(), "command": command.replace(given, source.shown) if command else None,
        "video": source.shown, "video_resolved": source.shown if source.live else str(Path(given).resolve()),
        "live_source": source.live,
        "run": str(run), "store": str(store.path), "fps": manifest.fps, "realtime": options.realtime,
        "display": {p.name: p.model.shown_name() for p in (pair, other) if p},
        "gmacs_per_frame": {s: manifest.streams[s].gmacs_per_frame for s in needed},
        "backbones": {s: {"backbone": b.spec.name, "resolution": b.spec.resolution, **b.weights}
                      for s, b in backbones.items()},
        "options": {k: v for k, v in asdict(options).items() if k != "weights"},
        "machine": environment, "versions": provenance.package_versions(), "git": provenance.git_state(),
        "live": live, "offline": offline,
    }


def write_record(record: dict[str, Any], path: Path | str) -> None:
    atomic_write_json(Path(path), record)
