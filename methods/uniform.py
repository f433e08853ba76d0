"""UNIFORM (paper section 3.2, baseline 1): the strong uniform-testing baseline.

A frame-level classifier on the fine features of 25 uniformly sampled frames; the video's
scores are the average of the frame-level class probabilities. It is trained per frame
(every sampled frame carries its video's labels), on frames jittered within their
segments. The classifier is linear by default: on ResNet-101 features that is the
network's own last layer. Cost: 25 fine frames read (the meter) plus 25 classifier runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
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
)
from methods.losses import soft_cross_entropy
from methods.presets import TABLE1_TUNE
from methods.registry import register_method


def frame_classifier(dim: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    """Linear classifier (``hidden == 0``) or a one-hidden-layer MLP, with input dropout."""
    if hidden == 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_classes))
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


@register_method("uniform")
class Uniform(VideoMethod):
    summary = "frame classifier on fine features of 25 uniform frames, probabilities averaged"
    display_name = "Uniform"
    citation = "the frame-averaging baseline of LiteEval's Table 1 (Wu et al., NeurIPS 2019)"
    row = 0
    streams = ("fine",)
    online = False  # spreading frames over the video needs its length
    suite = "paper"  # a row of the paper's Table 1

    cost_knob = CostKnob("frames", (3, 6, 12, 18, 25), "evaluation", "frames read")

    @dataclass(frozen=True)
    class Hparams:
        frames: int = bounded(25, ge=1)
        hidden: int = bounded(0, ge=0)
        dropout: float = bounded(0.5, ge=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # Other datasets than the synthetic default start from the class defaults.
    presets = {"default": Preset({"dropout": 0.5, "train": {"lr": 3e-3, "weight_decay": 0.0}}, (TABLE1_TUNE,))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        self.classifier = frame_classifier(dims["fine"], num_classes, self.hp.hidden, self.hp.dropout)

    def sampler(self, train: bool) -> FrameSampler:
        return UniformFrames(self.hp.frames)

    def forward(self, batch: Batch) -> MethodOutput:
        logits = self.classifier(batch.read("fine"))  # (B, K, C)
        weights = batch.mask.unsqueeze(-1).to(logits.dtype)
        probs = (logits.softmax(-1) * weights).sum(1) / weights.sum(1)
        return MethodOutput(scores=probs, step_counts={"classifier": batch.steps}, extras={"frame_logits": logits})

    def loss(self, output: MethodOutput, batch: Batch):
        loss = soft_cross_entropy(output.extras["frame_logits"], batch.labels)
        return loss, {"ce": loss.item()}

    def cost_modules(self) -> dict[str, StepModule]:
        dim = self.dims["fine"]
        return {"classifier": StepModule(self.classifier, lambda: (torch.zeros(1, dim),))}
