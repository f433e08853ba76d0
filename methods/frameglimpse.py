"""FRAMEGLIMPSE (Yeung et al., CVPR 2016), adapted to per-frame features and classification.

A recurrent agent looks at one frame at a time. At glimpse n it reads the fine feature of the
frame at its current location l_n (normalised time in [0, 1), so it may jump backwards or
ahead), updates an LSTM on [feature, l_n], and emits a class prediction, the next location
(a Gaussian policy: l_{n+1} ~ N(sigmoid(W_l h_n), sigma^2), clamped to [0, 1)) and a stop
decision (Bernoulli(sigmoid(W_s h_n))). After at most ``max_glimpses`` glimpses it stops. The
video's prediction is the one emitted at the glimpse where it stopped. The first location is
drawn from the same Gaussian policy around a learned mean (sigmoid of a parameter), whose
log-probability enters the REINFORCE term like every later location's, so the start is learned
from the reward. At evaluation the agent is deterministic: it goes to the mean location and
stops when the stop probability exceeds 1/2.

Training: cross-entropy on the prediction at stopping (the classifier and the LSTM), and
REINFORCE with a learned baseline (methods/policy.py) for the location and stop policies, with
reward 1 if the prediction at stopping is right, minus ``glimpse_cost`` per glimpse.

Adaptations (documented in the README): Yeung et al. detect actions in untrimmed video and
reward detections; here the task is video classification, so the reward is the correctness of
the class prediction, and the observation is a pre-extracted ResNet feature instead of a frame
through a CNN. The agent reads only the frames it glimpses, through the metered accessor, so its
GFLOPs come from the meter. It needs future frames, so it cannot run online.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from datasets.common.errors import UsageError
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
from methods.policy import Baseline, agent_loss, episode_extras
from methods.presets import TABLE1_TUNE
from methods.registry import register_method

LAST = 1.0 - 1e-6  # locations live in [0, LAST] so that floor(l * length) < length


@register_method("frameglimpse")
class FrameGlimpse(VideoMethod):
    summary = "agent glimpsing frames anywhere (Gaussian location + stop policies, REINFORCE), at most N glimpses"
    display_name = "FrameGlimpse"
    citation = "Yeung et al.: End-to-end learning of action detection from frame glimpses in videos, CVPR 2016"
    row = 2
    streams = ("fine",)
    online = False  # it jumps to future frames
    suite = "paper"  # a row of the paper's Table 1

    cost_knob = CostKnob("glimpse_cost", (0.1, 0.05, 0.02, 0.01, 0.0), "training", "cost per glimpse")

    @dataclass(frozen=True)
    class Hparams:
        hidden: int = bounded(128, ge=1)
        max_glimpses: int = bounded(10, ge=1)
        location_std: float = bounded(0.1, gt=0)
        glimpse_cost: float = bounded(0.02, ge=0)
        dropout: float = bounded(0.2, ge=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # Other datasets than the synthetic default start from the class defaults.
    presets = {"default": Preset({"dropout": 0.0, "train": {"lr": 3e-3, "weight_decay": 1e-4}}, (TABLE1_TUNE,))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        if self.hp.max_glimpses < 1:
            raise UsageError(f"{self.name}: max_glimpses must be >= 1")
        hidden = self.hp.hidden
        self.cell = nn.LSTMCell(dims["fine"] + 1, hidden)
        self.classifier = nn.Linear(hidden, num_classes)
        self.locator = nn.Linear(hidden, 1)
        self.stopper = nn.Linear(hidden, 1)
        self.baseline = Baseline(hidden)
        self.start = nn.Parameter(torch.zeros(1))  # first location, as a logit
        self.dropout = nn.Dropout(self.hp.dropout)

    def sampler(self, train: bool) -> FrameSampler:
        return UniformFrames(1)  # the batch's grid is not used: the agent picks its own frames

    def cost_modules(self) -> dict[str, StepModule]:
        dim, hidden = self.dims["fine"], self.hp.hidden
        state = lambda: (torch.zeros(1, hidden), torch.zeros(1, hidden))
        head = lambda: (torch.zeros(1, hidden),)
        return {
            "cell": StepModule(self.cell, lambda: (torch.zeros(1, dim + 1), state())),
            "classifier": StepModule(self.classifier, head),
            "locator": StepModule(self.locator, head),
            "stopper": StepModule(self.stopper, head),
        }

    def forward(self, batch: Batch) -> MethodOutput:
        b, device = batch.size, batch.lengths.device
        lengths = batch.lengths.to(torch.float32)
        h = torch.zeros(b, self.hp.hidden, device=device)
        c = torch.zeros_like(h)
        active = torch.ones(b, dtype=torch.bool, device=device)
        final_logits = torch.zeros(b, self.num_classes, device=device)
        glimpses = torch.zeros(b, dtype=torch.long, device=device)
        log_probs, baselines, deciding, positions = [], [], [], []
        first = torch.sigmoid(self.start).expand(b)
        if self.training:
            # The first location is a decision of the same Gaussian policy, with its own
            # log-probability in the REINFORCE term: that is how the learned start gets a gradient
            # (the location itself enters the LSTM detached, as every later one does).
            drawn = first.detach() + self.hp.location_std * torch.randn_like(first)
            log_probs.append(torch.distributions.Normal(first, self.hp.location_std).log_prob(drawn))
            baselines.append(self.baseline(h))
            deciding.append(active)
            location = drawn.clamp(0, LAST)
        else:
            location = first.clamp(0, LAST)
        for n in range(self.hp.max_glimpses):
            position = torch.clamp((location.detach() * lengths).long(), max=batch.lengths - 1)
            feature = batch.features.read_frames("fine", position, valid=active)
            h_new, c_new = self.cell(torch.cat([self.dropout(feature), location.detach().unsqueeze(1)], 1), (h, c))
            keep = active.unsqueeze(1)
            h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
            glimpses = glimpses + active.long()
            positions.append(torch.where(active, position, -1))
            final_logits = torch.where(keep, self.classifier(self.dropout(h)), final_logits)
            if n == self.hp.max_glimpses - 1:
                break  # the budget is spent: stop
            stop_p = torch.sigmoid(self.stopper(h)).squeeze(1)
            mean = torch.sigmoid(self.locator(h)).squeeze(1)
            if self.training:
                stop = torch.bernoulli(stop_p.detach()).bool()
                step = mean.detach() + self.hp.location_std * torch.randn_like(mean)
                next_location = step.clamp(0, LAST)
                log_p_stop = torch.where(stop, torch.log(stop_p + 1e-8), torch.log(1 - stop_p + 1e-8))
                log_p_move = torch.distributions.Normal(mean, self.hp.location_std).log_prob(step)
                log_probs.append(log_p_stop + (~stop).float() * log_p_move)
                baselines.append(self.baseline(h))
                deciding.append(active)
            else:
                stop = stop_p > 0.5
                next_location = mean.clamp(0, LAST)
            active = active & ~stop
            location = torch.where(active, next_location, location)
            if not self.training and not bool(active.any()):
                break
        return MethodOutput(
            scores=final_logits.softmax(-1),
            step_counts={"cell": glimpses, "classifier": glimpses, "locator": glimpses, "stopper": glimpses},
            diagnostics={"glimpsed_frames": torch.stack(positions, 1)},
            extras=episode_extras(final_logits, glimpses, log_probs, baselines, deciding),
        )

    def loss(self, output: MethodOutput, batch: Batch):
        return agent_loss(output.extras, batch.labels, self.hp.glimpse_cost)
