"""Global and dense (per-patch, per-token) features from an unmodified open_clip model, in one pass.

Dense tokens are what the local hard-negative loss needs (FSC-CLIP paper, section 3; docs/losses.md):
- patch tokens: the ViT's last block output after ``ln_post``, CLS excluded, projected by ``visual.proj``;
- text tokens: the text transformer's last block output after ``ln_final``, projected by
  ``text_projection``; mask = not padding and not start-of-text (end-of-text kept).
Neither is normalised. The pooled rows of these projected tokens reproduce the model's own global
features (a test checks it), so the dense path cannot drift from ``model.encode_*``.

Short token tensors: captions are ~10–20 tokens but open_clip pads them to the full context (77). CLIP's text
attention is causal and pools the end-of-text token, so dropping trailing padding changes nothing at the kept
positions. :func:`trim_tokens` cuts a batch to its longest caption on the CPU (before it reaches the device, so
no host sync), and :func:`encode` then runs the text tower on the short tensor, using the first positions of the
positional embedding and attention mask. Dense text outputs are padded back to the full context (zeros, mask
False) so that loss inputs keep a fixed shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import Tensor

from fsc_clip.errors import UserError

MAX_LOGIT_SCALE = 100.0


class DenseFeaturesUnsupported(UserError):
    """The model's towers have no per-position projection (ResNet, timm or HF towers)."""


@dataclass
class Features:
    """Encoded batch. Shapes: B images, T texts, Np patches, L context length, D embedding dim."""

    image: Tensor | None  # [B, D], L2-normalised
    text: Tensor | None  # [T, D], L2-normalised
    logit_scale: Tensor  # [], exp()'d and clamped to <= 100
    image_tokens: Tensor | None = None  # [B, Np, D], projected, not normalised
    text_tokens: Tensor | None = None  # [T, L, D], projected, not normalised
    text_mask: Tensor | None = None  # [T, L] bool: real tokens except start-of-text


def _unwrap(model: torch.nn.Module) -> Any:
    # Any: open_clip models are duck-typed here (CLIP attributes such as ``visual`` or ``text_projection``).
    return getattr(model, "module", model)  # DDP


def supports_dense(model: torch.nn.Module) -> bool:
    """True for open_clip CLIP models with a ViT image tower and the built-in text transformer."""
    from open_clip.transformer import VisionTransformer

    m = _unwrap(model)
    return isinstance(getattr(m, "visual", None), VisionTransformer) and hasattr(m, "text_projection")


def text_token_mask(texts: Tensor, model: torch.nn.Module) -> Tensor:
    """[T, L] ids -> [T, L] bool: not padding, not start-of-text; the end-of-text token is kept."""
    m = _unwrap(model)
    pad_id = int(getattr(m, "pad_id", 0) or 0)
    mask = texts != pad_id
    mask[:, 0] = False  # start-of-text is always the first position for open_clip tokenizers
    return mask


def _project(tokens: Tensor, proj: torch.nn.Module | Tensor | None) -> Tensor:
    if proj is None:
        return tokens
    if isinstance(proj, torch.nn.Module):  # a Linear head (timm towers)
        return proj(tokens)
    return tokens @ proj  # a projection matrix [W, D] (open_clip CLIP)


def logit_scale_of(model: torch.nn.Module) -> Tensor:
    """exp(logit_scale) clamped at 100, as open_clip's training does."""
    return _unwrap(model).logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)


@overload
def trim_tokens(tokens: Tensor, /, *, pad_id: int = 0) -> tuple[Tensor]: ...


@overload
def trim_tokens(tokens: Tensor, other: Tensor | None, /, *, pad_id: int = 0) -> tuple[Tensor, Tensor | None]: ...


@overload
def trim_tokens(*token_tensors: Tensor | None, pad_id: int = 0) -> tuple[Tensor | None, ...]: ...


def trim_tokens(*token_tensors: Tensor | None, pad_id: int = 0) -> tuple[Tensor | None, ...]:
    """Cut token tensors (``[..., L]``) to the longest non-padding length among all of them.

    Call it on the CPU (collate, tokenisation) so the length is known without a device sync. All tensors get the
    same length, so positives and negatives of one batch still share ``L``.
    """
    real = [t != pad_id for t in token_tensors if t is not None and t.numel() > 0]
    lengths = [int(r.flatten(0, -2).any(0).nonzero().max()) + 1 for r in real if bool(r.any())]
    if not lengths:
        return token_tensors
    length = max(lengths)
    return tuple(t[..., :length].contiguous() if t is not None else None for t in token_tensors)


