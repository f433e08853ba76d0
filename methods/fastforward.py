"""FASTFORWARD (Fan et al., IJCAI 2018), adapted to per-frame features.

An agent starts at the first frame. At each step it reads the fine feature of the current
frame, updates an LSTM, emits a class prediction, and chooses an action from a fixed set: jump
forward by one of ``jumps`` frames (1, 2, 4, 8, 16, 32 by default) or stop. The episode also ends
when a jump leaves the video or after ``max_steps`` frames. The video's prediction is the one
emitted at the last frame visited (the LSTM has integrated every visited frame). At evaluation
the agent takes the most probable action.

Training: cross-entropy on the final prediction (classifier and LSTM) and REINFORCE with a
learned baseline (methods/policy.py) for the action policy, with reward 1 if the final
prediction is right minus ``frame_cost`` per frame read: the trade-off between correctness and
frames read that Fan et al. describe. Their agent works on frames through a CNN and on
untrimmed videos; here it reads pre-extracted ResNet features through the metered accessor, so
its GFLOPs come from the meter. It only moves forward, but chooses how far ahead to look, so it
needs future frames and cannot run online.
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
from methods.policy import Baseline, agent_loss, episode_extras
from methods.presets import TABLE1_TUNE
from methods.registry import register_method


@register_method("fastforward")
class FastForward(VideoMethod):
    summary = "agent jumping forward by 1..32 frames or stopping (policy gradients), at most N frames"
    display_name = "FastForward"
    jump_sizes: torch.Tensor  # a buffer: the jump of each action
    citation = "Fan et al.: Watching a small portion could be as good as watching all, IJCAI 2018"
    row = 3
    streams = ("fine",)
    online = False  # it decides how far into the future to look
    suite = "paper"  # a row of the paper's Table 1

    cost_knob = CostKnob("frame_cost", (0.1, 0.05, 0.02, 0.01, 0.0), "training", "cost per frame")

    @dataclass(frozen=True)
    class Hparams:
        hidden: int = bounded(128, ge=1)
        max_steps: int = bounded(10, ge=1)
        jumps: tuple[int, ...] = bounded((1, 2, 4, 8, 16, 32), ge=1)
        frame_cost: float = bounded(0.02, ge=0)
        dropout: float = bounded(0.2, ge=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # Other datasets than the synthetic default start from the class defaults.
    presets = {"default": Preset({"dropout": 0.5, "train": {"lr": 3e-3, "weight_decay": 0.0}}, (TABLE1_TUNE,))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        if self.hp.max_steps < 1 or not self.hp.jumps or min(self.hp.jumps) < 1:
            raise UsageError(f"{self.name}: need max_steps >= 1 and positive jumps")
        hidden = self.hp.hidden
        self.cell = nn.LSTMCell(dims["fine"], hidden)
        self.classifier = nn.Linear(hidden, num_classes)
        self.policy = nn.Linear(hidden, len(self.hp.jumps) + 1)  # the last action is "stop"
        self.baseline = Baseline(hidden)
        self.dropout = nn.Dropout(self.hp.dropout)
        self.register_buffer("jump_sizes", torch.tensor(self.hp.jumps, dtype=torch.long), persistent=False)

    def sampler(self, train: bool) -> FrameSampler:
        return UniformFrames(1)  # the batch's grid is not used: the agent picks its own frames

    def cost_modules(self) -> dict[str, StepModule]:
        dim, hidden = self.dims["fine"], self.hp.hidden
        head = lambda: (torch.zeros(1, hidden),)
        return {
            "cell": StepModule(self.cell,
                               lambda: (torch.zeros(1, dim), (torch.zeros(1, hidden), torch.zeros(1, hidden)))),
            "classifier": StepModule(self.classifier, head),
            "policy": StepModule(self.policy, head),
        }

    def forward(self, batch: Batch) -> MethodOutput:
        b, device = batch.size, batch.lengths.device
        stop_action = len(self.hp.jumps)
        h = torch.zeros(b, self.hp.hidden, device=device)
        c = torch.zeros_like(h)
        position = torch.zeros(b, dtype=torch.long, device=device)
        active = torch.ones(b, dtype=torch.bool, device=device)
        final_logits = torch.zeros(b, self.num_classes, device=device)
        frames = torch.zeros(b, dtype=torch.long, device=device)
        log_probs, baselines, deciding, positions = [], [], [], []
        for n in range(self.hp.max_steps):
            feature = batch.features.read_frames("fine", position, valid=active)
            h_new, c_new = self.cell(self.dropout(feature), (h, c))
            keep = active.unsqueeze(1)
            h, c = torch.where(keep, h_new, h), torch.where(keep, c_new, c)
            frames = frames + active.long()
            positions.append(torch.where(active, position, -1))
            final_logits = torch.where(keep, self.classifier(self.dropout(h)), final_logits)
            if n == self.hp.max_steps - 1:
                break  # the budget is spent: stop
            action_logits = self.policy(h)
            if self.training:
                action = torch.distributions.Categorical(logits=action_logits.detach()).sample()
                log_probs.append(F.log_softmax(action_logits, -1).gather(1, action.unsqueeze(1)).squeeze(1))
                baselines.append(self.baseline(h))
                deciding.append(active)
            else:
                action = action_logits.argmax(1)
            stop = action == stop_action
            target = position + self.jump_sizes[action.clamp(max=stop_action - 1)]
            stop = stop | (target >= batch.lengths)  # jumping past the end ends the episode
            active = active & ~stop
            position = torch.where(active, target, position)
            if not self.training and not bool(active.any()):
                break
        return MethodOutput(
            scores=final_logits.softmax(-1),
            step_counts={"cell": frames, "classifier": frames, "policy": frames},
            diagnostics={"visited_frames": torch.stack(positions, 1)},
            extras=episode_extras(final_logits, frames, log_probs, baselines, deciding),
        )

    def loss(self, output: MethodOutput, batch: Batch):
        return agent_loss(output.extras, batch.labels, self.hp.frame_cost)
