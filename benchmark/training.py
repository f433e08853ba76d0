"""Training and evaluation loops shared by every method.

The loops only move batches from the shared banks through a method: the method decides
what to read (through the metered accessor), the harness decides everything else (optimiser,
seeds, metering, timing), so every method is trained and measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmark.precision import DEFAULT as DEFAULT_PRECISION
from benchmark.precision import computing_in
from benchmark.protocol.budget import Budget
from benchmark.protocol.selection import RULE, Candidate, Selection, choose
from datasets.common.errors import UsageError, UserError
from datasets.common.progress import progress_bar
from datasets.loading.bank import Batch, FeatureBank, frame_ranges
from datasets.loading.sampling import FrameSampler
from methods.base import MethodOutput, MethodOutputError, TrainConfig, VideoMethod, method_failure, output_problem


class DivergedError(UserError, FloatingPointError):
    """The training loss stopped being finite (the fix is usually a lower learning rate)."""


@contextmanager
def blame(method: VideoMethod, stage: str) -> Iterator[None]:
    """Raise what the method's own code raises in ``stage`` as one line that names the method
    and where (methods/base.py ``method_failure``); the suite's own one-line errors pass."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a plug-in raises is reported as the plug-in's
        raise method_failure(method.name, stage, exc) from exc