def _can_trim(m: torch.nn.Module, texts: Tensor) -> bool:
    """True for built-in CLIP text towers (causal mask, EOT pooling) fed fewer tokens than their context."""
    pos = getattr(m, "positional_embedding", None)
    return (
        pos is not None
        and texts.shape[1] < pos.shape[0]
        and getattr(m, "attn_mask", None) is not None
        and getattr(m, "text_pool_type", "argmax") in ("argmax", "eos")
    )


def _text_forward_short(m: Any, texts: Tensor) -> tuple[Tensor, Tensor]:
    """open_clip's text forward on ``L' < context`` tokens: returns (pooled projected [T, D], ln_final [T, L', W])."""
    from open_clip.model import text_global_pool

    length = texts.shape[1]
    cast_dtype = m.transformer.get_cast_dtype()
    x = m.token_embedding(texts).to(cast_dtype) + m.positional_embedding[:length].to(cast_dtype)  # [T, L', W]
    x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:length, :length]))
    pooled = text_global_pool(x, texts, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None))
    return _project(pooled, m.text_projection), x


def _pad_context(x: Tensor, context: int, value: float | bool = 0) -> Tensor:
    """Pad dim 1 of ``[T, L', ...]`` back to ``context`` positions."""
    if x.shape[1] == context:
        return x
    pad = x.new_full((x.shape[0], context - x.shape[1], *x.shape[2:]), value)
    return torch.cat([x, pad], dim=1)


def _encode_text_short(m: Any, texts: Tensor, dense: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Global text features (normalised) and, if ``dense``, tokens/mask padded back to the full context."""
    pooled, hidden = _text_forward_short(m, texts)
    if not dense:
        return F.normalize(pooled, dim=-1), None, None
    context = m.positional_embedding.shape[0]
    tokens = _pad_context(_project(hidden, m.text_projection), context)  # [T, L, D]
    mask = _pad_context(text_token_mask(texts, m), context, False)  # [T, L]
    return F.normalize(pooled, dim=-1), tokens, mask


def encode(
    model: torch.nn.Module, images: Tensor | None = None, texts: Tensor | None = None, dense: bool = False
) -> Features:
    """Encode images and/or texts; with ``dense=True`` also return projected patch/text tokens.

    Works in train mode with patch dropout (tokens are returned in NLC layout, so the number of
    kept patches may be smaller than the grid).
    """
    m = _unwrap(model)
    short = texts is not None and _can_trim(m, texts)
    if not dense:
        image = m.encode_image(images, normalize=True) if images is not None else None
        if texts is None:
            text = None
        else:
            text = _encode_text_short(m, texts, False)[0] if short else m.encode_text(texts, normalize=True)
        return Features(image=image, text=text, logit_scale=logit_scale_of(m))
    if not supports_dense(m):
        raise DenseFeaturesUnsupported(
            f"{type(m).__name__} with a {type(getattr(m, 'visual', None)).__name__} image tower has no per-patch / "
            "per-token projection; the local hard-negative loss needs an open_clip ViT model with the built-in "
            "text transformer. Use --loss-name negclip/clip (global losses) or a ViT architecture."
        )
    if short and texts is not None:  # images through open_clip as usual, short texts through our text forward
        feats = encode(m, images=images, dense=True) if images is not None else Features(None, None, logit_scale_of(m))
        feats.text, feats.text_tokens, feats.text_mask = _encode_text_short(m, texts, True)
        return feats
    out = m.forward_intermediates(
        image=images,
        text=texts,
        image_indices=1,
        text_indices=1,
        normalize=True,
        normalize_intermediates=True,
        image_output_fmt="NLC",
    )
    feats = Features(image=out.get("image_features"), text=out.get("text_features"), logit_scale=logit_scale_of(m))
    if images is not None:
        feats.image_tokens = _project(out["image_intermediates"][-1], m.visual.proj)  # [B, Np, D]
    if texts is not None:
        feats.text_tokens = _project(out["text_intermediates"][-1], m.text_projection)  # [T, L, D]
        feats.text_mask = text_token_mask(texts, m)  # [T, L]
    return feats


def normalize(x: Tensor) -> Tensor:
    """L2-normalise the last dimension (tiny helper shared by losses and evaluators)."""
    return F.normalize(x, dim=-1)
