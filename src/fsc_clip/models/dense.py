"""Global and dense (per-patch, per-token) features from an unmodified open_clip model, in one pass.

Dense tokens are what the local hard-negative loss needs (FSC-CLIP paper, section 3; docs/losses.md). Written
against open_clip_torch 3.3.0 (``model.py``, ``transformer.py``, ``timm_model.py``) and timm 1.0.31
(``models/vision_transformer.py``, ``models/eva.py``, ``layers/attention_pool.py``).

**One definition for every tower.** The dense feature of a patch or text position is what the tower's own head
(pooling, final norms, projection) outputs for a sequence in which *every* position holds that token. Each pooling
then reduces to a per-token function of the final-layer token:

- open_clip ``VisionTransformer`` (OpenAI CLIP, CLIPA, ...): ``ln_post`` then ``visual.proj``, class token excluded;
- timm ViT / EVA towers (EVA02, SigLIP, PE-Core, MobileCLIP2-ViT): the trunk's ``forward_features`` output (final
  norm applied), prefix tokens (class, registers: ``num_prefix_tokens``) excluded, then the trunk's head
  (``fc_norm``, ``head``) and open_clip's adapter head (``TimmModel.head``: projection or MLP, if any). A MAP
  head (``AttentionPoolLatent``) is applied to the token as a one-token sequence: its attention is then one-hot,
  so the token passes through the value projection, the output projection, and the norm + MLP residual;
- text towers (open_clip ``TextTransformer``, causal or not): ``ln_final`` then ``text_projection`` (a matrix or a
  biased ``Linear``), every position.

Where the pooling is linear the pooled token reproduces the model's global feature exactly (tests check each):
the class token's dense feature for token pooling, the mean of the dense features for average pooling without a
norm after the pool, the pooled position's token for text (end-of-text, or the last position for SigLIP). For
CLIPA (``final_ln_after_pool``) and timm ``avg`` pooling with ``fc_norm`` the LayerNorm after the pool makes the
mean an approximation; for a MAP head the attention-weighted sum is exact before the head's MLP (per attention head,
see docs/models.md) and the MLP is applied per token.

Towers without patch tokens (ModifiedResNet, ConvNeXt, FastViT/MobileCLIP, Swin), CoCa's attentional pooler and
Hugging Face text towers raise :class:`DenseFeaturesUnsupported`; global features work for every open_clip model.

**Text mask** (``Features.text_mask``): positions that are not padding and not a start token. Which ids those are
depends on the tokenizer, not the model (SigLIP pads with id 1 and has no start token; CLIP's BPE pads with 0 after
a start-of-text token; BERT has ``[CLS]`` first), so the model loader probes the tokenizer once
(:func:`text_layout_of`) and records the result on the model (:func:`attach_text_layout`). A model built outside
:func:`fsc_clip.models.load_model` gets open_clip's default tokenizer's layout (pad 0, start-of-text first). The
end-of-text token is kept where its id differs from padding (CLIP, Gemma); SigLIP's T5 vocabulary uses one id for
both, so its end-of-sequence is masked with the padding.

**Short token tensors**: captions are ~10–20 tokens but tokenizers pad them to the full context. CLIP's text
attention is causal and pools the end-of-text token, so dropping trailing padding changes nothing at the kept
positions. :func:`trim_tokens` cuts a batch to its longest caption on the CPU (before it reaches the device, so
no host sync), and :func:`encode` then runs the text tower on the short tensor, using the first positions of the
positional embedding and attention mask. A bidirectional tower (SigLIP, CLIPA, MobileCLIP) attends to its padding
and SigLIP pools the last position, so there :func:`encode` pads a trimmed batch back to the full context before
running it (exact: :func:`trim_tokens` only removes trailing id-0 positions). Dense text outputs are padded back to
the full context (zeros, mask False) so that loss inputs keep a fixed shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import Tensor

from fsc_clip.errors import UserError

MAX_LOGIT_SCALE = 100.0
TRIM_PAD_ID = 0  # the id trim_tokens strips by default (and the one our collate / embedder strip)
TEXT_LAYOUT_ATTR = "fsc_text_layout"  # where attach_text_layout keeps a model's tokenizer layout
MODEL_NAME_ATTR = "fsc_model_name"  # ... and its architecture name
_GLOBAL_LOSSES = "clip, negclip, siglip or negsiglip"


class DenseFeaturesUnsupported(UserError):
    """The model's towers have no per-position features (ResNet/ConvNeXt/FastViT image towers, HF text towers)."""


