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


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, S, C) per-frame ``logits`` against each video's labels, over
    the frames where ``mask`` (B, S) is true (padding and unchosen slots do not count)."""
    target = label_distribution(labels).unsqueeze(1)
    per_frame = -(target * F.log_softmax(logits, dim=-1)).sum(-1)
    weights = mask.to(per_frame.dtype)
    return (per_frame * weights).sum() / weights.sum().clamp_min(1.0)


def average_probabilities(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, C) mean of the class probabilities of (B, S, C) per-frame ``logits`` over the frames
    where ``mask`` (B, S) is true: a video's scores from the frames it read."""
    weights = mask.unsqueeze(-1).to(logits.dtype)
    return (logits.softmax(-1) * weights).sum(1) / weights.sum(1).clamp_min(1.0)
