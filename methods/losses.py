"""Losses shared by methods (one definition, imported everywhere)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_distribution(labels: torch.Tensor) -> torch.Tensor:
    """Multi-hot (B, C) labels as a distribution: each label of a video weighs equally."""
    return labels / labels.sum(dim=-1, keepdim=True).clamp_min(1.0)


def soft_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against multi-hot labels (plain cross-entropy for single-label data).

    ``logits`` is (..., C) and ``labels`` (B, C) broadcasts over the leading dimensions of
    ``logits`` after the batch one (e.g. one loss per sampled frame). Mean over all.
    """
    target = label_distribution(labels)
    while target.dim() < logits.dim():
        target = target.unsqueeze(1)
    return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