@dataclass
class Features:
    """Encoded batch. Shapes: B images, T texts, Np patches, L context length, D embedding dim."""

    image: Tensor | None  # [B, D], L2-normalised
    text: Tensor | None  # [T, D], L2-normalised
    logit_scale: Tensor  # [], exp()'d and clamped to <= 100
    image_tokens: Tensor | None = None  # [B, Np, D], projected, not normalised
    text_tokens: Tensor | None = None  # [T, L, D], projected, not normalised
    text_mask: Tensor | None = None  # [T, L] bool: real tokens except a start token (see text_token_mask)
    logit_bias: Tensor | None = None  # [] raw parameter (SigLIP-family models); None for models without one


def _unwrap(model: torch.nn.Module) -> Any:
    # Any: open_clip models are duck-typed here (CLIP attributes such as ``visual`` or ``text_projection``).
    return getattr(model, "module", model)  # DDP


# ----- tokenizer layout and the text mask ----------------------------------------------------------------------


@dataclass(frozen=True)
class TextLayout:
    """Where a tokenizer puts its special tokens, as far as the dense text mask is concerned.

    Attributes:
        pad_id: Id filling the positions after the caption.
        has_start: Every caption starts with the same special token (CLIP's start-of-text, BERT's ``[CLS]``).
    """

    pad_id: int = 0
    has_start: bool = True


CLIP_LAYOUT = TextLayout(pad_id=0, has_start=True)  # open_clip's SimpleTokenizer (CLIP BPE)


def text_layout_of(tokenizer: Callable[[list[str]], Tensor]) -> TextLayout:
    """Probe a tokenizer: the id after a one-word caption is padding; a shared first id of two captions that
    begin with different words is a start token (unless it is the padding id)."""
    ids = tokenizer(["a", "two"])  # [2, L]; L is the context length, far longer than these captions
    pad_id = int(ids[0, -1])
    first = ids[:, 0]
    return TextLayout(pad_id=pad_id, has_start=bool(first[0] == first[1]) and int(first[0]) != pad_id)


def attach_text_layout(
    model: torch.nn.Module, tokenizer: Callable[[list[str]], Tensor], name: str | None = None
) -> TextLayout:
    """Record ``tokenizer``'s layout on ``model`` for :func:`text_token_mask`, and the architecture ``name`` for
    error messages (the model loader calls this)."""
    layout = text_layout_of(tokenizer)
    m = _unwrap(model)
    setattr(m, TEXT_LAYOUT_ATTR, layout)
    if name:
        setattr(m, MODEL_NAME_ATTR, name)
    return layout


def text_layout(model: torch.nn.Module) -> TextLayout:
    """The layout recorded by :func:`attach_text_layout`, else open_clip's default tokenizer's."""
    return getattr(_unwrap(model), TEXT_LAYOUT_ATTR, None) or CLIP_LAYOUT


def text_token_mask(texts: Tensor, model: torch.nn.Module) -> Tensor:
    """[T, L] ids -> [T, L] bool: not padding, not a start token; the end-of-text token is kept (if not padding)."""
    layout = text_layout(model)
    mask = texts != layout.pad_id
    if layout.has_start:
        mask[:, 0] = False  # the start token is always the first position
    return mask


# ----- small helpers -----------------------------------------------------------------------------------------------


def _project(tokens: Tensor, proj: torch.nn.Module | Tensor | None) -> Tensor:
    if proj is None:
        return tokens
    if isinstance(proj, torch.nn.Module):  # a Linear head (timm towers, biased text projections)
        return proj(tokens)
    return tokens @ proj  # a projection matrix [W, D] (open_clip CLIP)


def logit_scale_of(model: torch.nn.Module) -> Tensor:
    """exp(logit_scale) clamped at 100, as open_clip's training does."""
    return _unwrap(model).logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)


def logit_bias_of(model: torch.nn.Module) -> Tensor | None:
    """The model's raw learnable logit bias (SigLIP-family models: ``init_logit_bias`` in the config), else None."""
    return getattr(_unwrap(model), "logit_bias", None)


def _pad_context(x: Tensor, context: int, value: float | bool = 0) -> Tensor:
    """Pad dim 1 of ``[T, L', ...]`` back to ``context`` positions."""
    if x.shape[1] >= context:
        return x
    pad = x.new_full((x.shape[0], context - x.shape[1], *x.shape[2:]), value)
    return torch.cat([x, pad], dim=1)


