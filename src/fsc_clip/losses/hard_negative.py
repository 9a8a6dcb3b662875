"""Global hard-negative logits and the report-only hard-negative accuracy."""

from __future__ import annotations

import torch
from torch import Tensor


def global_hn_logits(
    image_features: Tensor, text_features: Tensor, neg_text_features: Tensor, logit_scale: Tensor
) -> Tensor:
    """(1+K)-way logits ``s·[v_i·u_i, v_i·w_{1,i}, …, v_i·w_{K,i}]`` for every image.

    Args:
        image_features: ``[B, D]`` normalised.
        text_features: ``[B, D]`` normalised positives.
        neg_text_features: ``[B, K, D]`` normalised negatives (absent ones: any finite values).
        logit_scale: Scalar, already exponentiated.

    Returns:
        ``[B, 1+K]`` logits, column 0 the positive.
    """
    captions = torch.cat([text_features.unsqueeze(1), neg_text_features], dim=1)  # [B, 1+K, D]
    return logit_scale * torch.einsum("bd,bcd->bc", image_features, captions)


def with_positive(neg_valid: Tensor, positive_valid: Tensor | None = None) -> Tensor:
    """``[B, 1+K]`` column-validity mask: the positive column first, then the K negatives."""
    first = torch.ones_like(neg_valid[:, :1]) if positive_valid is None else positive_valid.unsqueeze(1)
    return torch.cat([first, neg_valid], dim=1)


@torch.no_grad()
def hn_accuracy(logits: Tensor, valid: Tensor, rows: Tensor) -> Tensor:
    """Share of selected rows whose positive (column 0) beats every valid negative; 0 if no row.

    Args:
        logits: ``[B, 1+K]``.
        valid: ``[B, 1+K]`` bool column mask.
        rows: ``[B]`` bool, rows to count.
    """
    negatives = logits[:, 1:].masked_fill(~valid[:, 1:], float("-inf"))
    wins = (logits[:, 0] > negatives.amax(dim=1)) & rows
    return wins.float().sum() / rows.float().sum().clamp_min(1.0)
