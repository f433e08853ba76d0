"""AR-Net (Meng, Lin, Panda et al., ECCV 2020), in its two-stream form on per-frame features.

The paper: 16 frames are sampled uniformly from the video; for each, in order, a light policy
(MobileNetV2 features of a low-resolution copy, then an LSTM) chooses one action: process the
frame with one of several backbones at one of several resolutions, or skip it and the next
few frames. Each backbone has its own classifier; the video's prediction averages the logits
of the frames that were processed. Trained end to end with Gumbel-softmax decisions
(straight-through) and a loss on the expected GFLOPs, computed from the per-frame costs of the
choices.

Two-stream form here: the actions are {fine, coarse only, skip 1, skip 2, skip 4}: "fine"
runs the fine (ResNet-101) backbone on the frame and its classifier; "coarse only" uses the
coarse (MobileNetV2) feature the policy already has, with the coarse classifier; "skip k"
leaves out this frame and the next k - 1 (nothing is read or run for them, not even the
policy). Differences from the original:

* the original chooses among three resolutions of several backbones; here there are two
  fixed streams, so the choice is "fine or coarse", not a resolution;
* the loss is the official code's: ``accuracy`` x cross-entropy + ``efficiency`` x (the
  expected backbone GMACs per sampled position, i.e. the straight-through fine choices times
  the fine stream's per-frame cost over the 16 positions, + ``balance`` x the L2 distance of
  the batch's action usage from the uniform usage). The defaults (0.95, 0.05, 3.0) are those of
  the authors' ActivityNet training script (``--accuracy_weight 0.95 --efficency_weight 0.05
  --uniform_loss_weight 3.0 --use_gflops_loss``). As there, the policy's own cost and the
  coarse feature are not in the loss (every visited position pays them whatever it chooses),
  and the per-frame costs are the ones the harness counted (``VideoMethod.frame_gmacs``; equal
  costs of 1 GMAC where a method is built outside a run). The balance term is what keeps the
  policy from collapsing onto its cheapest action; without it (``balance = 0``) the policy
  stops choosing the fine stream on the default dataset (the committed table before this was
  faithful: 0 fine frames, coarse classifier alone);
* the original first trains each backbone with its classifier on its own (10 epochs), then
  the policy jointly with them (50 epochs). Here the first ``warmup`` share of the run's step
  budget (1/6, as 10 of 60 epochs) trains the two classifiers on all 16 frames, each with
  its own cross-entropy and no policy; the rest trains everything jointly with the loss
  below (checkpoints are chosen, and the early stop counts, within the joint phase:
  ``phase_starts``). In the joint phase, as in the original, training computes the fine feature of every
  visited frame (evaluation only where "fine" was chosen): the straight-through gradient of
  the choice needs the fine classifier's answer on frames where it was not chosen. Without
  that, the policy saw only the classifier's bias there and stopped choosing "fine" at every
  trial of two tunes on the default dataset's validation part (71-73 mAP at 1.2-1.3 GFLOPs,
  fine share about 0.1%; the tunes default-arnet-tune without the warm-up and
  default-arnet-warmup-tune with it, in git history: results/README.md);
* the Gumbel temperature decays exponentially from 5 to 0.5 over the joint steps (the
  original decays it per epoch, 5 x exp(-0.045 epoch), 5 to about 0.5 over its 50 joint
  epochs: the same curve on the suite's step budget);
* the policy LSTM has 128 units (the original 512), scaled with the default dataset's
  128-dimensional coarse features as LiteEval's sizes are.

``reading = "official"`` (the default) follows the authors' code (ops/models_ada.py) in three
more places: the coarse classifier reads the policy LSTM's state (``lite_fc`` on h), not the
coarse feature; the policy runs on every one of the 16 frames, skipped ones included (its
MobileNetV2 runs on all of them): at a skipped frame the LSTM's cell state is updated while its
hidden state and its action are the previous frame's, so the repeated skip action counts in the
balance term; only the fine backbone is saved by skipping. ``"suite"`` is the first reading: the
coarse classifier on the coarse feature, nothing read or run at skipped frames.

It is **offline**: its 16 frames are spread over the whole video, whose length it needs.

Which reading the table uses is decided on validation (results/default-arnet-readings, seed 0;
its tune.md has the numbers, docs/methods.md every method's readings side by side); the
`default` preset holds the choice.
"""