@overload
def trim_tokens(tokens: Tensor, /, *, pad_id: int = 0) -> tuple[Tensor]: ...


@overload
def trim_tokens(tokens: Tensor, other: Tensor | None, /, *, pad_id: int = 0) -> tuple[Tensor, Tensor | None]: ...


@overload
def trim_tokens(*token_tensors: Tensor | None, pad_id: int = 0) -> tuple[Tensor | None, ...]: ...


def trim_tokens(*token_tensors: Tensor | None, pad_id: int = TRIM_PAD_ID) -> tuple[Tensor | None, ...]:
    """Cut token tensors (``[..., L]``) to the longest non-padding length among all of them.

    Call it on the CPU (collate, tokenisation) so the length is known without a device sync. All tensors get the
    same length, so positives and negatives of one batch still share ``L``. Safe for every model: :func:`encode`
    pads a trimmed batch back (with id 0) for text towers on which trimming is not exact.
    """
    real = [t != pad_id for t in token_tensors if t is not None and t.numel() > 0]
    lengths = [int(r.flatten(0, -2).any(0).nonzero().max()) + 1 for r in real if bool(r.any())]
    if not lengths:
        return token_tensors
    length = max(lengths)
    return tuple(t[..., :length].contiguous() if t is not None else None for t in token_tensors)


# ----- text towers -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TextTower:
    """open_clip's built-in text transformer, wherever the model keeps it (``CLIP``: on the model itself;
    ``CustomTextCLIP``: ``model.text``)."""

    owner: Any  # holds token_embedding, positional_embedding, transformer, ln_final, text_projection
    pool_type: str
    eos_id: int | None
    attn_mask: Tensor | None  # [L, L] causal, or None (bidirectional)
    context: int

    @property
    def trim_is_exact(self) -> bool:
        """Causal attention and a pooled position inside the caption: trailing padding cannot change the output."""
        return self.attn_mask is not None and self.pool_type in ("argmax", "eos", "first")


def _text_tower(m: Any) -> _TextTower | None:
    """The model's built-in text tower, or None (HF text tower, CoCa's class-token tower, padding-masked tower)."""
    from open_clip.transformer import TextTransformer

    text = getattr(m, "text", None)
    if isinstance(text, TextTransformer):
        if text.cls_emb is not None or text.use_pad_mask or text.pool_type == "none":
            return None
        return _TextTower(text, text.pool_type, text.eos_id, text.attn_mask, int(text.context_length))
    if text is None and hasattr(m, "token_embedding") and getattr(m, "text_pool_type", "none") != "none":
        return _TextTower(m, m.text_pool_type, getattr(m, "text_eos_id", None), m.attn_mask, int(m.context_length))
    return None


def _text_reason(m: Any) -> str | None:
    """Why the model's text tower gives no dense tokens (None: it does)."""
    if _text_tower(m) is not None:
        return None
    text = getattr(m, "text", None)
    if getattr(text, "cls_emb", None) is not None:
        return "its text tower pools an appended class token (CoCa), whose tokens are not in the joint space"
    return f"its text tower ({type(text).__name__}) is not open_clip's text transformer"


def _text_context(m: Any) -> int | None:
    """Context length of an open_clip text transformer (built-in or CoCa's); None for Hugging Face towers, which
    mask their padding themselves."""
    from open_clip.transformer import TextTransformer

    text = getattr(m, "text", None)
    if isinstance(text, TextTransformer):
        return int(text.context_length)
    return int(m.context_length) if text is None and hasattr(m, "token_embedding") else None


def _text_forward(tower: _TextTower, texts: Tensor) -> tuple[Tensor, Tensor]:
    """open_clip's text forward on ``L' <= context`` tokens: (pooled projected [T, D], ln_final [T, L', W])."""
    from open_clip.model import text_global_pool

    t = tower.owner
    length = texts.shape[1]
    cast_dtype = t.transformer.get_cast_dtype()
    x = t.token_embedding(texts).to(cast_dtype) + t.positional_embedding[:length].to(cast_dtype)  # [T, L', W]
    mask = tower.attn_mask[:length, :length] if tower.attn_mask is not None else None
    x = t.ln_final(t.transformer(x, attn_mask=mask))
    pooled = text_global_pool(x, texts, tower.pool_type, eos_token_id=tower.eos_id)
    return _project(pooled, t.text_projection), x


