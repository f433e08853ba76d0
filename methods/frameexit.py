"""FrameExit (Ghodrati, Bejnordi and Habibian, CVPR 2021), on per-frame fine features.

The paper: frames are visited in a fixed coarse-to-fine order over the video (the positions
[5, 0, 9, 2, 7, 4, 6, 3, 8, 1] of 10 uniformly spaced frames), so that early steps already
cover the whole video; after each frame the features seen so far are max-pooled, a classifier
of that step predicts, and a gate of that step decides whether to exit. Training: cross-entropy
of every step's classifier, plus a binary cross-entropy on every gate against pseudo-labels that
say whether the step's classifier is already right (its loss below a threshold,
``exit_threshold``); ``gate_weight`` weighs the two.

``architecture = "official"`` (the default) is the authors' released inference model
(Qualcomm-AI-research/FrameExit, model/adaptive_models.py), on the suite's features:

* each frame's feature goes through an MLP (Linear to ``mlp_ratio`` x its size, 2048 -> 4096 in
  the release; BatchNorm; ReLU), and z_t is the running max of those (max-pooling over time);
* the first frame has no gate: the video exits there when step 0's classifier is confident,
  its top probability above ``first_threshold`` (0.99);
* the gate of step t >= 1 reads [z_t, z_{t-1}]: each through the same two 1x1 convolutions
  (to 128, then 64 channels, each with BatchNorm and ReLU; on a 1x1 map, linear layers), the two
  concatenated, a linear layer and a sigmoid, exit above one half; the last step always exits;
* a step's classifier runs where it is needed, as in the release: at step 0 (for its
  confidence) and at the exit step, so a video costs one MLP per frame read, the gates of the
  steps it passed and one or two classifier runs.

``architecture = "linear"`` is the suite's first reading: raw features max-pooled, one linear gate
per step on z_t alone, including step 0, and every visited step's classifier counted. The
release has no training code; both train with the paper's loss above (the gate pseudo-labels
cover steps 1 to 9 in the official architecture, whose step 0 exits by confidence).

Here, on the suite's features:

* a frame is the fine (ResNet-101) feature at one of 10 uniform positions (jittered within
  their segments in training, the centres at evaluation, as for Uniform); the paper's backbone
  is the same network at every step, so FrameExit reads only the fine stream;
* evaluation steps through the order and stops a video at its exit step: only the frames
  visited are read (the meter) and the counted modules say what ran;
* **offline**, like the original: the order reads the middle of the video first. No online order
  is offered (reading the first frames first would be another method).

Which architecture the table uses is decided on validation (results/default-frameexit-architectures,
seed 0; its tune.md has the numbers, docs/methods.md every method's readings side by side); the
`default` preset holds the choice, the official architecture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from datasets.loading.bank import Batch
from datasets.loading.sampling import FrameSampler, UniformFrames
from methods.base import (
    STANDARD_SEARCH_SPACE,
    CostKnob,
    MethodOutput,
    Preset,
    StepModule,
    TrainConfig,
    VideoMethod,
    bounded,
    choice,
)
from methods.losses import label_distribution
from methods.presets import EXTENDED_TUNE, FRAMEEXIT_ARCHITECTURE
from methods.registry import register_method

#: The paper's visiting order over 10 uniformly spaced frames (coarse to fine).
ORDER = (5, 0, 9, 2, 7, 4, 6, 3, 8, 1)



def frame_mlp(dim: int, ratio: float) -> tuple[nn.Module, int]:
    """The release's per-frame embedding (Linear to ``ratio`` x ``dim``, BatchNorm, ReLU; 2048 ->
    4096 there) and its width. OCSampler's released classifier is this model's head, ported."""
    width = max(1, round(ratio * dim))
    return nn.Sequential(nn.Linear(dim, width), nn.BatchNorm1d(width), nn.ReLU()), width


class ExitGate(nn.Module):
    """The release's gate of one step: [z_t, z_{t-1}], each through the same two 1x1 convolutions
    (here linear layers on the pooled vector) with BatchNorm and ReLU, concatenated, then a
    linear layer; a logit (sigmoid > 1/2: exit)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Linear(dim, 128), nn.BatchNorm1d(128), nn.ReLU(),
                                    nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU())
        self.linear = nn.Linear(128, 1)

    def forward(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.cat([self.reduce(current), self.reduce(previous)], dim=1)).squeeze(-1)


