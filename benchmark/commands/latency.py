"""``python -m benchmark latency``: measured time per video next to GFLOPs, on one device.

GFLOPs are the field's currency, but a method that reads fewer frames through a sequential
policy can be slower than a batched Uniform. For the device of this command, this measures

* each stream's per-frame backbone latency (the torchvision model at the stream's resolution,
  randomly initialised since weights do not change the time, inference mode, warm-up, the
  median of repeats): at batch 1, the online setting where frames arrive one by one, and at a
  throughput batch (``--latency-batch``), the offline setting; on a GPU in channels_last and
  bfloat16 autocast;
* each saved method/seed pair's own time per video: the trained model evaluated again on the
  evaluation split from the bank (features already extracted), so the time of its policy,
  recurrences and classifiers, and of reading features from memory;

and estimates, per pair, milliseconds per video = own time + the sum over streams of the frames
it read (from the meter, as for GFLOPs) times that stream's per-frame latency (batch 1 for
online methods, the throughput batch for offline ones). Backbone and method times come from
the same device, recorded with its provenance in ``latency.json``; the estimate says nothing
about another device. ``latency.md`` is the table; the command then rewrites the folder's table
from its saved pairs (nothing is recomputed; provenance.json, which describes the run that
computed them, is kept) with the estimate as a column named with the device, and so does every
later ``run`` on the folder while the record is of its dataset.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmark import pair, provenance, results
from benchmark.context import RunContext
from benchmark.record import PairRecord
from benchmark.tables import device_label
from benchmark.training import evaluate
from datasets.common.atomic import atomic_write_json, atomic_write_text
from datasets.common.errors import UsageError
from datasets.common.progress import progress_bar
from datasets.extraction.backbones import build_feature_extractor, is_known
from datasets.store.manifest import StreamSpec


@dataclass(frozen=True)
class LatencyOptions:
    batch: int = 64  # the throughput batch (offline setting)
    repeats: int = 5
    warmup: int = 2


def _timed(call: Any, device: torch.device, repeats: int, warmup: int, tick: Any = lambda: None) -> float:
    """Median seconds of ``call()`` over ``repeats`` runs after ``warmup`` untimed ones (``tick``
    after each: the progress of a measurement that takes minutes on a CPU)."""
    for _ in range(warmup):
        call()
        tick()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
        tick()
    return statistics.median(times)


def backbone_latency(spec: StreamSpec, device: torch.device, options: LatencyOptions,
                     show_progress: bool = True) -> dict[str, Any]:
    """Milliseconds per frame of the stream's backbone at batch 1 and at the throughput batch."""
    model = build_feature_extractor(spec.backbone, spec.resolution).to(device).eval()
    gpu = device.type == "cuda"
    if gpu:
        model = model.to(memory_format=torch.channels_last)
    settings = "inference mode, " + ("channels_last, bfloat16 autocast" if gpu else "float32")
    out: dict[str, Any] = {"backbone": spec.backbone, "resolution": spec.resolution, "settings": settings}
    settings_timed = (("batch1_ms_per_frame", 1), ("throughput_ms_per_frame", options.batch))
    with progress_bar(total=len(settings_timed) * (options.warmup + options.repeats), unit="call",
                      desc=f"time {spec.backbone}@{spec.resolution}", enable=show_progress) as bar:
        for key, batch in settings_timed:
            frames = torch.randn(batch, 3, spec.resolution, spec.resolution, device=device)
            if gpu:
                frames = frames.to(memory_format=torch.channels_last)

            def call(frames: torch.Tensor = frames) -> None:
                with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
                    model(frames)

            out[key] = 1000 * _timed(call, device, options.repeats, options.warmup, lambda: bar.update(1)) / batch
    out["throughput_batch"] = options.batch
    return out


