"""Training and evaluation loops shared by every method.

The loops only move batches from the shared banks through a method: the method decides
what to read (through the metered accessor), the harness decides everything else (optimiser,
seeds, metering, timing), so every method is trained and measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from datasets.bank import Batch, FeatureBank
from datasets.progress import progress_bar
from datasets.sampling import FrameSampler
from methods.base import MethodOutput, TrainConfig, VideoMethod


def seed_everything(seed: int) -> None:
    """Seed torch's (CPU and CUDA) and numpy's global generators."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class TrainStats:
    seconds: float
    epochs: int
    final_loss: float
    history: list[dict[str, float]] = field(default_factory=list)


def fit(
    method: VideoMethod, bank: FeatureBank, config: TrainConfig, *, seed: int, show_progress: bool = True
) -> TrainStats:
    """Train ``method`` on ``bank`` with Adam for ``config.epochs`` epochs."""
    optimiser = torch.optim.Adam(method.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    steps_per_epoch = -(-bank.num_videos // config.batch_size)
    start = time.perf_counter()
    loss_value = float("nan")
    with progress_bar(total=config.epochs * steps_per_epoch, desc=f"train {method.name}", unit="batch",
                      enable=show_progress) as bar:
        for epoch in range(config.epochs):
            method.train()
            method.on_epoch_start(epoch, config.epochs)
            totals: dict[str, float] = {}
            batches = 0
            for batch in bank.batches(config.batch_size, method.sampler(train=True), train=True,
                                      generator=generator):
                output = method(batch)
                loss, logs = method.loss(output, batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"{method.name}: the training loss became {float(loss)} in epoch {epoch + 1}; "
                        f"lower the learning rate (config file: [{method.name}.train] lr = ...)"
                    )
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(method.parameters(), config.grad_clip)
                optimiser.step()
                loss_value = loss.item()
                for key, value in {"loss": loss_value, **logs}.items():
                    totals[key] = totals.get(key, 0.0) + value
                batches += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss_value:.3f}")
            history.append({key: value / max(batches, 1) for key, value in totals.items()})
    return TrainStats(seconds=time.perf_counter() - start, epochs=config.epochs, final_loss=loss_value,
                      history=history)


@dataclass
class Evaluation:
    """Per-video results of one evaluation pass, in bank order."""

    video_ids: list[str]
    scores: np.ndarray  # (N, C) float32
    labels: np.ndarray  # (N, C) uint8
    frames_read: dict[str, np.ndarray]  # stream -> (N,) distinct frames read (from the meter)
    frames_seen: np.ndarray  # (N,) one past the latest frame read in any stream (the meter's horizon)
    step_counts: dict[str, np.ndarray]  # module -> (N,) runs
    seconds: float
    diagnostics: dict[str, list] = field(default_factory=dict)


@torch.no_grad()
def evaluate(
    method: VideoMethod,
    bank: FeatureBank,
    batch_size: int,
    *,
    show_progress: bool = True,
    forward: Callable[[Batch], MethodOutput] | None = None,
    sampler: FrameSampler | None = None,
    horizons: Sequence[int] | np.ndarray | None = None,
    desc: str | None = None,
) -> Evaluation:
    """Run ``method`` over every video of ``bank`` with a fresh meter; no gradients.

    The defaults evaluate the method as it is (``method(batch)`` on its evaluation
    sampler). Online evaluation changes the call (``forward``, e.g. a budget hook), the
    frames (``sampler``) or how much of each video has arrived (``horizons``, see
    ``FeatureBank.batches``); the metering and the cost are the same either way.
    """
    method.eval()
    forward = forward or method
    sampler = sampler or method.sampler(train=False)
    meter = bank.new_meter()
    n, c = bank.num_videos, bank.num_classes
    scores = np.zeros((n, c), dtype=np.float32)
    counts: dict[str, np.ndarray] = {}
    diagnostics: dict[str, list] = {}
    if bank.device.type == "cuda":
        torch.cuda.synchronize(bank.device)
    start = time.perf_counter()
    with progress_bar(total=n, desc=desc or f"eval {method.name}", unit="video", enable=show_progress) as bar:
        for batch in bank.batches(batch_size, sampler, meter=meter, horizons=horizons):
            output = forward(batch)
            rows = batch.index.cpu().numpy()
            scores[rows] = output.scores.float().cpu().numpy()
            for name, runs in output.step_counts.items():
                counts.setdefault(name, np.zeros(n, dtype=np.int64))[rows] = runs.cpu().numpy()
            lengths = batch.lengths.cpu().numpy()
            grid = batch.mask.shape[1]
            for name, values in output.diagnostics.items():
                store = diagnostics.setdefault(name, [None] * n)
                per_grid_step = values.dim() >= 2 and values.shape[1] == grid
                for row, length, value in zip(rows.tolist(), lengths.tolist(), values.cpu().numpy()):
                    # Diagnostics laid out on the frame grid are cut to the video's length
                    # (the rest is padding); others (e.g. a list of glimpses) are kept whole.
                    store[row] = value[:length] if per_grid_step else value
            bar.update(batch.size)
    if bank.device.type == "cuda":
        torch.cuda.synchronize(bank.device)
    seconds = time.perf_counter() - start
    return Evaluation(
        video_ids=list(bank.video_ids),
        scores=scores,
        labels=bank.labels.cpu().numpy().astype(np.uint8),
        frames_read={s: meter.frames_read(s).cpu().numpy() for s in bank.streams},
        frames_seen=meter.horizon().cpu().numpy(),
        step_counts=counts,
        seconds=seconds,
        diagnostics=diagnostics,
    )
