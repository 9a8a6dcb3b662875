"""Local hard-negative (LHN) scores: token-grouped visual features compared token by token.

For image i and caption c (the positive or one of its K negatives):

1. ``A = T_c P_iᵀ`` ``[L, Np]`` — similarity of every text token to every patch, *without gradient*;
2. each row normalised over patches ("minmax" then divide by the row sum, optionally sparsified, or
   "softmax") into weights ``W``;
3. ``Z = W P_i`` (gradient flows through the patches), rows L2-normalised;
4. ``r_l = s · ⟨Ẑ_l, T̂_{c,l}⟩``; ``S(i, c) = logsumexp`` of ``r_l`` over the caption's valid tokens.

Implementation. Every token row is independent, so only the *valid* tokens are computed: the valid
tokens of an image's 1 + K captions are packed into one row block, images are sorted by their token
count and processed in chunks of similar counts (little padding, bounded temporaries). One autograd
function (:class:`_PackedTokenScores`) runs the chunks; it keeps only ``[tokens]``-sized statistics and
the ``[tokens, Np]`` weights, and re-gathers each chunk's tokens in the backward pass, so the big
``[B, C, L, D]`` token tensor is never copied whole and its gradient is written once, in place.

Two exact kernels compute a chunk (:data:`KERNELS`). For small patch grids ``Z`` is never formed: with
``A = T Pᵀ`` and the patch Gram matrix ``G = P Pᵀ``, ``⟨Z_l, T_l⟩ = Σ_p W_lp A_lp`` and
``‖Z_l‖² = W_l G W_lᵀ`` cost ``Np`` instead of ``D`` per token-patch pair. For large grids (ViT-B/16) the
Gram matrix costs more than it saves and ``Z = W P`` is formed (and formed again in the backward pass
rather than kept). Both backward passes are hand-written: autograd would make several elementwise passes
over the token tensor. :func:`prefer_gram` picks the kernel from the shapes.

Packing needs the token counts on the host (one synchronisation per call); under ``torch.compile`` the
dense form (:func:`token_scores`, all ``C·L`` positions, no synchronisation) is traced instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

SIM_NORMALIZERS = ("minmax", "softmax")
_NORM_EPS = 1e-12  # matches F.normalize
# Packed token rows per chunk, per device type and kernel. A chunk's temporaries are a few [rows, D] and [rows, Np]
# tensors, far below the token tensor's size. Measured on CPU (benchmarks/loss.py, B = 64-256, fwd + bwd, 1 thread):
# the Gram kernel (Np = 49) runs 10-20 % slower with 256-row chunks than with 512 (its per-chunk Gram matrices), the
# explicit kernel (Np = 196) runs as fast with 256 as with 512 and its peak drops by 4 MB at B = 64. On
# accelerators every chunk costs ~30 kernel launches, so the chunks are larger there (not measured in this
# repository: no GPU was available).
CHUNK_TOKENS = {"cpu": {"gram": 512, "explicit": 256}}
ACCELERATOR_CHUNK_TOKENS = 16384


@torch.no_grad()
def patch_weights(sim: Tensor, normalizer: str = "minmax", sparsify: bool = False) -> Tensor:
    """Normalise token-to-patch similarities over patches into weights that sum to 1.

    Args:
        sim: ``[..., Np]`` raw similarities (no gradient is taken).
        normalizer: ``"minmax"`` — ``(A − min)/(max − min)``, then divided by the row sum (computed as
            ``(A − min)/Σ(A − min)``: the same weights in two passes fewer); ``"softmax"`` — softmax over patches.
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
    shifted = sim - low  # [..., Np] ≥ 0; the division by (max − min) cancels in the row-sum normalisation
    if sparsify:  # (A − min)/(max − min) < 1/Np  ⇔  (A − min)·Np < max − min
        span = sim.amax(dim=-1, keepdim=True) - low
        shifted = shifted.masked_fill_(shifted * num_patches < span, 0.0)
    total = shifted.sum(dim=-1, keepdim=True)  # exactly 0 for a constant row (every entry is exactly 0)
    return shifted.div_(total).masked_fill_(total == 0, 1.0 / num_patches)  # in place: no [..., Np] copy