def seed_everything(seed: int) -> None:
    """Seed torch's (CPU and CUDA) and numpy's global generators."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


@dataclass
class TrainStats:
    seconds: float
    steps: int  # optimizer steps run (fewer than the budget when stopped early)
    budget_steps: int
    epochs: float  # passes over the training rows that ``steps`` amount to
    final_loss: float
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: mean of the logged numbers
    selection: Selection | None = None  # the checkpoints and the kept one (None: no validation, the last step kept)
    stopped_early: bool = False

    @property
    def chosen_step(self) -> int | None:
        """The step of the kept checkpoint (None: no validation, the last step is kept)."""
        return None if self.selection is None else self.selection.chosen

    def selection_record(self) -> dict[str, Any]:
        """How the kept checkpoint was chosen, for the pair's record: every validation's
        mAP, GFLOPs and verdict (benchmark/protocol/selection.py)."""
        if self.selection is None:
            return {"criterion": "no validation: the last step is kept", "chosen_step": None,
                    "stopped_early": self.stopped_early, "validations": []}
        chosen, best = self.selection.verdict(self.selection.chosen), self.selection.verdict(self.selection.best)
        return {
            "criterion": RULE,
            "chosen_step": self.selection.chosen, "chosen_validation_map": chosen.map,
            "chosen_validation_gflops": chosen.gflops,
            "best_step": self.selection.best, "best_validation_map": best.map,
            "stopped_early": self.stopped_early,
            "validations": [{"step": v.key, **v.to_dict()} for v in self.selection.verdicts],
        }


#: A validation: the method (in training mode) and the step -> the checkpoint scored on the
#: validation videos (mAP, its resamples, GFLOPs; benchmark/protocol/selection.py).
Validator = Callable[[VideoMethod, int], Candidate]


def fit(
    method: VideoMethod,
    bank: FeatureBank,
    config: TrainConfig,
    budget: Budget,
    *,
    seed: int,
    rows: np.ndarray | None = None,
    validate: Validator | None = None,
    show_progress: bool = True,
    precision: str = DEFAULT_PRECISION,
) -> TrainStats:
    """Train ``method`` with Adam for the run's step budget on ``rows`` of ``bank``.

    With ``validate``, the model is scored at the budget's validation steps; training stops
    after ``budget.patience`` validations without a higher validation mAP than every earlier
    one, and the checkpoint the selection rule chooses (benchmark/protocol/selection.py: the cheapest
    within the validation noise of the best) is restored at the end. A method trained in stages
    (``phase_starts``) is chosen among the checkpoints of its last stage, whose early stop counts
    from that stage's start."""
    optimiser = torch.optim.Adam(method.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    num_rows = bank.num_videos if rows is None else len(rows)
    total = budget.total_steps(num_rows)
    checkpoints = set(budget.validation_steps(total)) if validate is not None else set()
    steps_per_epoch = -(-num_rows // budget.batch_size)
    planned_epochs = -(-total // steps_per_epoch)
    history: list[dict[str, float]] = []
    candidates: list[Candidate] = []
    states: dict[int, dict[str, torch.Tensor]] = {}  # every scored checkpoint: any may be chosen at the end
    best_score, since_best = -float("inf"), 0
    with blame(method, "phase_starts"):
        phase_starts = set(method.phase_starts(total))
    step, epoch, stopped_early = 0, 0, False
    start = time.perf_counter()
    loss_value = float("nan")
    with progress_bar(total=total, desc=f"train {method.name} seed {seed}", unit="step", enable=show_progress) as bar:
        while step < total and not stopped_early:
            method.train()
            with blame(method, "on_epoch_start"):
                method.on_epoch_start(epoch, planned_epochs)
            totals: dict[str, float] = {}
            batches = 0
            for batch in bank.batches(budget.batch_size, method.sampler(train=True), train=True,
                                      generator=generator, rows=rows, streams=method.streams, reader=method.name):
                if step in phase_starts:  # a new stage of training (methods/base.py phase_starts):
                    # an earlier stage's checkpoint is not the method, and its plateau is not this one's
                    candidates, states, best_score, since_best = [], {}, -float("inf"), 0
                with blame(method, "on_step"):
                    method.on_step(step, total)
                with computing_in(precision, bank.device):
                    with blame(method, "forward"):
                        output = method(batch)
                    with blame(method, "loss"):
                        loss, logs = method.loss(output, batch)
                if not torch.isfinite(loss):
                    raise DivergedError(
                        f"{method.name}: the training loss became {float(loss.detach())} at step {step + 1}; "
                        f"lower the learning rate (config file: [{method.name}.train] lr = ...)"
                    )
                optimiser.zero_grad(set_to_none=True)
                with blame(method, "backward"):
                    loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(method.parameters(), config.grad_clip)
                optimiser.step()
                loss_value = loss.item()
                for key, value in {"loss": loss_value, **logs}.items():
                    totals[key] = totals.get(key, 0.0) + value
                batches += 1
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss_value:.3f}")
                if validate is not None and step in checkpoints:
                    scored = validate(method, step)
                    method.train()
                    candidates.append(scored)
                    states[step] = {k: v.detach().clone() for k, v in method.state_dict().items()}
                    if scored.map > best_score:
                        best_score, since_best = scored.map, 0
                    else:
                        since_best += 1
                        stopped_early = budget.patience is not None and since_best >= budget.patience
                if step >= total or stopped_early:
                    break
            history.append({key: value / max(batches, 1) for key, value in totals.items()})
            epoch += 1
    selection = choose(candidates) if candidates else None
    if selection is not None:
        method.load_state_dict(states[selection.chosen])
    return TrainStats(
        seconds=time.perf_counter() - start, steps=step, budget_steps=total, epochs=step / steps_per_epoch,
        final_loss=loss_value, history=history, selection=selection, stopped_early=stopped_early,
    )


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
    lengths: np.ndarray  # (N,) frames per video
    read_masks: dict[str, np.ndarray] = field(default_factory=dict)  # stream -> (sum of lengths,) bool, video by video
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
    rows: np.ndarray | None = None,
    precision: str = DEFAULT_PRECISION,
) -> Evaluation:
    """Run ``method`` over every video of ``bank`` with a fresh meter; no gradients.

    The defaults evaluate the method as it is (``method(batch)`` on its evaluation
    sampler). Online evaluation changes the call (``forward``, e.g. a budget hook), the
    frames (``sampler``) or how much of each video has arrived (``horizons``, see
    ``FeatureBank.batches``); the metering and the cost are the same either way. ``rows``
    evaluates only those videos of the bank (model selection on the validation rows of
    the training bank); the results are then in the order of ``rows``.
    """
    method.eval()
    forward = forward or method
    sampler = sampler or method.sampler(train=False)
    meter = bank.new_meter()
    modules = set(method.cost_modules())
    rows = np.arange(bank.num_videos) if rows is None else np.asarray(rows, dtype=np.int64)
    position = np.full(bank.num_videos, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    n, c = len(rows), bank.num_classes
    scores = np.zeros((n, c), dtype=np.float32)
    counts: dict[str, np.ndarray] = {}
    diagnostics: dict[str, list] = {}
    if bank.device.type == "cuda":
        torch.cuda.synchronize(bank.device)
    start = time.perf_counter()
    with progress_bar(total=n, desc=desc or f"eval {method.name}", unit="video", enable=show_progress) as bar:
        for batch in bank.batches(batch_size, sampler, meter=meter, horizons=horizons, rows=rows,
                                  streams=method.streams, reader=method.name):
            with blame(method, "forward"), computing_in(precision, bank.device):
                output = forward(batch)
            problem = output_problem(output, batch.size, bank.num_classes, modules)
            if problem:
                raise MethodOutputError(f"method {method.name!r}: {problem}; fix its forward()")
            at = position[batch.index.cpu().numpy()]
            scores[at] = output.scores.float().cpu().numpy()
            for name, runs in output.step_counts.items():
                counts.setdefault(name, np.zeros(n, dtype=np.int64))[at] = runs.cpu().numpy()
            lengths = batch.lengths.cpu().numpy()
            grid = batch.mask.shape[1]
            for name, values in output.diagnostics.items():
                store = diagnostics.setdefault(name, [None] * n)
                per_grid_step = values.dim() >= 2 and values.shape[1] == grid
                host = (values.float() if values.is_floating_point() else values).cpu().numpy()
                for row, length, value in zip(at.tolist(), lengths.tolist(), host):
                    # Diagnostics laid out on the frame grid are cut to the video's length
                    # (the rest is padding); others (e.g. a list of glimpses) are kept whole.
                    store[row] = value[:length] if per_grid_step else value
            bar.update(batch.size)
    if bank.device.type == "cuda":
        torch.cuda.synchronize(bank.device)
    seconds = time.perf_counter() - start
    bad = ~np.isfinite(scores).all(axis=1)
    if bad.any():
        first = bank.video_ids[int(rows[np.argmax(bad)])]
        raise UsageError(
            f"method {method.name!r} returned non-finite scores (NaN or inf) for {int(bad.sum())} of {n} videos "
            f"(first: {first!r}); fix its forward pass (average precision is undefined on them)")
    lengths = bank.lengths_host[rows]
    frames = frame_ranges(bank.offsets_host[rows], lengths)
    return Evaluation(
        video_ids=[bank.video_ids[i] for i in rows.tolist()],
        scores=scores,
        labels=bank.labels.cpu().numpy().astype(np.uint8)[rows],
        frames_read={s: meter.frames_read(s).cpu().numpy()[rows] for s in bank.streams},
        frames_seen=meter.horizon().cpu().numpy()[rows],
        step_counts=counts,
        seconds=seconds,
        diagnostics=diagnostics,
        lengths=lengths,
        read_masks={s: meter.read_mask(s).cpu().numpy()[frames] for s in bank.streams},
    )
