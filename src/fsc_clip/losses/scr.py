"""Selective Calibrated Regularization (SCR): smoothed targets over valid negatives + focal weighting.

Rows are (1+K)-way classifications: column 0 is the positive caption, columns 1..K the hard negatives
of that image, ``valid[:, k]`` says whether negative k exists. Invalid columns are excluded from the
softmax (logit −∞), receive no target mass and contribute no loss term — the authors' code instead
fills them with zero vectors, which still compete in the softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor

NEG_LOSS_NAMES = ("cross_entropy", "focal_loss")


def scr_targets(valid: Tensor, label_smoothing: float | None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Target distribution ``y`` for each row.

    ``y_0 = (1−ε) + ε/(1+n)``, ``y_k = valid_k · ε/(1+n)`` with n the number of valid negatives.

    Args:
        valid: ``[R, 1+K]`` bool, column 0 (the positive) must be True.
        label_smoothing: ε; ``None`` means 0 (one-hot target).
        dtype: Floating dtype of the targets (float64 inputs get float64 targets, so ε/(1+n) is exact).

    Returns:
        ``[R, 1+K]`` float targets; each row sums to 1 and puts no mass on invalid columns.
    """
    eps = float(label_smoothing or 0.0)
    valid_f = valid.to(dtype)
    share = eps / valid_f.sum(dim=-1, keepdim=True)  # [R, 1]  ε/(1+n)
    positive = torch.zeros_like(valid_f)
    positive[:, 0] = 1.0 - eps
    return valid_f * share + positive


def scr_loss(logits: Tensor, valid: Tensor, gamma: float = 2.0, label_smoothing: float | None = 0.02) -> Tensor:
    """Per-row SCR loss ``Σ_c y_c · −(1−p_c)^γ · log p_c`` over valid columns only.

    ``gamma=0`` gives label-smoothed cross entropy; ``gamma=0`` and ``label_smoothing=None`` plain cross
    entropy with target 0.

    Args:
        logits: ``[R, 1+K]`` (any values in invalid columns; they are masked here).
        valid: ``[R, 1+K]`` bool, column 0 True.
        gamma: Focal exponent γ ≥ 0.
        label_smoothing: ε in [0, 1) or None.

    Returns:
        ``[R]`` per-row losses (finite, with finite gradients, for any mask).
    """
    # Targets at >= float32 precision (float64 for float64 logits), then in the logits' dtype.
    targets = scr_targets(valid, label_smoothing, torch.promote_types(logits.dtype, torch.float32))
    targets = targets.to(logits.dtype)  # [R, 1+K]
    masked = logits.masked_fill(~valid, float("-inf"))
    log_p = torch.log_softmax(masked, dim=-1)
    # Replace the −∞ of invalid columns before any arithmetic so that neither the value nor the
    # gradient ever sees 0·∞; the `where` also blocks their (zero) gradient path cleanly.
    log_p = torch.where(valid, log_p, torch.zeros_like(log_p))
    nll = -log_p
    if gamma != 0:
        # (1 − p)^γ with 1 − p = −expm1(log p), accurate when p is close to 1; the clamp keeps the
        # gradient finite for γ < 1 when p rounds to exactly 1.
        nll = nll * (-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny).pow(gamma)
    return (targets * nll).sum(dim=-1)


def masked_mean(values: Tensor, mask: Tensor, count: Tensor | None = None) -> Tensor:
    """Mean of ``values`` over ``mask``; 0 (finite, zero gradient) when nothing is selected.

    Args:
        values: ``[R]`` per-row values (must be finite where ``mask`` is False too).
        mask: ``[R]`` bool.
        count: Optional denominator to use instead of ``mask.sum()`` (e.g. the global count across
            ranks divided by the world size); clamped to ≥ 1 / large to stay finite.
    """
    selected = torch.where(mask, values, torch.zeros_like(values)).sum()
    denom = mask.sum().to(values.dtype) if count is None else count.to(values.dtype)
    return selected / denom.clamp_min(torch.finfo(values.dtype).tiny)