@dataclass
class _ChunkState:
    """What a kernel keeps of one chunk for its backward pass (all ``[c, m]`` except ``weights``)."""

    weights: Tensor  # [c, m, Np]
    dot: Tensor  # ⟨Z, T⟩
    inv: Tensor  # 1 / (‖T‖‖Z‖), norms clamped as F.normalize
    t_norm: Tensor
    z_norm: Tensor
    scores: Tensor
    t_clamped: Tensor  # bool: ‖T‖ below eps (gradient through the norm is zero there)
    z_clamped: Tensor


def _state(weights: Tensor, dot: Tensor, t_sq: Tensor, z_sq: Tensor, logit_scale: Tensor) -> _ChunkState:
    """``s·⟨Z,T⟩/(‖Z‖‖T‖)`` from the dot product and squared norms, with ``F.normalize``'s epsilon on each norm."""
    t_norm = t_sq.clamp_min(_NORM_EPS**2).sqrt()
    z_norm = z_sq.clamp_min(_NORM_EPS**2).sqrt()
    inv = 1.0 / (t_norm * z_norm)
    return _ChunkState(
        weights, dot, inv, t_norm, z_norm, logit_scale * dot * inv, t_sq < _NORM_EPS**2, z_sq < _NORM_EPS**2
    )