@register_method("frameexit")
class FrameExit(VideoMethod):
    summary = "fine frames in a coarse-to-fine order, max-pooled, a classifier and an exit gate per step (offline)"
    display_name = "FrameExit"
    citation = "Ghodrati et al.: FrameExit: Conditional early exiting for efficient video recognition, CVPR 2021"
    row = 3
    streams = ("fine",)
    online = False  # the order visits the middle and the end of the video first
    suite = "extended"

    cost_knob = CostKnob("gate_threshold", (0.05, 0.2, 0.5, 0.95, 0.999), "evaluation", "exit gate threshold")

    @dataclass(frozen=True)
    class Hparams:
        # A step's pseudo-label says "exit" when its cross-entropy is below this.
        exit_threshold: float = bounded(0.3, gt=0)
        gate_weight: float = bounded(1.0, ge=0)
        dropout: float = bounded(0.5, ge=0, lt=1)
        architecture: str = choice("official", ("official", "linear"), before="linear")  # see the module docstring
        mlp_ratio: float = bounded(2.0, gt=0)  # the per-frame MLP's width over the feature's (release: 4096/2048)
        first_threshold: float = bounded(0.99, gt=0, le=1)  # step 0 exits when its top probability is above
        # A gated step exits when sigmoid(gate) is above this (evaluation only; the cost knob).
        gate_threshold: float = bounded(0.5, gt=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # Other datasets than the synthetic default start from the class defaults.
    presets = {"default": Preset({"dropout": 0.5, "train": {"lr": 1e-3, "weight_decay": 0.0},
                                  "architecture": "official"}, (EXTENDED_TUNE, FRAMEEXIT_ARCHITECTURE))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        official = self.hp.architecture == "official"
        dim = dims["fine"]
        self.mlp, width = frame_mlp(dim, self.hp.mlp_ratio) if official else (nn.Identity(), dim)
        self.dropout = nn.Dropout(self.hp.dropout)
        self.classifiers = nn.ModuleList(nn.Linear(width, num_classes) for _ in ORDER)
        # Official: no gate at step 0 (its confidence decides) nor at the last step (it always exits).
        self.gates = nn.ModuleList(ExitGate(width) for _ in ORDER[1:-1]) if official else nn.ModuleList(
            nn.Linear(dim, 1) for _ in ORDER)
        self.width = width

    def sampler(self, train: bool) -> FrameSampler:
        return UniformFrames(len(ORDER))

    def _gate(self, t: int, pooled: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor | None:
        """Step t's exit logit (None: the step has no gate)."""
        if self.hp.architecture == "linear":
            return self.gates[t](pooled).squeeze(-1)
        if t == 0 or t == len(ORDER) - 1:
            return None
        assert previous is not None
        return self.gates[t - 1](pooled, previous)

    def forward(self, batch: Batch) -> MethodOutput:
        b, device = batch.size, batch.mask.device
        official = self.hp.architecture == "official"
        active = torch.ones(b, dtype=torch.bool, device=device)  # still visiting frames
        visited = torch.zeros(b, dtype=torch.long, device=device)
        gates_run = torch.zeros(b, dtype=torch.long, device=device)
        exit_step = torch.full((b,), len(ORDER) - 1, dtype=torch.long, device=device)
        pooled: torch.Tensor | None = None
        step_logits, gate_logits = [], []
        scores = torch.zeros(b, self.num_classes, device=device)
        for t, position in enumerate(ORDER):
            reading = active & batch.mask[:, position]
            feature = batch.features.read_step("fine", position, where=reading)  # zeros where not read
            embedded = self.mlp(feature)
            previous = pooled
            pooled = embedded if previous is None else torch.where(
                reading[:, None], torch.maximum(previous, embedded), previous)
            visited = visited + reading.long()
            logits = self.classifiers[t](self.dropout(pooled))
            gate = self._gate(t, pooled, previous)
            step_logits.append(logits)
            gate_logits.append(gate if gate is not None else logits.new_zeros(b))
            scores = torch.where(active[:, None], logits.softmax(-1), scores)
            if self.training:
                continue
            if gate is not None:
                gates_run = gates_run + active.long()
                # sigmoid(gate) > gate_threshold, as a logit (at 1/2: gate > 0 exactly)
                leaving = active & (gate > math.log(self.hp.gate_threshold / (1 - self.hp.gate_threshold)))
            elif official and t == 0:
                leaving = active & (logits.softmax(-1).max(-1).values > self.hp.first_threshold)
            else:
                leaving = active  # the last step
            exit_step = torch.where(leaving, torch.full_like(exit_step, t), exit_step)
            active = active & ~leaving
            if not bool(active.any()):
                break
        counts = visited.clamp_min(1)
        if official:
            # The release runs step 0's classifier (for its confidence) and the exit step's.
            step_counts = {"mlp": counts, "classifier": 1 + (exit_step > 0).long(), "gate": gates_run}
        else:
            step_counts = {"classifier": counts, "gate": counts}
        return MethodOutput(scores=scores, step_counts=step_counts,
                            extras={"step_logits": torch.stack(step_logits, 1),
                                    "gate_logits": torch.stack(gate_logits, 1)})

    def loss(self, output: MethodOutput, batch: Batch):
        logits, gates = output.extras["step_logits"], output.extras["gate_logits"]  # (B, S, C), (B, S)
        target = label_distribution(batch.labels).unsqueeze(1)
        ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1)  # (B, S)
        pseudo = (ce.detach() < self.hp.exit_threshold).to(gates.dtype)
        gated = slice(1, -1) if self.hp.architecture == "official" else slice(None)  # the steps with a gate
        gate = F.binary_cross_entropy_with_logits(gates[:, gated], pseudo[:, gated])
        loss = ce.mean() + self.hp.gate_weight * gate
        return loss, {"ce": ce.mean().item(), "gate_bce": gate.item(), "exit_rate": pseudo.mean().item()}

    def cost_modules(self) -> dict[str, StepModule]:
        dim, width = self.dims["fine"], self.width
        # Every step's classifier (and gate) has the same shape, so one of each gives the per-step cost.
        modules = {"classifier": StepModule(self.classifiers[0], lambda: (torch.zeros(1, width),))}
        if self.hp.architecture == "official":
            modules["mlp"] = StepModule(self.mlp, lambda: (torch.zeros(1, dim),))
            modules["gate"] = StepModule(self.gates[0], lambda: (torch.zeros(1, width), torch.zeros(1, width)))
        else:
            modules["gate"] = StepModule(self.gates[0], lambda: (torch.zeros(1, dim),))
        return modules
