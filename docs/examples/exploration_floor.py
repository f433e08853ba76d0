"""A floor on a policy's exploration, as plug-ins: three of the suite's agents, each with ``explore``.

Issue 43 names "a minimum exploration for policies" among the standard remedies for a small
store, where FrameGlimpse, FastForward and LiteEval-RL fall far below Uniform (results/unseen-b,
results/unseen-c). None of the three papers has one, so it is not in the methods; these
plug-ins let a study measure it on validation without changing any built-in (and so without
making a committed pair stale): results/exploration-floor-study.

With ``explore`` = e, every training decision is drawn from the mixture (1 - e) pi + e / A of the
method's policy pi and the uniform policy over its A actions, and REINFORCE uses the mixture's
log-probability (on-policy); evaluation is the method's own deterministic rule, unchanged (the
mixture is monotone in pi, so its most probable action is pi's). e = 0 is the built-in method,
bit for bit (tests/methods/test_exploration_floor.py):

* FrameGlimpse: the stop decision (a Bernoulli, A = 2); its next location is already drawn with
  a fixed spread (``location_std``), which is that policy's floor.
* FastForward: the jump-or-stop action (A = len(jumps) + 1).
* LiteEval-RL: the gate's fire-or-skip decision (A = 2), through the uniform draw that decides it:
  firing where the draw u < e/2 + (1 - e) p is firing where (u - e/2) / (1 - e) < p.

The study's rule, fixed before it ran: on `small` and on `few-classes` (stores the shipped defaults
were already chosen on; results/unseen-b and unseen-c stay untouched), each plug-in is tuned over
explore in {0, 0.05, 0.1, 0.2} from its built-in's shipped defaults (exploration-floor.json),
seeds 0-2, on validation. The floor is a remedy for a method when on both stores explore = 0 is
outside the validation noise of the best trial (the tune's `within_noise` is false for it: more
than one paired-bootstrap standard error below); then it would join that method (default 0, the
paper's policy) and its search space at the next regeneration, to be checked on stores no
selection has read. Otherwise it is not, and the question is closed with these records.

Also an example of a built-in's variant as a plug-in: a subclass inherits its parent's ``name``
and ``display_name``, so it declares its own (``run`` refuses a plug-in that would pass for a
built-in).

    python -m benchmark tune --dataset data/unseen-b \\
        --methods docs/examples/exploration_floor.py:FastForwardFloor --space '{"explore": [0, 0.05, 0.1, 0.2]}'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from methods.base import bounded
from methods.fastforward import FastForward
from methods.frameglimpse import FrameGlimpse
from methods.liteeval import LiteEvalRL


def _explore_setting() -> float:
    return bounded(0.0, ge=0, lt=1)  # the uniform policy's share of every training decision


class FlooredHead(nn.Module):
    """A policy head whose training output is the (log-)mixture with the uniform policy: logits of
    a categorical (``binary=False``) or the one logit of a Bernoulli (``binary=True``). At
    evaluation, or with ``explore`` = 0, it returns the head's own output untouched."""

    def __init__(self, head: nn.Module, explore: float, binary: bool) -> None:
        super().__init__()
        self.head, self.explore, self.binary = head, explore, binary

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        out = self.head(state)
        e = self.explore
        if not self.training or e == 0:
            return out
        if self.binary:
            p = e / 2 + (1 - e) * torch.sigmoid(out)
            return torch.log(p) - torch.log1p(-p)  # the mixture's logit
        return torch.log((1 - e) * out.softmax(-1) + e / out.shape[-1])


class FrameGlimpseFloor(FrameGlimpse):
    name = "frameglimpse_floor"
    display_name = "FrameGlimpse (explore floor)"
    summary = "FrameGlimpse with a floor on its stop decision's exploration (a study plug-in)"

    @dataclass(frozen=True)
    class Hparams(FrameGlimpse.Hparams):
        explore: float = _explore_setting()

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        self.stopper = FlooredHead(self.stopper, self.hp.explore, binary=True)


class FastForwardFloor(FastForward):
    name = "fastforward_floor"
    display_name = "FastForward (explore floor)"
    summary = "FastForward with a floor on its action's exploration (a study plug-in)"

    @dataclass(frozen=True)
    class Hparams(FastForward.Hparams):
        explore: float = _explore_setting()

    def __init__(self, num_classes: int, dims: dict[str, int], **hparams) -> None:
        super().__init__(num_classes, dims, **hparams)
        self.policy = FlooredHead(self.policy, self.hp.explore, binary=False)


class LiteEvalRLFloor(LiteEvalRL):
    name = "liteeval_rl_floor"
    display_name = "LiteEval-RL (explore floor)"
    summary = "LiteEval-RL with a floor on its gate's exploration (a study plug-in)"

    @dataclass(frozen=True)
    class Hparams(LiteEvalRL.Hparams):
        explore: float = _explore_setting()

    def decision_noise(self, steps: int, batch_size: int, device: torch.device) -> torch.Tensor:
        draws = super().decision_noise(steps, batch_size, device)
        e = self.hp.explore
        # Clamped to [0, 1]: a draw below e/2 always fires, one above 1 - e/2 never does.
        return draws if e == 0 else ((draws - e / 2) / (1 - e)).clamp(0, 1)

    def loss(self, output, batch):
        e = self.hp.explore
        if e:
            mixed = torch.log((1 - e) * output.extras["gate_logits"].softmax(-1) + e / 2)
            output = replace(output, extras={**output.extras, "gate_logits": mixed})
        return super().loss(output, batch)