def _shared_backward(state: _ChunkState, grad: Tensor, logit_scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Terms both kernels need: ``∂/∂⟨Z,T⟩`` ``[c, m, 1]``, the ``T``-norm coefficient ``[c, m, 1]``
    (``∂r/∂‖T‖ = −r/‖T‖``, ``∂‖T‖/∂T = T/‖T‖``, zero where clamped) and ``∂/∂s``."""
    g_dot = (grad * logit_scale * state.inv).unsqueeze(-1)
    coef_t = (-grad * state.scores / state.t_norm.pow(2)).masked_fill(state.t_clamped, 0.0).unsqueeze(-1)
    return g_dot, coef_t, (grad * state.dot * state.inv).sum()


class GramKernel:
    """``‖Z‖² = W G Wᵀ``: ``Z`` never formed; cheaper for small grids (ViT-B/32, Np = 49)."""

    @staticmethod
    def forward(texts: Tensor, patches: Tensor, logit_scale: Tensor, normalizer: str, sparsify: bool) -> _ChunkState:
        raw = torch.bmm(texts, patches.transpose(1, 2))  # [c, m, Np]  A = T Pᵀ
        weights = patch_weights(raw, normalizer, sparsify)  # [c, m, Np]
        gram = torch.bmm(patches, patches.transpose(1, 2))  # [c, Np, Np]
        dot = (weights * raw).sum(dim=-1)  # [c, m]  ⟨Z_l, T_l⟩
        z_sq = (torch.bmm(weights, gram) * weights).sum(dim=-1)  # [c, m]  ‖Z_l‖² = W_l G W_lᵀ
        t_sq = torch.linalg.vector_norm(texts, dim=-1).pow(2)  # [c, m] (a reduction: no [c, m, D] temporary)
        return _state(weights, dot, t_sq, z_sq, logit_scale)

    @staticmethod
    def backward(
        state: _ChunkState, texts: Tensor, patches: Tensor, grad: Tensor, logit_scale: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        g_dot, coef_t, g_scale = _shared_backward(state, grad, logit_scale)
        g_raw = g_dot * state.weights  # [c, m, Np]  (weights carry no gradient)
        g_texts = torch.bmm(g_raw, patches).addcmul_(texts, coef_t)  # [c, m, D], one fused pass
        # ∂r/∂‖Z‖² = −r / (2‖Z‖²);  ∂‖Z‖²/∂G = W_lᵀ W_l;  ∂/∂P of G = P Pᵀ is (g_G + g_Gᵀ) P = 2 g_G P
        g_zsq = (-grad * state.scores / (2 * state.z_norm.pow(2))).masked_fill(state.z_clamped, 0.0)
        g_gram = torch.bmm((state.weights * g_zsq.unsqueeze(-1)).transpose(1, 2), state.weights)  # [c, Np, Np]
        g_patches = torch.baddbmm(torch.bmm(g_raw.transpose(1, 2), texts), g_gram, patches, alpha=2.0)
        return g_texts, g_patches, g_scale


class ExplicitKernel:
    """``Z = W P`` formed (and re-formed in the backward pass); cheaper for large grids (ViT-B/16, Np = 196)."""

    @staticmethod
    def forward(texts: Tensor, patches: Tensor, logit_scale: Tensor, normalizer: str, sparsify: bool) -> _ChunkState:
        raw = torch.bmm(texts, patches.transpose(1, 2))  # [c, m, Np]
        weights = patch_weights(raw, normalizer, sparsify)  # [c, m, Np]
        grouped = torch.bmm(weights, patches)  # [c, m, D]  Z
        dot = torch.einsum("bmd,bmd->bm", grouped, texts)  # [c, m]
        t_sq = torch.linalg.vector_norm(texts, dim=-1).pow(2)
        z_sq = torch.linalg.vector_norm(grouped, dim=-1).pow(2)
        return _state(weights, dot, t_sq, z_sq, logit_scale)

    @staticmethod
    def backward(
        state: _ChunkState, texts: Tensor, patches: Tensor, grad: Tensor, logit_scale: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        g_dot, coef_t, g_scale = _shared_backward(state, grad, logit_scale)
        grouped = torch.bmm(state.weights, patches)  # [c, m, D]  Z again: cheaper than keeping it
        g_texts = torch.mul(grouped, g_dot).addcmul_(texts, coef_t)  # ∂r/∂T = s/(‖Z‖‖T‖)·Z − r·T/‖T‖²
        # ∂r/∂Z = s/(‖Z‖‖T‖)·T − r·Z/‖Z‖²;  ∂/∂P = Wᵀ ∂/∂Z
        coef_z = (-grad * state.scores / state.z_norm.pow(2)).masked_fill(state.z_clamped, 0.0).unsqueeze(-1)
        g_grouped = grouped.mul_(coef_z).addcmul_(texts, g_dot)
        return g_texts, torch.bmm(state.weights.transpose(1, 2), g_grouped), g_scale


KERNELS = {"gram": GramKernel, "explicit": ExplicitKernel}


def prefer_gram(num_patches: int, num_text_tokens: int, dim: int) -> bool:
    """Whether the Gram kernel is cheaper than materialising ``Z`` for these sizes (per image).

    The Gram form adds ``Np²·(3D + 2M)`` multiply-adds per image (``G``, ``W G`` and their backward);
    the explicit form adds ``2·M·Np·D`` (``Z`` formed twice) and a few elementwise passes over ``[M, D]``.
    Measured on CPU with packed tokens (benchmarks/loss.py), Gram wins at ViT-B/32 (Np = 49) and loses
    clearly at ViT-B/16 (Np = 196).
    """
    return num_patches**2 * (3 * dim + 2 * num_text_tokens) <= 150 * num_text_tokens * dim


class _DenseTokenScores(torch.autograd.Function):
    """One kernel over all ``[B, M, D]`` token positions (no packing, no host synchronisation)."""

    @staticmethod
    def forward(ctx, texts, patches, logit_scale, kernel, normalizer, sparsify):  # type: ignore[override]
        state = kernel.forward(texts, patches, logit_scale, normalizer, sparsify)
        ctx.kernel, ctx.state = kernel, state
        ctx.save_for_backward(texts, patches, logit_scale)
        return state.scores

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        texts, patches, logit_scale = ctx.saved_tensors
        g_texts, g_patches, g_scale = ctx.kernel.backward(ctx.state, texts, patches, grad, logit_scale)
        return g_texts, g_patches, g_scale.reshape(logit_scale.shape), None, None, None


def token_scores(
    image_tokens: Tensor,
    text_tokens: Tensor,
    logit_scale: Tensor,
    normalizer: str = "minmax",
    sparsify: bool = False,
    method: str = "auto",
) -> Tensor:
    """Per-token scaled cosine ``r_l = s · ⟨Ẑ_l, T̂_l⟩`` at every token position (dense: padding included).

    Args:
        image_tokens: ``[B, Np, D]`` projected patch tokens (not normalised).
        text_tokens: ``[B, C, L, D]`` projected text tokens of C captions per image (not normalised).
        logit_scale: Scalar, already exponentiated.
        normalizer: See :func:`patch_weights`.
        sparsify: See :func:`patch_weights`.
        method: ``"gram"``, ``"explicit"`` or ``"auto"`` (:func:`prefer_gram`); same values either way.

    Returns:
        ``[B, C, L]`` scores.
    """
    b, c, length, dim = text_tokens.shape
    texts = text_tokens.reshape(b, c * length, dim)  # [B, C·L, D]
    if method == "auto":
        method = "gram" if prefer_gram(image_tokens.shape[1], c * length, dim) else "explicit"
    if method not in KERNELS:
        raise ValueError(f"method must be 'auto', 'gram' or 'explicit', got {method!r}")
    scores = _DenseTokenScores.apply(texts, image_tokens, logit_scale, KERNELS[method], normalizer, sparsify)
    return scores.reshape(b, c, length)


@dataclass
class _Chunk:
    """Images processed together and where their valid tokens come from and go to.

    ``dest`` indexes the chunk's flattened ``[c·m]`` packed rows; ``sources[j]`` the flattened
    ``[B·C_j·L]`` rows of caption group j (``dest_of[j]`` the matching packed rows); ``full`` the same
    tokens in the flattened ``[B·C·L]`` output.
    """

    images: Tensor  # [c]
    width: int  # m: packed rows per image (the chunk's largest token count)
    sources: list[Tensor]
    dest_of: list[Tensor]
    dest: Tensor
    full: Tensor


def _plan_chunks(token_mask: Tensor, group_sizes: Sequence[int], chunk_tokens: int) -> list[_Chunk]:
    """Sort images by valid-token count and cut them into chunks of at most ``chunk_tokens`` packed rows.

    Args:
        token_mask: ``[B, C, L]`` bool, True for tokens that count.
        group_sizes: ``C_j`` of each caption group (``ΣC_j = C``), in order.
        chunk_tokens: Packed-row budget of a chunk (at least one image per chunk).
    """
    b, c, length = token_mask.shape
    flat = token_mask.reshape(b, c * length)  # [B, M]
    counts = flat.sum(dim=1)  # [B]
    order = torch.argsort(counts, descending=True, stable=True)
    sorted_counts = counts[order].tolist()  # the one host synchronisation
    chunks, start = [], 0
    while start < b and sorted_counts[start] > 0:  # images without any valid token need no work
        width = sorted_counts[start]  # the largest count of this chunk (sorted descending)
        stop = start + max(1, chunk_tokens // width)
        chunks.append(_make_chunk(flat, order[start:stop], width, group_sizes, length))
        start = stop
    return chunks


def _make_chunk(flat: Tensor, images: Tensor, width: int, group_sizes: Sequence[int], length: int) -> _Chunk:
    rows, cols = flat[images].nonzero(as_tuple=True)  # valid tokens, row-major: [n] each
    rank = torch.cumsum(flat[images], dim=1)[rows, cols] - 1  # position of each token in its packed row
    dest = rows * width + rank  # [n] into [c·m]
    image = images[rows]
    sources, dest_of, offset = [], [], 0
    for size in group_sizes:
        inside = (cols >= offset * length) & (cols < (offset + size) * length)
        sources.append(image[inside] * size * length + cols[inside] - offset * length)
        dest_of.append(dest[inside])
        offset += size
    return _Chunk(images, width, sources, dest_of, dest, image * flat.shape[1] + cols)


def _gather(groups: Sequence[Tensor], chunk: _Chunk, dtype: torch.dtype) -> Tensor:
    """The chunk's packed tokens ``[c, m, D]`` (zeros past each image's count), in ``dtype``."""
    dim = groups[0].shape[-1]
    packed = groups[0].new_zeros(len(chunk.images) * chunk.width, dim, dtype=dtype)
    for group, source, dest in zip(groups, chunk.sources, chunk.dest_of):
        packed[dest] = group.reshape(-1, dim)[source].to(dtype)
    return packed.view(len(chunk.images), chunk.width, dim)


class _PackedTokenScores(torch.autograd.Function):
    """Scores of the valid tokens only, chunk by chunk (see the module docstring); ``[B, C·L]`` output
    with zeros at the other positions (their gradient is zero)."""

    @staticmethod
    def forward(ctx, patches, logit_scale, chunks, kernel, normalizer, sparsify, *groups):  # type: ignore[override]
        b, dtype = patches.shape[0], patches.dtype
        scores = patches.new_zeros(b * sum(g.shape[1] * g.shape[2] for g in groups))  # [B·C·L]
        states = []
        for chunk in chunks:
            texts = _gather(groups, chunk, dtype)  # [c, m, D]
            state = kernel.forward(texts, patches[chunk.images], logit_scale, normalizer, sparsify)
            scores[chunk.full] = state.scores.reshape(-1)[chunk.dest]
            states.append(state)
        ctx.chunks, ctx.states, ctx.kernel = chunks, states, kernel
        ctx.save_for_backward(patches, logit_scale, *groups)
        return scores.view(b, -1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # type: ignore[override]
        patches, logit_scale, *groups = ctx.saved_tensors
        grad = grad.reshape(-1)
        g_patches = torch.zeros_like(patches)
        need_groups = any(ctx.needs_input_grad[6:])  # False with a frozen text tower
        g_groups = [torch.zeros(g.shape, dtype=g.dtype, device=g.device) for g in groups] if need_groups else []
        g_scale = torch.zeros((), dtype=patches.dtype, device=patches.device)
        for chunk, state in zip(ctx.chunks, ctx.states):
            g_chunk = grad.new_zeros(state.scores.numel())
            g_chunk[chunk.dest] = grad[chunk.full]
            g_texts, g_p, g_s = ctx.kernel.backward(
                state, _gather(groups, chunk, patches.dtype), patches[chunk.images],
                g_chunk.view_as(state.scores), logit_scale,
            )  # fmt: skip
            g_patches[chunk.images] = g_p
            g_scale += g_s
            g_texts = g_texts.reshape(-1, g_texts.shape[-1])
            for g_group, source, dest in zip(g_groups, chunk.sources, chunk.dest_of):
                g_group.view(-1, g_group.shape[-1])[source] = g_texts[dest].to(g_group.dtype)
        return (
            g_patches,
            g_scale.reshape(logit_scale.shape),
            None,
            None,
            None,
            None,
            *(g_groups or [None] * len(groups)),
        )


def _valid_tokens_per_image(token_mask: Tensor) -> int:
    """Mean valid tokens per image of a ``[B, C, L]`` mask, at least 1 (a host synchronisation)."""
    return max(1, int(token_mask.sum()) // max(1, token_mask.shape[0]))


def packed_token_scores(
    image_tokens: Tensor,
    caption_groups: Sequence[tuple[Tensor, Tensor]],
    logit_scale: Tensor,
    normalizer: str = "minmax",
    sparsify: bool = False,
    chunk_tokens: int | None = None,
) -> Tensor:
    """Per-token scores of the valid tokens only (same values and gradients as :func:`token_scores` there).

    Args:
        image_tokens: ``[B, Np, D]`` in the compute dtype (float32 or float64).
        caption_groups: ``(text_tokens [B, C_j, L, D], token_mask [B, C_j, L] bool)`` pairs, any float dtype
            (each chunk is cast to ``image_tokens``' dtype; the group is never copied whole).
        logit_scale: Scalar, already exponentiated.
        normalizer: See :func:`patch_weights`.
        sparsify: See :func:`patch_weights`.
        chunk_tokens: Packed token rows per chunk (bounds the temporaries); None: :data:`CHUNK_TOKENS` of the
            device type and kernel, else :data:`ACCELERATOR_CHUNK_TOKENS`.

    Returns:
        ``[B, C, L]`` scores (``C = ΣC_j``), zero where the mask is False.
    """
    # contiguous(): a no-op for the trainer's tensors; otherwise one copy here rather than one per chunk
    groups = [t.contiguous() for t, _ in caption_groups]
    token_mask = torch.cat([m for _, m in caption_groups], dim=1)  # [B, C, L]
    b, c, length = token_mask.shape
    mean_tokens = _valid_tokens_per_image(token_mask)
    method = "gram" if prefer_gram(image_tokens.shape[1], mean_tokens, image_tokens.shape[2]) else "explicit"
    if chunk_tokens is None:
        budgets = CHUNK_TOKENS.get(image_tokens.device.type)
        chunk_tokens = budgets[method] if budgets else ACCELERATOR_CHUNK_TOKENS
    chunks = _plan_chunks(token_mask, [t.shape[1] for t in groups], chunk_tokens)  # all data dependence is here
    scores = _PackedTokenScores.apply(
        image_tokens, logit_scale, chunks, KERNELS[method], normalizer, sparsify, *groups
    )  # [B, C·L]
    return scores.view(b, c, length)


def local_scores(
    image_tokens: Tensor,
    caption_groups: Sequence[tuple[Tensor, Tensor]],
    logit_scale: Tensor,
    normalizer: str = "minmax",
    sparsify: bool = False,
) -> tuple[Tensor, Tensor]:
    """Aggregated local score ``S(i, c)`` for every image and each of its captions.

    Captions come in groups (e.g. the positives ``[B, 1, L, D]`` and the negatives ``[B, K, L, D]``) so
    that callers need not concatenate large token tensors. Computed in at least float32 (autocast off):
    the Gram-matrix form of ``‖Z‖`` must not run in half precision.

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
    if normalizer not in SIM_NORMALIZERS:
        raise ValueError(f"sim_normalizer must be one of {SIM_NORMALIZERS}, got {normalizer!r}")
    dtype = torch.promote_types(image_tokens.dtype, torch.float32)
    with torch.autocast(device_type=image_tokens.device.type, enabled=False):
        patches, scale = image_tokens.to(dtype), logit_scale.to(dtype)
        if torch.compiler.is_compiling():  # packing is data-dependent: trace the dense form
            total = sum(t.shape[1] * t.shape[2] for t, _ in caption_groups)
            method = "gram" if prefer_gram(patches.shape[1], total, patches.shape[2]) else "explicit"
            parts = [token_scores(patches, t.to(dtype), scale, normalizer, sparsify, method) for t, _ in caption_groups]
            scores = torch.cat(parts, dim=1)  # [B, C, L]
        else:
            scores = packed_token_scores(patches, caption_groups, scale, normalizer, sparsify)  # [B, C, L]
        token_mask = torch.cat([m for _, m in caption_groups], dim=1)  # [B, C, L]
        has_tokens = token_mask.any(dim=-1)  # [B, C]
        # −∞ on masked tokens; a caption with no token at all gets zeros so logsumexp (and its
        # gradient) stays finite — its score is masked out by the caller.
        masked = scores.masked_fill(~token_mask, float("-inf"))
        masked = torch.where(has_tokens.unsqueeze(-1), masked, torch.zeros_like(masked))
        return torch.logsumexp(masked, dim=-1), has_tokens
