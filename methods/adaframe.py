"""AdaFrame (Wu, Xiong, Davis et al., CVPR 2019), on per-frame features.

The paper: an LSTM agent with a *global memory*, built from cheap (MobileNet) features of a
small set of frames spread over the video, reads at each step the expensive (ResNet) feature of
the frame at its current location; from its state and a soft-attention readout of the memory
it predicts the class, estimates the *utility* of seeing more frames (a regression head on the
expected future reward, used to stop early at test time), and chooses where to look next (a
Gaussian policy over the video's time axis, trained with REINFORCE). The reward of a step is
the improvement of the prediction's margin (the correct class's probability minus the largest
other) over the best margin so far. Offline: the memory and the jumps span the whole video.

Here, on the suite's two streams:

* the memory is the coarse (MobileNetV2) features of ``memory_frames`` (16) uniformly spaced
  frames, each projected to ``hidden`` units; the readout attends over them with the LSTM state
  as the query;
* the LSTM reads [fine feature at the location, memory readout]; the first location is chosen
  from the memory alone (the state is still zero), every later one from state and readout;
* training: cross-entropy of every step's prediction, REINFORCE on the locations with the
  discounted return of the margin rewards; the utility head after step n regresses the return
  still to come (from step n + 1) and serves, detached, as the baseline of the location drawn
  after step n; a fixed ``max_steps`` (10) fine reads per video;
* evaluation: the mean location of the policy; a video stops after the first step whose
  estimated utility is below ``utility_threshold``, or after ``max_steps`` reads;
* cost: the coarse backbone on the memory's frames, the fine backbone on the frames visited
  (both from the meter), and the projection, attention, LSTM and heads as counted modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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
from methods.losses import label_distribution
from methods.presets import EXTENDED_TUNE
from methods.registry import register_method

LAST = 1.0 - 1e-6  # locations live in [0, LAST] so that floor(l * length) < length


class MemoryReadout(nn.Module):
    """Soft attention over the memory (B, M, H) with the state (B, H) as the query."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, hidden)

    def forward(self, state: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        weights = torch.bmm(memory, self.query(state).unsqueeze(-1)).squeeze(-1).softmax(-1)  # (B, M)
        return torch.bmm(weights.unsqueeze(1), memory).squeeze(1)


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) probability of the (first) labelled class minus the largest other probability."""
    probs = logits.softmax(-1)
    target = label_distribution(labels)
    correct = (probs * target).sum(-1)
    others = probs.masked_fill(target > 0, -1.0).amax(-1)
    return correct - others


@register_method("adaframe")
class AdaFrame(VideoMethod):
    summary = ("LSTM agent with a global memory of coarse features, Gaussian location policy, "
               "utility-based stop (offline)")
    display_name = "AdaFrame"
    citation = "Wu et al.: AdaFrame: Adaptive frame selection for fast video recognition, CVPR 2019"
    row = 0
    streams = ("coarse", "fine")
    online = False  # the memory spans the whole video and the agent jumps anywhere
    suite = "extended"

    cost_knob = CostKnob("utility_threshold", (0.2, 0.1, 0.05, 0.02, 0.01, 0.0), "evaluation", "utility threshold")

    @dataclass(frozen=True)
    class Hparams:
        hidden: int = bounded(128, ge=1)
        memory_frames: int = bounded(16, ge=1)
        max_steps: int = bounded(10, ge=1)
        location_std: float = bounded(0.1, gt=0)
        discount: float = bounded(0.9, ge=0, le=1)
        utility_threshold: float = bounded(0.01)
        dropout: float = bounded(0.5, ge=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # The tune kept the class defaults (trial 0); the preset says so, and where. Other datasets than the
    # synthetic default start from the class defaults too.
    presets = {"default": Preset({"dropout": 0.5, "train": {"lr": 1e-3, "weight_decay": 0.0}}, (EXTENDED_TUNE,))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        if self.hp.max_steps < 1 or self.hp.memory_frames < 1:
            raise UsageError("method 'adaframe': max_steps and memory_frames must be >= 1")
        hidden = self.hp.hidden
        self.project = nn.Sequential(nn.Linear(dims["coarse"], hidden), nn.ReLU())
        self.readout = MemoryReadout(hidden)
        self.cell = nn.LSTMCell(dims["fine"] + hidden, hidden)
        self.classifier = nn.Linear(2 * hidden, num_classes)
        self.utility = nn.Linear(2 * hidden, 1)
        self.locator = nn.Linear(2 * hidden, 1)
        self.dropout = nn.Dropout(self.hp.dropout)

    def sampler(self, train: bool) -> FrameSampler:
        return UniformFrames(self.hp.memory_frames)  # the memory's frames (jittered in training)

    def forward(self, batch: Batch) -> MethodOutput:
        b, device = batch.size, batch.lengths.device
        lengths = batch.lengths.to(torch.float32)
        memory = self.project(batch.read("coarse"))  # (B, M, H): the global memory
        h = torch.zeros(b, self.hp.hidden, device=device)
        c = torch.zeros_like(h)
        context = self.readout(h, memory)
        mean = torch.sigmoid(self.locator(torch.cat([h, context], 1))).squeeze(1)
        active = torch.ones(b, dtype=torch.bool, device=device)
        steps = torch.zeros(b, dtype=torch.long, device=device)
        final_logits = torch.zeros(b, self.num_classes, device=device)
        step_logits, utilities, log_probs, positions = [], [], [], []
        for n in range(self.hp.max_steps):
            if self.training:
                drawn = mean.detach() + self.hp.location_std * torch.randn_like(mean)
                log_probs.append(torch.distributions.Normal(mean, self.hp.location_std).log_prob(drawn))
                location = drawn.clamp(0, LAST)
            else:
                location = mean.clamp(0, LAST)
            position = torch.clamp((location.detach() * lengths).long(), max=batch.lengths - 1)
            feature = batch.features.read_frames("fine", position, valid=active)
            h_new, c_new = self.cell(torch.cat([self.dropout(feature), context], 1), (h, c))
            keep = active.unsqueeze(1)
            h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
            context = self.readout(h, memory)
            joint = torch.cat([h, context], 1)
            logits = self.classifier(self.dropout(joint))
            utility = self.utility(joint.detach()).squeeze(1)  # its regression does not shape the state
            step_logits.append(logits)
            utilities.append(utility)
            positions.append(torch.where(active, position, -1))
            steps = steps + active.long()
            final_logits = torch.where(keep, logits, final_logits)
            mean = torch.sigmoid(self.locator(joint)).squeeze(1)
            if not self.training:
                active = active & (utility >= self.hp.utility_threshold)
                if not bool(active.any()):
                    break
        counts = {name: steps for name in ("cell", "classifier", "utility")}
        # The readout and the locator run once more than the cell: before the first frame, to place it.
        counts.update(readout=steps + 1, locator=steps + 1, project=batch.steps)
        return MethodOutput(
            scores=final_logits.softmax(-1),
            step_counts=counts,
            diagnostics={"visited_frames": torch.stack(positions, 1)},
            extras={"step_logits": torch.stack(step_logits, 1), "utilities": torch.stack(utilities, 1),
                    **({"log_probs": torch.stack(log_probs, 1)} if log_probs else {})},
        )

    def loss(self, output: MethodOutput, batch: Batch):
        extras = output.extras
        logits = extras["step_logits"]  # (B, N, C)
        target = label_distribution(batch.labels).unsqueeze(1)
        ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()
        with torch.no_grad():
            margins = torch.stack([margin(logits[:, n], batch.labels) for n in range(logits.shape[1])], 1)
            best = torch.cummax(margins, dim=1).values
            previous = torch.cat([torch.full_like(best[:, :1], -1.0), best[:, :-1]], 1)
            rewards = (margins - previous).clamp_min(0)  # improvement over the best margin so far
            returns = torch.zeros_like(rewards)
            running = torch.zeros_like(rewards[:, 0])
            for n in reversed(range(rewards.shape[1])):
                running = rewards[:, n] + self.hp.discount * running
                returns[:, n] = running
        # The utility after step n estimates the reward still to come from reading on (the
        # return from step n + 1); it is what evaluation stops on, and the baseline of the
        # location drawn after step n (the first location's baseline: the batch's mean return).
        future = torch.cat([returns[:, 1:], torch.zeros_like(returns[:, :1])], 1)
        utility = F.mse_loss(extras["utilities"], future)
        policy = torch.zeros((), device=ce.device)
        if "log_probs" in extras:
            first = returns[:, :1].mean().expand_as(returns[:, :1])
            baselines = torch.cat([first, extras["utilities"][:, :-1].detach()], 1)
            policy = -(extras["log_probs"] * (returns - baselines)).sum(1).mean()
        return ce + utility + policy, {"ce": ce.item(), "utility": utility.item(), "policy": policy.item(),
                                       "reward": rewards.sum(1).mean().item()}

    def cost_modules(self) -> dict[str, StepModule]:
        coarse, fine, hidden, m = self.dims["coarse"], self.dims["fine"], self.hp.hidden, self.hp.memory_frames
        state = lambda: (torch.zeros(1, hidden), torch.zeros(1, hidden))
        joint = lambda: (torch.zeros(1, 2 * hidden),)
        return {
            "project": StepModule(self.project, lambda: (torch.zeros(1, coarse),)),
            "readout": StepModule(self.readout, lambda: (torch.zeros(1, hidden), torch.zeros(1, m, hidden))),
            "cell": StepModule(self.cell, lambda: (torch.zeros(1, fine + hidden), state())),
            "classifier": StepModule(self.classifier, joint),
            "utility": StepModule(self.utility, joint),
            "locator": StepModule(self.locator, joint),
        }