def _encode_text(m: Any, texts: Tensor, dense: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Global text features (normalised) and, if ``dense``, tokens/mask padded back to the full context."""
    tower = _text_tower(m)
    context = _text_context(m)
    if context is not None and texts.shape[1] < context and not (tower is not None and tower.trim_is_exact):
        texts = _pad_context(texts, context, TRIM_PAD_ID)  # undo trim_tokens where the tower sees its padding
    if tower is None or (not dense and texts.shape[1] == tower.context):
        return m.encode_text(texts, normalize=True), None, None  # open_clip's own forward
    pooled, hidden = _text_forward(tower, texts)
    if not dense:
        return F.normalize(pooled, dim=-1), None, None
    tokens = _pad_context(_project(hidden, tower.owner.text_projection), tower.context)  # [T, L, D]
    mask = _pad_context(text_token_mask(texts, m), tower.context, False)  # [T, L]
    return F.normalize(pooled, dim=-1), tokens, mask


# ----- image towers ------------------------------------------------------------------------------------------------

ImageTokensFn = Callable[[Any, Tensor], tuple[Tensor, Tensor]]  # (visual, images) -> (pooled [B, D], tokens)


def _open_clip_vit_tokens(visual: Any, images: Tensor) -> tuple[Tensor, Tensor]:
    """open_clip ViT: ``ln_post`` then ``proj`` per patch (``final_ln_after_pool`` towers apply it after the pool)."""
    out = visual.forward_intermediates(images, indices=1, normalize_intermediates=True, output_fmt="NLC")
    return out["image_features"], _project(out["image_intermediates"][-1], visual.proj)  # [B, D], [B, Np, D]


def _open_clip_vit_reason(visual: Any) -> str | None:
    if visual.attn_pool is not None:
        return "its ViT pools with an attentional pooler (CoCa), which has no per-patch counterpart"
    if visual.pool_type == "none":
        return "its ViT does not pool its tokens"
    return None


def timm_token_head(visual: Any, tokens: Tensor) -> Tensor:
    """The head of a timm ViT tower (open_clip ``TimmModel``) applied to each token on its own.

    Args:
        visual: The ``TimmModel``.
        tokens: ``[..., N, C]`` final-layer tokens (after the trunk's final norm).

    Returns:
        ``[..., N, D]``: for each token, the tower's output for a sequence in which every position holds it. A MAP
        head sees the token as a one-token sequence (its attention is then one-hot).
    """
    trunk = visual.trunk
    x = tokens
    if getattr(trunk, "attn_pool", None) is not None:  # timm's VisionTransformerRelPos has no attn_pool
        flat = tokens.reshape(-1, 1, tokens.shape[-1])  # [B·N, 1, C]
        x = trunk.attn_pool(flat).reshape(*tokens.shape[:-1], -1)  # [..., N, C']
    x = trunk.head_drop(trunk.fc_norm(x))
    return visual.head(trunk.head(x))


def _timm_vit_tokens(visual: Any, images: Tensor) -> tuple[Tensor, Tensor]:
    """timm ViT / EVA trunk: one trunk pass; pooled as ``TimmModel.forward``, patches through the same head."""
    trunk = visual.trunk
    final = trunk.forward_features(images)  # [B, P + Np, C], final norm applied
    pooled = visual.head(trunk.forward_head(final))  # = TimmModel.forward(images)
    return pooled, timm_token_head(visual, final[:, trunk.num_prefix_tokens :])


def _timm_reason(visual: Any) -> str | None:
    from timm.layers import AttentionPoolLatent, Mlp
    from timm.models.eva import Eva
    from timm.models.vision_transformer import VisionTransformer
    from timm.models.vision_transformer_relpos import VisionTransformerRelPos

    trunk = visual.trunk
    if not isinstance(trunk, VisionTransformer | Eva | VisionTransformerRelPos):
        return (
            f"its timm {type(trunk).__name__} trunk has no patch tokens (convolutional and hierarchical towers such "
            "as FastViT/MobileCLIP, ConvNeXt and Swin pool a feature map; supported: timm ViT and EVA trunks)"
        )
    pool = getattr(trunk, "attn_pool", None)
    if pool is not None:
        if not isinstance(pool, AttentionPoolLatent) or pool.pos_embed is not None or pool.pool not in ("token", "avg"):
            return f"its timm trunk pools with a {type(pool).__name__} head this toolkit does not decompose per token"
    elif trunk.global_pool not in ("token", "avg", "avgmax", "max"):
        return f"its timm trunk does not pool its tokens (global_pool={trunk.global_pool!r})"
    if not all(isinstance(layer, torch.nn.Dropout | torch.nn.Linear | Mlp) for layer in visual.head):
        return "its open_clip TimmModel head pools a feature map (abs_attn / rot_attn)"
    return None


def _image_tokens_fn(visual: Any) -> tuple[ImageTokensFn | None, str | None]:
    """The dense-token function of an image tower, or (None, the reason it has none)."""
    from open_clip.timm_model import TimmModel
    from open_clip.transformer import VisionTransformer

    towers: Sequence[tuple[type, ImageTokensFn, Callable[[Any], str | None]]] = (
        (VisionTransformer, _open_clip_vit_tokens, _open_clip_vit_reason),
        (TimmModel, _timm_vit_tokens, _timm_reason),
    )
    for cls, tokens_fn, reason_fn in towers:
        if isinstance(visual, cls):
            reason = reason_fn(visual)
            return (None, reason) if reason else (tokens_fn, None)
    return None, f"its {type(visual).__name__} image tower has no patch tokens"


def _encode_image(m: Any, images: Tensor, dense: bool) -> tuple[Tensor, Tensor | None]:
    if not dense:
        return m.encode_image(images, normalize=True), None
    tokens_fn, _ = _image_tokens_fn(m.visual)
    assert tokens_fn is not None  # encode() checked
    pooled, tokens = tokens_fn(m.visual, images)
    return F.normalize(pooled, dim=-1), tokens


# ----- public entry points -----------------------------------------------------------------------------------------


def dense_unsupported_reason(model: torch.nn.Module, image: bool = True, text: bool = True) -> str | None:
    """Why ``encode(..., dense=True)`` cannot serve this model (None: it can), for the towers asked about."""
    m = _unwrap(model)
    reasons = []
    if image:
        reasons.append(_image_tokens_fn(getattr(m, "visual", None))[1])
    if text:
        reasons.append(_text_reason(m))
    found = [r for r in reasons if r]
    if not found:
        return None
    name = getattr(m, MODEL_NAME_ATTR, None)
    label = f"{name} ({type(m).__name__})" if name else type(m).__name__
    return (
        f"{label}: {'; '.join(found)}. The local hard-negative loss (fsc-clip, fsc-siglip) needs per-patch "
        f"and per-token features: train this model with a global loss ({_GLOBAL_LOSSES}) or choose a ViT-family "
        "model with open_clip's text transformer (OpenAI/LAION ViT, CLIPA, EVA02, SigLIP/SigLIP2, PE-Core)."
    )


def supports_dense(model: torch.nn.Module) -> bool:
    """True if both towers give dense tokens: a ViT image tower (open_clip's, or a timm ViT/EVA with token, average or
    MAP pooling) and open_clip's text transformer (causal or bidirectional)."""
    return dense_unsupported_reason(model) is None


def encode(
    model: torch.nn.Module, images: Tensor | None = None, texts: Tensor | None = None, dense: bool = False
) -> Features:
    """Encode images and/or texts; with ``dense=True`` also return projected patch/text tokens.

    Works in train mode with patch dropout (tokens are returned in NLC layout, so the number of kept patches may be
    smaller than the grid). ``texts`` may be trimmed by :func:`trim_tokens`.

    Raises:
        DenseFeaturesUnsupported: ``dense=True`` and a tower that was given inputs has no per-position features.
    """
    m = _unwrap(model)
    if dense:
        reason = dense_unsupported_reason(m, image=images is not None, text=texts is not None)
        if reason:
            raise DenseFeaturesUnsupported(reason)
    feats = Features(image=None, text=None, logit_scale=logit_scale_of(m), logit_bias=logit_bias_of(m))
    if images is not None:
        feats.image, feats.image_tokens = _encode_image(m, images, dense)
    if texts is not None:
        feats.text, feats.text_tokens, feats.text_mask = _encode_text(m, texts, dense)
    return feats


def normalize(x: Tensor) -> Tensor:
    """L2-normalise the last dimension (tiny helper shared by losses and evaluators)."""
    return F.normalize(x, dim=-1)
