"""Global and dense (per-patch, per-token) features from an unmodified open_clip model, in one pass.

Dense tokens are what the local hard-negative loss needs (METHOD.md §1):
- patch tokens: the ViT's last block output after ``ln_post``, CLS excluded, projected by ``visual.proj``;
- text tokens: the text transformer's last block output after ``ln_final``, projected by
  ``text_projection``; mask = not padding and not start-of-text (end-of-text kept).
Neither is normalised. The pooled rows of these projected tokens reproduce the model's own global
features (a test checks it), so the dense path cannot drift from ``model.encode_*``.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
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
    if isinstance(proj, torch.nn.Linear):
        return proj(tokens)
    return tokens @ proj


def logit_scale_of(model: torch.nn.Module) -> Tensor:
    """exp(logit_scale) clamped at 100, as open_clip's training does."""
    return _unwrap(model).logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def encode(
    model: torch.nn.Module, images: Tensor | None = None, texts: Tensor | None = None, dense: bool = False
) -> Features:
    """Encode images and/or texts; with ``dense=True`` also return projected patch/text tokens.

    Works in train mode with patch dropout (tokens are returned in NLC layout, so the number of
    kept patches may be smaller than the grid).
    """
    m = _unwrap(model)
    if not dense:
        image = m.encode_image(images, normalize=True) if images is not None else None
        text = m.encode_text(texts, normalize=True) if texts is not None else None
        return Features(image=image, text=text, logit_scale=logit_scale_of(m))
    if not supports_dense(m):
        raise DenseFeaturesUnsupported(
            f"{type(m).__name__} with a {type(getattr(m, 'visual', None)).__name__} image tower has no per-patch / "
            "per-token projection; the local hard-negative loss needs an open_clip ViT model with the built-in "
            "text transformer. Use --loss-name negclip/clip (global losses) or a ViT architecture."
        )
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
