"""REINFORCE with a learned baseline, shared by the frame-skipping agents.

For an episode with decisions a_1..a_N taken where ``active`` is true, terminal reward R and a
learned baseline b_n (a linear head on the agent's state, trained by regression on R):

    policy loss   = - sum_n active_n * log pi(a_n | s_n) * (R - b_n).detach()
    baseline loss = mean over active steps of (b_n - R)^2

The baseline is detached from the policy term (it only reduces variance) and its regression
does not push gradients into the agent's state (``state.detach()``), so it cannot distort
what the recurrent state learns.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.losses import soft_cross_entropy


class Baseline(nn.Module):
    """b(s): the expected reward from state s (a linear head, trained by regression)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.head = nn.Linear(hidden, 1)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.head(state.detach()).squeeze(-1)


def reinforce_losses(
    log_probs: torch.Tensor, baselines: torch.Tensor, active: torch.Tensor, reward: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(policy loss, baseline loss) for (B, N) step tensors and a (B,) terminal reward."""
    active = active.to(log_probs.dtype)
    advantage = (reward.unsqueeze(1) - baselines).detach()
    policy = -(log_probs * advantage * active).sum(1).mean()
    baseline = ((baselines - reward.unsqueeze(1).detach()) ** 2 * active).sum() / active.sum().clamp_min(1)
    return policy, baseline


def correct_at_top1(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) 1.0 where the arg-max class is one of the video's labels."""
    return labels.gather(1, logits.argmax(1, keepdim=True)).squeeze(1)


def episode_extras(logits: torch.Tensor, frames: torch.Tensor, log_probs: list, baselines: list,
                   deciding: list) -> dict[str, torch.Tensor]:
    """What an agent's forward hands to ``agent_loss``: final logits, frames read and, in
    training, the stacked (B, N) log-probabilities, baselines and active masks of its decisions."""
    extras = {"logits": logits, "frames": frames}
    if log_probs:
        extras.update(log_probs=torch.stack(log_probs, 1), baselines=torch.stack(baselines, 1),
                      deciding=torch.stack(deciding, 1))
    return extras


def agent_loss(extras: dict[str, torch.Tensor], labels: torch.Tensor, frame_cost: float):
    """Cross-entropy of the final prediction + REINFORCE (reward: correct minus ``frame_cost``
    per frame read) + the baseline's regression; and the numbers worth logging."""
    ce = soft_cross_entropy(extras["logits"], labels)
    reward = correct_at_top1(extras["logits"].detach(), labels) - frame_cost * extras["frames"]
    policy = baseline = torch.zeros((), device=ce.device)
    if "log_probs" in extras:
        policy, baseline = reinforce_losses(extras["log_probs"], extras["baselines"], extras["deciding"], reward)
    return ce + policy + baseline, {
        "ce": ce.item(), "policy": policy.item(), "baseline": baseline.item(),
        "reward": reward.mean().item(), "frames": extras["frames"].float().mean().item(),
    }
