"""Local hard-negative (LHN) scores: token-grouped visual features compared token by token.

For image i and caption c (the positive or one of its K negatives):

1. ``A = T_c P_iᵀ`` ``[L, Np]`` — similarity of every text token to every patch, *without gradient*;
2. each row normalised over patches ("minmax" then divide by the row sum, optionally sparsified, or
   "softmax") into weights ``W``;
3. ``Z = W P_i`` (gradient flows through the patches), rows L2-normalised;
4. ``r_l = s · ⟨Ẑ_l, T̂_{c,l}⟩``; ``S(i, c) = logsumexp`` of ``r_l`` over the caption's valid tokens.

Implementation: ``Z`` ``[B, C, L, D]`` is never materialised. With ``M = T̂ Pᵀ`` ``[B, C·L, Np]`` and the
patch Gram matrix ``G = P Pᵀ`` ``[B, Np, Np]``, ``⟨Z_l, T̂_l⟩ = Σ_p W_lp M_lp`` and
``‖Z_l‖² = W_l G W_lᵀ``; both are exact and cost ``Np`` instead of ``D`` per token-patch pair. All
captions of an image (positive + K negatives) go through one batched matmul.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

SIM_NORMALIZERS = ("minmax", "softmax")
_NORM_EPS = 1e-12  # matches F.normalize


@torch.no_grad()
def patch_weights(sim: Tensor, normalizer: str = "minmax", sparsify: bool = False) -> Tensor:
    """Normalise token-to-patch similarities over patches into weights that sum to 1.

    Args:
        sim: ``[..., Np]`` raw similarities (no gradient is taken).
        normalizer: ``"minmax"`` — ``(A − min)/(max − min)`` (range clamped to a tiny epsilon), then divided
            by the row sum; ``"softmax"`` — softmax over patches.
        sparsify: With "minmax", zero weights below ``1/Np`` before the row-sum division.

    Returns:
        ``[..., Np]`` weights; a constant row (no localisation signal, where the authors' code divides
        0 by 0) gets uniform weights ``1/Np``.
    """
    if normalizer == "softmax":
        return torch.softmax(sim, dim=-1)
    if normalizer != "minmax":
        raise ValueError(f"sim_normalizer must be one of {SIM_NORMALIZERS}, got {normalizer!r}")
    num_patches = sim.shape[-1]
    low = sim.amin(dim=-1, keepdim=True)
    span = sim.amax(dim=-1, keepdim=True) - low
    weights = (sim - low) / span.clamp_min(torch.finfo(sim.dtype).tiny)
    if sparsify:
        weights = weights.masked_fill(weights < 1.0 / num_patches, 0.0)
    total = weights.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(weights, 1.0 / num_patches)
    return torch.where(total > 0, weights / total.clamp_min(torch.finfo(sim.dtype).tiny), uniform)


def token_scores(
    image_tokens: Tensor,
    text_tokens: Tensor,
    logit_scale: Tensor,
    normalizer: str = "minmax",
    sparsify: bool = False,
    gram: Tensor | None = None,
) -> Tensor:
    """Per-token scaled cosine ``r`` between token-grouped patches and each text token.

    Args:
        image_tokens: ``[B, Np, D]`` projected patch tokens (not normalised).
        text_tokens: ``[B, C, L, D]`` projected text tokens of C captions per image (not normalised).
        logit_scale: Scalar, already exponentiated.
        normalizer: See :func:`patch_weights`.
        sparsify: See :func:`patch_weights`.
        gram: Optional precomputed ``P Pᵀ`` ``[B, Np, Np]`` (shared between caption groups).

    Returns:
        ``[B, C, L]`` scores ``s · cos(Z_l, T_l)``.
    """
    b, c, length, dim = text_tokens.shape
    patches = image_tokens  # [B, Np, D]
    texts = text_tokens.reshape(b, c * length, dim)  # [B, C·L, D]
    raw = torch.bmm(texts, patches.transpose(1, 2))  # [B, C·L, Np]  A = T Pᵀ
    text_norm = texts.norm(dim=-1, keepdim=True).clamp_min(_NORM_EPS)  # [B, C·L, 1]
    cos_map = raw / text_norm  # [B, C·L, Np]  M = T̂ Pᵀ
    weights = patch_weights(raw.detach(), normalizer, sparsify)  # [B, C·L, Np], no gradient
    numerator = (weights * cos_map).sum(dim=-1)  # [B, C·L]  ⟨Z_l, T̂_l⟩
    if gram is None:
        gram = torch.bmm(patches, patches.transpose(1, 2))  # [B, Np, Np]
    sq_norm = (torch.bmm(weights, gram) * weights).sum(dim=-1)  # [B, C·L]  ‖Z_l‖²
    z_norm = sq_norm.clamp_min(_NORM_EPS**2).sqrt()  # = max(‖Z_l‖, eps), as F.normalize
    return (logit_scale * numerator / z_norm).reshape(b, c, length)


def local_scores(
    image_tokens: Tensor,
    caption_groups: Sequence[tuple[Tensor, Tensor]],
    logit_scale: Tensor,
    normalizer: str = "minmax",
    sparsify: bool = False,
) -> tuple[Tensor, Tensor]:
    """Aggregated local score ``S(i, c)`` for every image and each of its captions.

    Captions come in groups (e.g. the positives ``[B, 1, L, D]`` and the negatives ``[B, K, L, D]``) so
    that callers need not concatenate large token tensors; each group is one batched matmul and the
    patch Gram matrix is shared. Computed in at least float32 (autocast off): the Gram-matrix form of
    ``‖Z‖`` must not run in half precision.

    Args:
        image_tokens: ``[B, Np, D]``.
        caption_groups: ``(text_tokens [B, C_j, L, D], token_mask [B, C_j, L] bool)`` pairs; the mask is
            True for tokens that count (not padding, not start-of-text). Rows of absent captions must
            be finite (zeros are fine) and should be masked out.
        logit_scale: Scalar, already exponentiated.
        normalizer: ``"minmax"`` or ``"softmax"``.
        sparsify: Sparsify minmax weights.

    Returns:
        ``scores`` ``[B, ΣC_j]`` (finite; a caption without valid tokens gets a finite placeholder) and
        ``has_tokens`` ``[B, ΣC_j]`` bool telling which scores are real.
    """
    dtype = torch.promote_types(image_tokens.dtype, torch.float32)
    with torch.autocast(device_type=image_tokens.device.type, enabled=False):
        patches = image_tokens.to(dtype)
        scale = logit_scale.to(dtype)
        gram = torch.bmm(patches, patches.transpose(1, 2))  # [B, Np, Np]
        scores = torch.cat(
            [token_scores(patches, t.to(dtype), scale, normalizer, sparsify, gram) for t, _ in caption_groups], dim=1
        )  # [B, C, L]
        token_mask = torch.cat([m for _, m in caption_groups], dim=1)  # [B, C, L]
        has_tokens = token_mask.any(dim=-1)  # [B, C]
        # −∞ on masked tokens; a caption with no token at all gets zeros so logsumexp (and its
        # gradient) stays finite — its score is masked out by the caller.
        masked = scores.masked_fill(~token_mask, float("-inf"))
        masked = torch.where(has_tokens.unsqueeze(-1), masked, torch.zeros_like(masked))
        return torch.logsumexp(masked, dim=-1), has_tokens
