"""The training budget: one rule for every method of a run.

A method's budget is counted in optimizer steps, never per method: every method of a run
trains for the same number of steps of the same batch size,

    steps = max(min_steps, ceil(epochs * N_train / batch_size))      (or exactly ``steps``)

so a small dataset still gets ``min_steps`` (a floor that does not depend on its size) and a
large one ``epochs`` passes. Within that budget the model is validated ``validations`` times
(evenly spread; the last at the final step) on the held-out validation rows, the checkpoint
the selection rule chooses is kept (benchmark/protocol/selection.py: the cheapest within one standard
error of the best validation mAP), and training stops early once ``patience`` validations in
a row have not improved on the best validation mAP. Per-method learning rates and model sizes
are the methods' own settings (methods/base.py ``TrainConfig``, ``Hparams``); the budget is
the run's.

The default numbers (30 passes, a floor of 600 steps, 20 validations, patience 6) were set a
priori, before any result under this rule existed, and were not tuned on any split: 30 passes is
what the baselines trained for before the rule; 600 steps of 64 videos (about 38,000 video
samples) is close to what 30 passes give on the synthetic default (718 steps), so the floor
only matters for smaller datasets. On the default, LiteEval's best checkpoints came at steps
467 to 683 of 718 (results/default): a longer budget might still help it, and every method
would get it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from datasets.common.errors import UsageError


@dataclass(frozen=True)
class Budget:
    epochs: float = 30.0  # passes over the training rows (when that is more than min_steps)
    min_steps: int = 600  # floor, whatever the dataset's size
    steps: int | None = None  # exact number of steps (replaces the rule above)
    batch_size: int = 64
    validations: int = 20  # validation passes spread over the budget
    patience: int | None = 6  # validations without improvement before stopping; None: never stop early

    def __post_init__(self) -> None:
        checks = [
            ("--epochs", math.isfinite(self.epochs) and self.epochs > 0,
             "a positive, finite number of passes, e.g. 30"),
            ("--min-steps", self.min_steps >= 1, "a positive number of steps, e.g. 600"),
            ("--steps", self.steps is None or self.steps >= 1, "a positive number of steps"),
            ("--batch-size", self.batch_size >= 1, "a positive number of videos, e.g. 64"),
            ("--validations", self.validations >= 1, "at least 1"),
            ("--patience", self.patience is None or self.patience >= 1, "at least 1 (or leave it out)"),
        ]
        for flag, ok, fix in checks:
            if not ok:
                value = {"--epochs": self.epochs, "--min-steps": self.min_steps, "--steps": self.steps,
                         "--batch-size": self.batch_size, "--validations": self.validations,
                         "--patience": self.patience}[flag]
                raise UsageError(f"{flag} {value}: must be {fix}")

    def total_steps(self, num_train_videos: int) -> int:
        """Optimizer steps for a training set of ``num_train_videos`` (the same for every method)."""
        if self.steps is not None:
            return self.steps
        return max(self.min_steps, math.ceil(self.epochs * num_train_videos / self.batch_size))

    def validation_steps(self, total: int) -> list[int]:
        """The steps after which the model is validated: evenly spread, the last one at ``total``."""
        count = min(self.validations, total)
        return sorted({math.ceil(total * (i + 1) / count) for i in range(count)})

    def describe(self, num_train_videos: int) -> str:
        """The rule and what it gives here, for the table's caption."""
        total = self.total_steps(num_train_videos)
        rule = (f"{self.steps} steps" if self.steps is not None else
                f"max({self.min_steps}, {self.epochs:g} epochs) = {total} steps")
        stop = (f", early stop after {self.patience} validations without gain" if self.patience is not None else "")
        return (f"the same for every method, {rule} of batch {self.batch_size}, of {len(self.validation_steps(total))} "
                "validations the checkpoint kept is the cheapest within one standard error of the best validation "
                f"mAP{stop}")

    def to_dict(self, num_train_videos: int) -> dict[str, Any]:
        return {**asdict(self), "total_steps": self.total_steps(num_train_videos)}
