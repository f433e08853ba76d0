"""FrameExit (Ghodrati, Bejnordi and Habibian, CVPR 2021), on per-frame fine features.

The paper: frames are visited in a fixed coarse-to-fine order over the video (the positions
[5, 0, 9, 2, 7, 4, 6, 3, 8, 1] of 10 uniformly spaced frames), so that early steps already
cover the whole video; after each frame the features seen so far are max-pooled, a classifier
of that step predicts, and a gate of that step decides from the pooled representation whether
to exit. Training: cross-entropy of every step's classifier, plus a binary cross-entropy on
every gate against pseudo-labels that say whether the step's classifier is already right
(its loss below a threshold, ``exit_threshold``); ``gate_weight`` weighs the two.

Here, on the suite's features:

* a frame is the fine (ResNet-101) feature at one of 10 uniform positions (jittered within
  their segments in training, the centres at evaluation, as for Uniform); the paper's backbone
  is the same network at every step, so FrameExit reads only the fine stream;
* one linear classifier and one gate (a linear layer, as the paper's gate is small) per step;
  the pseudo-label of step t is "cross-entropy of step t's classifier below
  ``exit_threshold``", computed on the batch without gradient, as in the paper;
* evaluation steps through the order and stops a video at the first step whose gate says exit
  (probability above one half) or after the last: only the frames visited are read (the meter)
  and the classifiers and gates run once per visited step (the counted modules);
* **offline**, like the original: the order reads the middle of the video first. No online order
  is offered (reading the first frames first would be another method).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datasets.loading.bank import Batch
from datasets.loading.sampling import FrameSampler, UniformFrames
from methods.base import STANDARD_SEARCH_SPACE, MethodOutput, Preset, StepModule, TrainConfig, VideoMethod, bounded
from methods.losses import label_distribution
from methods.presets import EXTENDED_TUNE
from methods.registry import register_method

#: The paper's visiting order over 10 uniformly spaced frames (coarse to fine).
ORDER = (5, 0, 9, 2, 7, 4, 6, 3, 8, 1)


@register_method("frameexit")
class FrameExit(VideoMethod):
    summary = "fine frames in a coarse-to-fine order, max-pooled, a classifier and an exit gate per step (offline)"
    display_name = "FrameExit"
    citation = "Ghodrati et al.: FrameExit: Conditional early exiting for efficient video recognition, CVPR 2021"
    row = 3
    streams = ("fine",)
    online = False  # the order visits the middle and the end of the video first
    suite = "extended"

    @dataclass(frozen=True)
    class Hparams:
        # A step's pseudo-label says "exit" when its cross-entropy is below this.
        exit_threshold: float = bounded(0.3, gt=0)
        gate_weight: float = bounded(1.0, ge=0)
        dropout: float = bounded(0.5, ge=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # Other datasets than the synthetic default start from the class defaults.
    presets = {"default": Preset({"dropout": 0.2, "train": {"lr": 3e-3, "weight_decay": 1e-4}}, (EXTENDED_TUNE,))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        dim = dims["fine"]
        self.dropout = nn.Dropout(self.hp.dropout)
        self.classifiers = nn.ModuleList(nn.Linear(dim, num_classes) for _ in ORDER)
        self.gates = nn.ModuleList(nn.Linear(dim, 1) for _ in ORDER)

    def sampler(self, train: bool) -> FrameSampler:
        return UniformFrames(len(ORDER))

    def forward(self, batch: Batch) -> MethodOutput:
        b, device = batch.size, batch.mask.device
        active = torch.ones(b, dtype=torch.bool, device=device)  # still visiting frames
        visited = torch.zeros(b, dtype=torch.long, device=device)
        pooled = None
        step_logits, gate_logits = [], []
        scores = torch.zeros(b, self.num_classes, device=device)
        for t, position in enumerate(ORDER):
            reading = active & batch.mask[:, position]
            feature = batch.features.read_step("fine", position, where=reading)  # zeros where not read
            if pooled is None:
                pooled = feature
            else:
                pooled = torch.where(reading[:, None], torch.maximum(pooled, feature), pooled)
            visited = visited + reading.long()
            logits = self.classifiers[t](self.dropout(pooled))
            gate = self.gates[t](pooled).squeeze(-1)
            step_logits.append(logits)
            gate_logits.append(gate)
            scores = torch.where(active[:, None], logits.softmax(-1), scores)
            if not self.training:
                active = active & (gate <= 0)  # sigmoid(gate) > 1/2: exit after this step
                if not bool(active.any()):
                    break
        counts = visited.clamp_min(1)
        return MethodOutput(scores=scores, step_counts={"classifier": counts, "gate": counts},
                            extras={"step_logits": torch.stack(step_logits, 1),
                                    "gate_logits": torch.stack(gate_logits, 1)})

    def loss(self, output: MethodOutput, batch: Batch):
        logits, gates = output.extras["step_logits"], output.extras["gate_logits"]  # (B, S, C), (B, S)
        target = label_distribution(batch.labels).unsqueeze(1)
        ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1)  # (B, S)
        pseudo = (ce.detach() < self.hp.exit_threshold).to(gates.dtype)
        gate = F.binary_cross_entropy_with_logits(gates, pseudo)
        loss = ce.mean() + self.hp.gate_weight * gate
        return loss, {"ce": ce.mean().item(), "gate_bce": gate.item(), "exit_rate": pseudo.mean().item()}

    def cost_modules(self) -> dict[str, StepModule]:
        dim = self.dims["fine"]
        # Every step's classifier (and gate) has the same shape, so one of each gives the per-step cost.
        return {"classifier": StepModule(self.classifiers[0], lambda: (torch.zeros(1, dim),)),
                "gate": StepModule(self.gates[0], lambda: (torch.zeros(1, dim),))}
