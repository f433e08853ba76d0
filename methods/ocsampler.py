"""OCSampler (Lin, Duan, Wang et al., CVPR 2022), on per-frame features.

The paper: a light *skim* network looks at cheap features of the candidate frames of a video
and outputs a distribution over them, from which N frames are chosen in a single step (not
one after another); a classifier on the expensive features of the chosen frames predicts the
video. The sampler is trained by policy gradient with a reward that compares the chosen
frames with randomly chosen ones (how much better the classifier does on the policy's frames
than on random frames); the classifier is trained on the chosen frames.

Here, on the suite's two streams:

* candidates are all frames of the video; the skim network is an MLP on each frame's coarse
  feature (the MobileNetV2 stream) giving one logit per frame, the distribution a softmax over
  the video's frames;
* in training the N frames are drawn without replacement (Gumbel-top-k, i.e. a Plackett-Luce
  sample) and the policy gradient uses the sample's exact Plackett-Luce log-probability; the
  reward is the classifier's negative cross-entropy on the chosen frames minus that on N frames
  drawn uniformly at random from the same video (the paper's reward relative to random
  sampling; the random frames' reads happen in training only and are not charged); at
  evaluation the N most probable frames are taken;
* the classifier is linear on the fine features (the ResNet-101 stream), its probabilities
  averaged over the chosen frames (default N = 10), trained on the policy's frames;
* cost: coarse backbone and skim network on every frame, fine backbone and classifier on the N
  chosen ones. **Offline**: the distribution is over the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from datasets.common.errors import UsageError
from datasets.loading.bank import Batch
from datasets.loading.sampling import AllFrames, FrameSampler
from methods.base import STANDARD_SEARCH_SPACE, MethodOutput, Preset, StepModule, TrainConfig, VideoMethod, bounded
from methods.losses import average_probabilities, label_distribution, masked_cross_entropy
from methods.presets import EXTENDED_TUNE
from methods.registry import register_method
from methods.uniform import frame_classifier


def plackett_luce_log_prob(logits: torch.Tensor, chosen: torch.Tensor, valid: torch.Tensor,
                           candidates: torch.Tensor) -> torch.Tensor:
    """log P(``chosen`` in this order) for (B, T) ``logits`` over the ``candidates`` (B, T)
    bool; ``valid`` (B, K) marks real picks (a video with fewer than K frames has fewer)."""
    remaining = candidates.clone()
    total = logits.new_zeros(logits.shape[0])
    for k in range(chosen.shape[1]):
        masked = logits.masked_fill(~remaining, float("-inf"))
        pick = chosen[:, k]
        term = logits.gather(1, pick[:, None]).squeeze(1) - torch.logsumexp(masked, dim=1)
        total = total + torch.where(valid[:, k], term, torch.zeros_like(term))
        remaining = remaining.scatter(1, pick[:, None], False)
    return total


@register_method("ocsampler")
class OCSampler(VideoMethod):
    summary = ("skim MLP on every frame's coarse feature picks N frames at once (policy gradient), "
               "fine classifier (offline)")
    display_name = "OCSampler"
    citation = "Lin et al.: OCSampler: Compressing videos to one clip with single-step sampling, CVPR 2022"
    row = 4
    streams = ("coarse", "fine")
    online = False  # the distribution is over every frame of the video
    suite = "extended"

    @dataclass(frozen=True)
    class Hparams:
        frames: int = bounded(10, ge=1)  # N: fine frames read per video
        skim_hidden: int = bounded(128, ge=1)
        hidden: int = bounded(0, ge=0)  # the fine classifier's hidden units (0: linear)
        dropout: float = bounded(0.5, ge=0, lt=1)

    train_defaults = TrainConfig(lr=1e-3, weight_decay=1e-4)
    search_space = STANDARD_SEARCH_SPACE
    # Other datasets than the synthetic default start from the class defaults.
    presets = {"default": Preset({"dropout": 0.2, "train": {"lr": 3e-3, "weight_decay": 1e-4}}, (EXTENDED_TUNE,))}

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        if self.hp.frames < 1:
            raise UsageError(f"method 'ocsampler': frames must be >= 1, got {self.hp.frames}")
        self.skim = frame_classifier(dims["coarse"], 1, self.hp.skim_hidden, self.hp.dropout)
        self.classifier = frame_classifier(dims["fine"], num_classes, self.hp.hidden, self.hp.dropout)
        self._generator: torch.Generator | None = None

    def sampler(self, train: bool) -> FrameSampler:
        return AllFrames()

    def _noise(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """Gumbel noise from the method's own generator (seeded by torch's, so runs repeat)."""
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        uniform = torch.rand(shape, generator=self._generator).clamp(1e-9, 1 - 1e-9)
        return (-torch.log(-torch.log(uniform))).to(device)

    def _classify(self, batch: Batch, chosen: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, C) frame logits of the chosen frames and the video's averaged probabilities."""
        positions = batch.frames.gather(1, chosen)
        logits = self.classifier(batch.features.read_frames("fine", positions, valid=valid))  # (B, K, C)
        return logits, average_probabilities(logits, valid)

    def forward(self, batch: Batch) -> MethodOutput:
        logits = self.skim(batch.read("coarse")).squeeze(-1)  # (B, T)
        k = min(self.hp.frames, batch.mask.shape[1])
        ranked = logits.detach().masked_fill(~batch.mask, float("-inf"))
        if self.training:
            ranked = ranked + self._noise(ranked.shape, ranked.device)  # Gumbel-top-k: a Plackett-Luce sample
        chosen = ranked.topk(k, dim=1).indices  # in the order drawn
        valid = batch.mask.gather(1, chosen)
        frame_logits, scores = self._classify(batch, chosen, valid)
        extras = {"frame_logits": frame_logits, "valid": valid, "probs": scores}
        if self.training:
            extras["log_prob"] = plackett_luce_log_prob(logits, chosen, valid, batch.mask)
            random = self._noise(ranked.shape, ranked.device).masked_fill(~batch.mask, float("-inf"))
            baseline_chosen = random.topk(k, dim=1).indices
            with torch.no_grad():
                _, extras["baseline_probs"] = self._classify(batch, baseline_chosen,
                                                             batch.mask.gather(1, baseline_chosen))
        return MethodOutput(scores=scores, step_counts={"skim": batch.steps, "classifier": valid.sum(1)},
                            extras=extras)

    @staticmethod
    def _video_ce(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B,) cross-entropy of each video's averaged frame probabilities."""
        return -(label_distribution(labels) * probs.clamp_min(1e-8).log()).sum(-1)

    def loss(self, output: MethodOutput, batch: Batch):
        extras = output.extras
        classifier = masked_cross_entropy(extras["frame_logits"], batch.labels, extras["valid"])
        with torch.no_grad():
            reward = (self._video_ce(extras["baseline_probs"], batch.labels)
                      - self._video_ce(extras["probs"], batch.labels))
        policy = -(reward * extras["log_prob"]).mean()
        return classifier + policy, {"ce": classifier.item(), "policy": policy.item(), "reward": reward.mean().item()}

    def cost_modules(self) -> dict[str, StepModule]:
        coarse, fine = self.dims["coarse"], self.dims["fine"]
        return {"skim": StepModule(self.skim, lambda: (torch.zeros(1, coarse),)),
                "classifier": StepModule(self.classifier, lambda: (torch.zeros(1, fine),))}
