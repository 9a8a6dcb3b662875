"""Local hard-negative (LHN) scores: token-grouped visual features compared token by token.

For image i and caption c (the positive or one of its K negatives):

1. ``A = T_c P_iᵀ`` ``[L, Np]`` — similarity of every text token to every patch, *without gradient*;
2. each row normalised over patches ("minmax" then divide by the row sum, optionally sparsified, or
   "softmax") into weights ``W``;
3. ``Z = W P_i`` (gradient flows through the patches), rows L2-normalised;
4. ``r_l = s · ⟨Ẑ_l, T̂_{c,l}⟩``; ``S(i, c) = logsumexp`` of ``r_l`` over the caption's valid tokens.

Implementation: for small patch grids ``Z`` ``[B, C, L, D]`` is never materialised. With
``A = T Pᵀ`` ``[B, C·L, Np]`` and the patch Gram matrix ``G = P Pᵀ`` ``[B, Np, Np]``, ``⟨Z_l, T_l⟩ = Σ_p W_lp A_lp`` and
``‖Z_l‖² = W_l G W_lᵀ``; both are exact and cost ``Np`` instead of ``D`` per token-patch pair, and
``A`` doubles as the (detached) similarity map. All captions of an image (positive + K negatives) go
through one batched matmul, and a hand-written backward touches the large ``[B, C·L, D]`` token
tensor once (autograd would make several elementwise passes over it). For large grids (ViT-B/16) the
Gram matrix costs more than it saves and ``Z`` is formed explicitly, also with a fused backward;
:func:`prefer_gram` picks the cheaper form from the shapes (no data-dependent branching).
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


def _scaled_cosine(
    dot: Tensor, t_sq: Tensor, z_sq: Tensor, logit_scale: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, tuple[Tensor, Tensor]]:
    """``s·⟨Z,T⟩/(‖Z‖‖T‖)`` from the dot product and squared norms, with ``F.normalize``'s epsilon on each norm.

    Returns (scores, 1/(‖T‖‖Z‖), ‖T‖, ‖Z‖, (T-norm clamped, Z-norm clamped)); the backward passes need them all.
    """
    t_norm = t_sq.clamp_min(_NORM_EPS**2).sqrt()  # max(‖T_l‖, eps) as F.normalize
    z_norm = z_sq.clamp_min(_NORM_EPS**2).sqrt()
    inv = 1.0 / (t_norm * z_norm)
    return logit_scale * dot * inv, inv, t_norm, z_norm, (t_sq < _NORM_EPS**2, z_sq < _NORM_EPS**2)


class _TokenScores(torch.autograd.Function):
    """Per-token scores ``r`` with a hand-written backward (see :func:`token_scores`).

    Autograd through ``‖T‖`` and the elementwise steps would make several passes over the large
    ``[B, M, D]`` text-token tensor; the analytic backward needs one (plus the unavoidable matmuls).
    """

    @staticmethod
    def forward(ctx, texts, patches, gram, logit_scale, normalizer, sparsify):  # type: ignore[override]
        raw = torch.bmm(texts, patches.transpose(1, 2))  # [B, M, Np]  A = T Pᵀ
        weights = patch_weights(raw, normalizer, sparsify)  # [B, M, Np]
        dot = (weights * raw).sum(dim=-1)  # [B, M]  ⟨Z_l, T_l⟩
        t_sq = torch.linalg.vector_norm(texts, dim=-1).pow(2)  # [B, M] (a reduction: no [B, M, D] temporary)
        z_sq = (torch.bmm(weights, gram) * weights).sum(dim=-1)  # [B, M]  ‖Z_l‖² = W_l G W_lᵀ
        scores, inv, t_norm, z_norm, clamped = _scaled_cosine(dot, t_sq, z_sq, logit_scale)  # [B, M] each
        ctx.save_for_backward(texts, patches, weights, dot, inv, t_norm, z_norm, scores, logit_scale, *clamped)
        return scores

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        texts, patches, weights, dot, inv, t_norm, z_norm, scores, logit_scale, t_clamped, z_clamped = ctx.saved_tensors
        need_t, need_p, need_g, need_s = ctx.needs_input_grad[:4]
        g_dot = grad * logit_scale * inv  # [B, M]  ∂/∂⟨Z, T⟩
        g_raw = g_dot.unsqueeze(-1) * weights  # [B, M, Np]  (weights carry no gradient)
        g_texts = g_patches = g_gram = g_scale = None
        if need_t:
            # ∂r/∂‖T‖ = −r/‖T‖ and ∂‖T‖/∂T = T/‖T‖ (zero where the norm is clamped)
            coef = (-grad * scores / t_norm.pow(2)).masked_fill(t_clamped, 0.0)
            g_texts = torch.bmm(g_raw, patches).addcmul_(texts, coef.unsqueeze(-1))  # [B, M, D], one fused pass
        if need_p:
            g_patches = torch.bmm(g_raw.transpose(1, 2), texts)  # [B, Np, D]
        if need_g:
            # ∂r/∂‖Z‖² = −r / (2‖Z‖²);  ∂‖Z‖²/∂G = W_lᵀ W_l
            g_zsq = (-grad * scores / (2 * z_norm.pow(2))).masked_fill(z_clamped, 0.0)
            g_gram = torch.bmm((weights * g_zsq.unsqueeze(-1)).transpose(1, 2), weights)  # [B, Np, Np]
        if need_s:
            g_scale = (grad * dot * inv).sum().reshape(logit_scale.shape)
        return g_texts, g_patches, g_gram, g_scale, None, None


class _TokenScoresExplicit(torch.autograd.Function):
    """Same scores as :class:`_TokenScores`, materialising ``Z = W P`` ``[B, M, D]`` instead of using the
    Gram matrix: fewer FLOPs when ``Np`` is large (ViT-B/16: 196 patches), more memory."""

    @staticmethod
    def forward(ctx, texts, patches, logit_scale, normalizer, sparsify):  # type: ignore[override]
        raw = torch.bmm(texts, patches.transpose(1, 2))  # [B, M, Np]
        weights = patch_weights(raw, normalizer, sparsify)  # [B, M, Np]
        grouped = torch.bmm(weights, patches)  # [B, M, D]  Z
        dot = torch.einsum("bmd,bmd->bm", grouped, texts)  # [B, M]
        t_sq = torch.linalg.vector_norm(texts, dim=-1).pow(2)
        z_sq = torch.linalg.vector_norm(grouped, dim=-1).pow(2)
        scores, inv, t_norm, z_norm, clamped = _scaled_cosine(dot, t_sq, z_sq, logit_scale)  # [B, M] each
        ctx.save_for_backward(texts, weights, grouped, dot, inv, t_norm, z_norm, scores, logit_scale, *clamped)
        return scores

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        texts, weights, grouped, dot, inv, t_norm, z_norm, scores, logit_scale, t_clamped, z_clamped = ctx.saved_tensors
        need_t, need_p, need_s = ctx.needs_input_grad[:3]
        g_dot = (grad * logit_scale * inv).unsqueeze(-1)  # [B, M, 1]
        g_texts = g_patches = g_scale = None
        if need_t:  # ∂r/∂T = s/(‖Z‖‖T‖)·Z − r·T/‖T‖²
            coef = (-grad * scores / t_norm.pow(2)).masked_fill(t_clamped, 0.0).unsqueeze(-1)
            g_texts = torch.mul(grouped, g_dot).addcmul_(texts, coef)
        if need_p:  # ∂r/∂Z = s/(‖Z‖‖T‖)·T − r·Z/‖Z‖²;  ∂/∂P = Wᵀ ∂/∂Z
            coef = (-grad * scores / z_norm.pow(2)).masked_fill(z_clamped, 0.0).unsqueeze(-1)
            g_grouped = torch.mul(texts, g_dot).addcmul_(grouped, coef)
            g_patches = torch.bmm(weights.transpose(1, 2), g_grouped)  # [B, Np, D]
        if need_s:
            g_scale = (grad * dot * inv).sum().reshape(logit_scale.shape)
        return g_texts, g_patches, g_scale, None, None


def prefer_gram(num_patches: int, num_text_tokens: int, dim: int) -> bool:
    """Whether the Gram form is cheaper than materialising ``Z`` for these sizes.

    The Gram form adds ``Np²·(3D + 2M)`` multiply-adds per image (``G``, ``W G`` and their backward);
    the explicit form adds a few elementwise passes over ``[M, D]``. Measured on CPU, the crossover lies
    between ViT-B/32 (Np = 49: Gram ~1.4x faster) and ViT-B/16 (Np = 196: explicit ~1.5x faster).
    """
    return num_patches**2 * (3 * dim + 2 * num_text_tokens) <= 150 * num_text_tokens * dim


def token_scores(
    image_tokens: Tensor,
    text_tokens: Tensor,
    logit_scale: Tensor,
    normalizer: str = "minmax",
    sparsify: bool = False,
    gram: Tensor | None = None,
    method: str = "auto",
) -> Tensor:
    """Per-token scaled cosine ``r_l = s · ⟨Ẑ_l, T̂_l⟩`` between token-grouped patches and each text token.

    Args:
        image_tokens: ``[B, Np, D]`` projected patch tokens (not normalised).
        text_tokens: ``[B, C, L, D]`` projected text tokens of C captions per image (not normalised).
        logit_scale: Scalar, already exponentiated.
        normalizer: See :func:`patch_weights`.
        sparsify: See :func:`patch_weights`.
        gram: Optional ``P Pᵀ`` ``[B, Np, Np]`` (with its graph), shared between caption groups.
        method: ``"gram"``, ``"explicit"`` or ``"auto"`` (:func:`prefer_gram`); same values either way.

    Returns:
        ``[B, C, L]`` scores.
    """
    b, c, length, dim = text_tokens.shape
    texts = text_tokens.reshape(b, c * length, dim)  # [B, C·L, D]
    if method == "auto":
        method = "gram" if prefer_gram(image_tokens.shape[1], c * length, dim) else "explicit"
    if method == "explicit":
        scores = _TokenScoresExplicit.apply(texts, image_tokens, logit_scale, normalizer, sparsify)
    elif method == "gram":
        if gram is None:
            gram = torch.bmm(image_tokens, image_tokens.transpose(1, 2))  # [B, Np, Np]
        scores = _TokenScores.apply(texts, image_tokens, gram, logit_scale, normalizer, sparsify)  # [B, C·L]
    else:
        raise ValueError(f"method must be 'auto', 'gram' or 'explicit', got {method!r}")
    return scores.reshape(b, c, length)


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
        total_tokens = sum(t.shape[1] * t.shape[2] for t, _ in caption_groups)
        method = "gram" if prefer_gram(patches.shape[1], total_tokens, patches.shape[2]) else "explicit"
        gram = torch.bmm(patches, patches.transpose(1, 2)) if method == "gram" else None  # [B, Np, Np]
        scores = torch.cat(
            [token_scores(patches, t.to(dtype), scale, normalizer, sparsify, gram, method) for t, _ in caption_groups],
            dim=1,
        )  # [B, C, L]
        token_mask = torch.cat([m for _, m in caption_groups], dim=1)  # [B, C, L]
        has_tokens = token_mask.any(dim=-1)  # [B, C]
        # −∞ on masked tokens; a caption with no token at all gets zeros so logsumexp (and its
        # gradient) stays finite — its score is masked out by the caller.
        masked = scores.masked_fill(~token_mask, float("-inf"))
        masked = torch.where(has_tokens.unsqueeze(-1), masked, torch.zeros_like(masked))
        return torch.logsumexp(masked, dim=-1), has_tokens
