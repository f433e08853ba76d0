"""A complete plug-in method: mean-pooled coarse features of every frame, then a linear
classifier. It never reads a fine feature, so it costs about 0.08 GFLOPs per frame.

Run it in the comparison without touching the suite:

    python -m benchmark run --methods uniform lstm docs/examples/coarse_mean.py:CoarseMean

(or register it in your own package under the entry-point group "liteeval_bench.methods").
"""

from dataclasses import dataclass

import torch
from torch import nn

from datasets import AllFrames
from methods.base import MethodOutput, StepModule, TrainConfig, VideoMethod, bounded
from methods.losses import soft_cross_entropy


class CoarseMean(VideoMethod):
    name = "coarse_mean"
    summary = "mean of the coarse features of every frame, linear classifier"
    display_name = "Coarse mean"  # its row name in tables and figures; `row` and `citation` are optional too
    streams = ("coarse",)  # the bank loads (and the meter watches) only what is listed here
    online = False  # the mean uses the whole video

    @dataclass(frozen=True)
    class Hparams:  # every key a config file may set; unknown keys and values out of bounds are errors
        dropout: float = bounded(0.2, ge=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3)  # how long it trains is the run's budget, the same for all
    # What `python -m benchmark tune` may try: Hparams fields, or "train.<TrainConfig field>".
    search_space = {"train.lr": (3e-4, 1e-3, 3e-3), "train.weight_decay": (0.0, 1e-4), "dropout": (0.0, 0.2, 0.5)}

    def __init__(self, num_classes, dims, **hparams):
        super().__init__(num_classes, dims, **hparams)
        self.dropout = nn.Dropout(self.hp.dropout)
        self.classifier = nn.Linear(dims["coarse"], num_classes)

    def sampler(self, train):
        return AllFrames()  # the shared samplers: AllFrames, UniformFrames(k), ConsecutiveFrames(k)

    def forward(self, batch):
        coarse = batch.read("coarse")  # (B, T, D) float32, zero on padding; every read is metered
        mean = coarse.sum(1) / batch.steps.unsqueeze(1)
        logits = self.classifier(self.dropout(mean))
        ones = torch.ones(batch.size, dtype=torch.long, device=logits.device)
        # Checked as it leaves: (B, C) float scores, a whole run count per video for every cost module.
        return MethodOutput(scores=logits.softmax(-1), step_counts={"classifier": ones}, extras={"logits": logits})

    def loss(self, output, batch):
        # Labels are for the loss: a training batch carries them, an evaluation batch does not.
        loss = soft_cross_entropy(output.extras["logits"], batch.labels)
        return loss, {"ce": loss.item()}

    def cost_modules(self):
        # Each module counted in step_counts, with an example input (batch of 1) for ptflops.
        dim = self.dims["coarse"]
        return {"classifier": StepModule(self.classifier, lambda: (torch.zeros(1, dim),))}