def measure(ctx: RunContext, options: LatencyOptions) -> dict[str, Any]:
    """Backbone latencies and every pair's own and estimated time per video, on the run's device."""
    if options.batch < 1 or options.repeats < 1 or options.warmup < 0:
        raise UsageError(f"--latency-batch and --repeats must be >= 1 and --warmup >= 0, got {asdict(options)}")
    device = ctx.device
    for stream in ctx.streams:  # found: a backbone declared at ingest ended the command in torchvision's words
        spec = ctx.store.manifest.streams[stream]
        if not is_known(spec.backbone):
            raise UsageError(f"the {stream} stream's backbone {spec.backbone}@{spec.resolution} was declared when its "
                             "features were ingested, and the suite cannot build it to time it, so no time per video "
                             "can be measured for this store (its GFLOPs, as declared, stand); time that backbone "
                             "where it runs")
    streams = {s: backbone_latency(ctx.store.manifest.streams[s], device, options, ctx.cfg.show_progress)
               for s in ctx.streams}
    bank = ctx.bank(ctx.eval_split)
    pairs: dict[str, dict[str, Any]] = {}
    # The whole measurement's progress (its ETA, in a log file): one unit per pair.
    with progress_bar(total=len(ctx.plans) * len(ctx.cfg.seeds), desc="latency", unit="pair",
                      enable=ctx.cfg.show_progress) as overall:
        for plan in ctx.plans:
            per_frame = {s: streams[s]["batch1_ms_per_frame" if plan.cls.online else "throughput_ms_per_frame"]
                         for s in plan.cls.streams}
            for seed in ctx.cfg.seeds:
                method = pair.load_trained(ctx, plan, seed)
                result = evaluate(method, bank, plan.train.eval_batch_size, show_progress=ctx.cfg.show_progress,
                                  desc=f"time {plan.name} seed {seed}", precision=ctx.cfg.precision)
                own = 1000 * result.seconds / len(result.video_ids)
                frames = {s: float(result.frames_read[s].mean()) for s in plan.cls.streams}
                backbone = sum(frames[s] * per_frame[s] for s in plan.cls.streams)
                record = PairRecord.load(results.record_path(ctx.pair_dir(plan, seed)))
                pairs.setdefault(plan.name, {})[str(seed)] = {
                    # which trained model was timed: the table uses the estimate only while the pair holds it
                    "model_sha256": (record.files or {}).get(results.WEIGHTS),
                    "online": plan.cls.online, "frames_per_video": frames, "own_ms_per_video": own,
                    "backbone_ms_per_video": backbone, "estimated_ms_per_video": own + backbone,
                    "own_time_batch": plan.train.eval_batch_size,
                    "backbone_setting": "batch 1 (online)" if plan.cls.online else f"batch {options.batch} (offline)",
                }
                overall.update(1)
    return {"streams": streams, "pairs": pairs, "options": asdict(options)}


def table(record: dict[str, Any]) -> str:
    """latency.md: per method, mean ± std over seeds, and the backbone latencies, with the device."""
    rows = []
    for name, seeds in record["pairs"].items():
        values = list(seeds.values())

        def stat(key: str, values: list[dict[str, Any]] = values) -> str:
            numbers = np.array([v[key] for v in values], dtype=np.float64)
            std = f" ± {numbers.std(ddof=1):.1f}" if len(numbers) > 1 else ""
            return f"{numbers.mean():.1f}{std}"

        rows.append({"Method": record["display"].get(name, name), "Online": "yes" if values[0]["online"] else "no",
                     "Own (ms/video)": stat("own_ms_per_video"), "Backbones (ms/video)": stat("backbone_ms_per_video"),
                     "Estimated (ms/video)": stat("estimated_ms_per_video"),
                     "Backbones at": values[0]["backbone_setting"]})
    own_batch = ", ".join(sorted({str(s["own_time_batch"]) for seeds in record["pairs"].values()
                                  for s in seeds.values()}))
    streams = "; ".join(f"{s}: {v['backbone']}@{v['resolution']} {v['batch1_ms_per_frame']:.2f} ms/frame at batch 1, "
                        f"{v['throughput_ms_per_frame']:.2f} at batch {v['throughput_batch']} ({v['settings']})"
                        for s, v in record["streams"].items())
    return (pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
            + f"\n\nMeasured on {device_label(record)} ({record['device']}, {record['threads']} threads) by `python -m "
            f"benchmark latency`, {record['written'][:10]}; valid for that device only. Backbone latency per frame: "
            f"{streams}. Estimated = own time + frames read per stream x that stream's per-frame latency. Own time: "
            f"the trained model evaluated again from the bank (features already extracted), batches of {own_batch} "
            "videos, so it is amortised over the batch; a stream processed one video at a time pays more.\n")


def run_latency(ctx: RunContext, options: LatencyOptions) -> dict[str, Any]:
    """Measure and write latency.json and latency.md under the run's folder."""
    record = {"written": provenance.now(), "command": provenance.invocation(), "device": str(ctx.device),
              "platform": ctx.platform, "dataset": {"fingerprint": ctx.fingerprint},
              "display": {p.name: p.display or p.cls.shown_name() for p in ctx.plans},
              "threads": torch.get_num_threads(), **measure(ctx, options)}
    atomic_write_json(ctx.out / results.LATENCY_JSON, record)
    atomic_write_text(ctx.out / results.LATENCY_MD, table(record))
    return record