from __future__ import annotations

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
from methods.liteeval import gumbel_noise
from methods.losses import label_distribution, soft_cross_entropy
from methods.presets import ARNET_READINGS, ARNET_TUNE
from methods.registry import register_method

#: Actions of the policy, in the order of its logits; skip k leaves out k frames (this one included).
ACTIONS = ("fine", "coarse", "skip1", "skip2", "skip4")
SKIPS = {"skip1": 1, "skip2": 2, "skip4": 4}


@register_method("arnet")
class ARNet(VideoMethod):
    summary = ("LSTM policy on coarse features picks fine / coarse only / skip 1, 2, 4 per frame "
               "(Gumbel-softmax, offline)")
    display_name = "AR-Net"
    citation = "Meng et al.: AR-Net: Adaptive frame resolution for efficient action recognition, ECCV 2020"
    row = 2
    streams = ("coarse", "fine")
    online = False  # 16 frames spread over the whole video
    suite = "extended"

    cost_knob = CostKnob("efficiency", (0.2, 0.1, 0.05, 0.01, 0.0), "training", "efficiency weight")

    @dataclass(frozen=True)
    class Hparams:
        frames: int = bounded(16, ge=1)
        hidden: int = bounded(128, ge=1)  # the policy LSTM's units
        accuracy: float = bounded(0.95, ge=0)  # weight of the cross-entropy (official --accuracy_weight)
        efficiency: float = bounded(0.05, ge=0)  # weight of the cost and balance terms (official --efficency_weight)
        balance: float = bounded(3.0, ge=0)  # weight of the action-usage balance term (official --uniform_loss_weight)
        warmup: float = bounded(1 / 6, ge=0, lt=1)  # share of the step budget that trains the classifiers alone
        tau_start: float = bounded(5.0, gt=0)
        tau_end: float = bounded(0.5, gt=0)
        dropout: float = bounded(0.5, ge=0, lt=1)
        reading: str = choice("official", ("official", "suite"), before="suite")  # see the module docstring

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # Other datasets than the synthetic default start from the class defaults.
    presets = {"default": Preset({"dropout": 0.5, "train": {"lr": 3e-3, "weight_decay": 1e-4}, "reading": "official"},
                                  (ARNET_TUNE, ARNET_READINGS))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        self.cell = nn.LSTMCell(dims["coarse"], self.hp.hidden)
        self.policy = nn.Linear(self.hp.hidden, len(ACTIONS))
        self.dropout = nn.Dropout(self.hp.dropout)
        self.official = self.hp.reading == "official"
        self.fine_classifier = nn.Linear(dims["fine"], num_classes)
        # The official lite_fc reads the policy's state; the first reading, the coarse feature.
        self.coarse_classifier = nn.Linear(self.hp.hidden if self.official else dims["coarse"], num_classes)
        self.tau = self.hp.tau_start
        self.warming_up = False  # set by on_step during the first ``warmup`` share of training

    def sampler(self, train: bool) -> FrameSampler:
        return UniformFrames(self.hp.frames)

    def on_step(self, step: int, steps: int) -> None:
        warm = int(round(self.hp.warmup * steps))
        self.warming_up = step < warm
        progress = max(step - warm, 0) / max(steps - warm - 1, 1)
        self.tau = self.hp.tau_start * (self.hp.tau_end / self.hp.tau_start) ** min(progress, 1.0)

    def phase_starts(self, steps: int) -> tuple[int, ...]:
        warm = int(round(self.hp.warmup * steps))
        return (warm,) if 0 < warm < steps else ()

    def forward(self, batch: Batch) -> MethodOutput:
        if self.training and self.warming_up:
            return self._warmup_forward(batch)
        b, device = batch.size, batch.mask.device
        h = torch.zeros(b, self.hp.hidden, device=device)
        c = torch.zeros_like(h)
        skip_left = torch.zeros(b, dtype=torch.long, device=device)
        logit_sum = torch.zeros(b, self.num_classes, device=device)
        weight_sum = torch.zeros(b, device=device)
        fine_weight = torch.zeros(b, device=device)  # expected fine frames (straight-through)
        usage = torch.zeros(len(ACTIONS), device=device)  # the batch's decisions per action (straight-through)
        fine_runs = torch.zeros(b, dtype=torch.long, device=device)
        coarse_runs = torch.zeros(b, dtype=torch.long, device=device)
        skip_lengths = torch.tensor([0, 0] + [SKIPS[a] for a in ACTIONS[2:]], device=device)
        previous_action = torch.zeros(b, len(ACTIONS), device=device)
        policy_runs = torch.zeros(b, dtype=torch.long, device=device)
        for t in range(batch.mask.shape[1]):
            present = batch.mask[:, t]
            active = present & (skip_left == 0)  # deciding at this frame (not inside a skip)
            skipping = present & ~active
            skip_left = (skip_left - 1).clamp_min(0)
            # The official policy runs on every frame; the first reading only where it decides.
            running = present if self.official else active
            if not bool(running.any()):
                continue
            coarse = batch.features.read_step("coarse", t, where=running)
            h_new, c_new = self.cell(coarse, (h, c))
            c = torch.where(running[:, None], c_new, c)  # officially, the cell state moves on skipped frames too
            h = torch.where(active[:, None], h_new, h)  # ...while the hidden state stays the last decision's
            policy_runs = policy_runs + running.long()
            logits = self.policy(h)
            if self.training:
                soft = ((logits + gumbel_noise(tuple(logits.shape), device)) / self.tau).softmax(-1)
                hard = F.one_hot(soft.argmax(-1), len(ACTIONS)).to(soft.dtype)
                action = hard + (soft - soft.detach())  # straight-through: hard forward, soft gradient
            else:
                action = F.one_hot(logits.argmax(-1), len(ACTIONS)).to(logits.dtype)
            action = action * active[:, None].to(action.dtype)
            if self.official:  # a skipped frame repeats the skip action, which the balance term then counts
                action = action + previous_action * skipping[:, None].to(action.dtype)
                previous_action = torch.where(running[:, None], action, previous_action)
            chosen = action.detach().argmax(-1)
            use_fine = active & (chosen == 0)
            # Training reads the fine feature of every visited frame, as the original runs every
            # backbone on every frame in training: the straight-through gradient of "fine" needs
            # what the fine classifier would have said where the policy chose otherwise.
            # Evaluation reads it only where the policy chose "fine" (zeros elsewhere).
            fine = batch.features.read_step("fine", t, where=active if self.training else use_fine)
            lite = h if self.official else coarse
            frame_logits = (action[:, :1] * self.fine_classifier(self.dropout(fine))
                            + action[:, 1:2] * self.coarse_classifier(self.dropout(lite)))
            logit_sum = logit_sum + frame_logits
            weight_sum = weight_sum + action[:, 0] + action[:, 1]
            fine_weight = fine_weight + action[:, 0]
            usage = usage + action.sum(0)
            fine_runs = fine_runs + use_fine.long()
            coarse_runs = coarse_runs + (active & (chosen == 1)).long()
            skip_left = torch.where(active, (skip_lengths[chosen] - 1).clamp_min(0), skip_left)
        video_logits = logit_sum / weight_sum.clamp_min(1e-6)[:, None]
        # A video whose every visited frame was skipped has no prediction: uniform scores.
        scores = torch.where((weight_sum > 0)[:, None], video_logits.softmax(-1),
                             torch.full_like(video_logits, 1.0 / self.num_classes))
        return MethodOutput(
            scores=scores,
            step_counts={"policy": policy_runs, "fine_classifier": fine_runs, "coarse_classifier": coarse_runs},
            extras={"logits": video_logits, "has_prediction": weight_sum > 0, "fine_weight": fine_weight,
                    "usage": usage},
        )

    def _warmup_forward(self, batch: Batch) -> MethodOutput:
        """The base models' training, no policy: the fine classifier on every sampled frame, and in
        the first reading the coarse one too (officially the coarse classifier, lite_fc, belongs to
        the policy network and trains with it, in the joint phase)."""
        mask = batch.mask.to(torch.float32)
        frames = mask.sum(1).clamp_min(1.0)[:, None]
        fine = (self.fine_classifier(self.dropout(batch.read("fine"))) * mask[..., None]).sum(1) / frames
        counts = batch.mask.sum(1)
        extras = {"warmup_fine_logits": fine}
        if not self.official:
            coarse = self.coarse_classifier(self.dropout(batch.read("coarse")))
            extras["warmup_coarse_logits"] = (coarse * mask[..., None]).sum(1) / frames
        return MethodOutput(scores=fine.softmax(-1),
                            step_counts={"policy": counts * 0, "fine_classifier": counts,
                                         "coarse_classifier": counts * (0 if self.official else 1)},
                            extras=extras)

    def loss(self, output: MethodOutput, batch: Batch):
        extras = output.extras
        if "warmup_fine_logits" in extras:
            ces = {key: soft_cross_entropy(extras[key], batch.labels)
                   for key in ("warmup_fine_logits", "warmup_coarse_logits") if key in extras}
            fine_ce = ces["warmup_fine_logits"]
            return sum(ces.values()), {"ce": fine_ce.item(), "tau": self.tau,
                                       **({"coarse_ce": ces["warmup_coarse_logits"].item()} if len(ces) > 1 else {})}
        per_video = -(label_distribution(batch.labels) * F.log_softmax(extras["logits"], dim=-1)).sum(-1)
        ce = per_video[extras["has_prediction"]].mean() if bool(extras["has_prediction"].any()) else per_video.sum() * 0
        costs = self.frame_gmacs or {"coarse": 1.0, "fine": 1.0}
        cost = (extras["fine_weight"] * costs["fine"] / self.hp.frames).mean()  # GMACs per sampled position
        share = extras["usage"] / extras["usage"].sum().clamp_min(1e-6)
        balance = torch.linalg.vector_norm(share - share.mean())
        loss = self.hp.accuracy * ce + self.hp.efficiency * (cost + self.hp.balance * balance)
        return loss, {"ce": ce.item(), "gmacs_per_position": cost.item(), "balance": balance.item(),
                      "fine_share": share[0].item(), "tau": self.tau}

    def cost_modules(self) -> dict[str, StepModule]:
        coarse, fine, hidden = self.dims["coarse"], self.dims["fine"], self.hp.hidden
        return {
            "policy": StepModule(_PolicyStep(self.cell, self.policy),
                                 lambda: (torch.zeros(1, coarse), torch.zeros(1, hidden), torch.zeros(1, hidden))),
            "fine_classifier": StepModule(self.fine_classifier, lambda: (torch.zeros(1, fine),)),
            "coarse_classifier": StepModule(self.coarse_classifier,
                                            lambda: (torch.zeros(1, hidden if self.official else coarse),)),
        }


class _PolicyStep(nn.Module):
    """One step of the policy (LSTM cell, then the action head), for counting its cost."""

    def __init__(self, cell: nn.LSTMCell, head: nn.Linear) -> None:
        super().__init__()
        self.cell, self.head = cell, head

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h, _ = self.cell(x, (h, c))
        return self.head(h)
