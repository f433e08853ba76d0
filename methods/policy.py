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
