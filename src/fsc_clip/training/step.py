"""One optimizer step, readable top to bottom.

    images, positives + flattened negatives ──encode (one image forward, one text forward)──▶ features
    features ──loss──▶ {clip_loss, global_hn_loss, local_hn_loss} ──sum──▶ backward (AMP-scaled)
    unscale → clip grad norm → optimizer step → clamp logit scale at ln(100)

With ``accum_freq = A > 1`` the step stays *contrastive-correct*: a first no-grad pass caches the
features of all A micro-batches; then each micro-batch is re-encoded with gradient and the loss is
computed over the whole accumulated batch, with the other micro-batches' cached features as its
negatives. Summing the A backward passes gives exactly the gradient of the loss of one batch of
A·B (the loss only sees features; each pass supplies the gradient through one micro-batch's
features). The logit scale (and a SigLIP model's logit bias) enters every pass, so its gradient is scaled
by 1/A per pass.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import torch
from torch import nn

from fsc_clip.errors import UserError
from fsc_clip.training.distributed import DistInfo, any_rank

# Loss-input keys that are per-sample (concatenated along dim 0 across micro-batches).
_BATCHED = (
    "image_features",
    "text_features",
    "neg_text_features",
    "neg_mask",
    "image_tokens",
    "text_tokens",
    "text_mask",
    "neg_text_tokens",
    "neg_text_mask",
)


class DeviceBatch(TypedDict):
    """One micro-batch on the step's device (:func:`batch_to_device`)."""

    images: torch.Tensor  # [B, 3, H, W]
    texts: torch.Tensor  # [B, L]
    neg_texts: torch.Tensor | None  # [B, K, L]; None when the loss uses no negatives or the batch has none
    neg_mask: torch.Tensor | None  # [B, K]


class NonFiniteLossError(UserError, RuntimeError):
    """The loss became NaN/inf on at least one rank; every rank raises it at the same step."""


class FeatureEncoder(nn.Module):
    """Wraps the CLIP model so that one ``forward`` = one image forward + one text forward.

    DDP must wrap *this* module (its forward is what DDP hooks); it returns a dict of tensors.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, texts: torch.Tensor, dense: bool) -> dict[str, torch.Tensor | None]:
        from fsc_clip.models import encode

        feats = encode(self.model, images=images, texts=texts, dense=dense)
        out: dict[str, torch.Tensor | None] = {
            "image": feats.image,
            "text": feats.text,
            "logit_scale": feats.logit_scale,
            "logit_bias": feats.logit_bias,  # SigLIP-family models; None for CLIP
        }
        if dense:
            out.update(image_tokens=feats.image_tokens, text_tokens=feats.text_tokens, text_mask=feats.text_mask)
        return out


@dataclass
class StepContext:
    """Everything a step needs besides the batch."""

    encoder: nn.Module  # FeatureEncoder, possibly DDP-wrapped
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: Callable[[], contextlib.AbstractContextManager]
    dist: DistInfo
    logit_scale: nn.Parameter | None
    needs_dense: bool
    use_negatives: bool
    grad_clip_norm: float | None = None
    params: list[nn.Parameter] = field(default_factory=list)


def batch_to_device(batch: Any, device: torch.device, use_negatives: bool) -> DeviceBatch:
    """Move the tensors a step needs to ``device`` (negatives only when the loss uses them)."""
    has_negs = use_negatives and batch.neg_texts is not None
    return {
        "images": batch.images.to(device, non_blocking=True),
        "texts": batch.texts.to(device, non_blocking=True),
        "neg_texts": batch.neg_texts.to(device, non_blocking=True) if has_negs else None,
        "neg_mask": batch.neg_mask.to(device, non_blocking=True) if has_negs else None,
    }


def encode_batch(ctx: StepContext, mb: DeviceBatch) -> dict[str, torch.Tensor | None]:
    """Encode one micro-batch and arrange the features as the loss's keyword arguments."""
    texts, neg_texts = mb["texts"], mb["neg_texts"]  # [B, L], [B, K, L] | None
    n, k = texts.shape[0], 0 if neg_texts is None else neg_texts.shape[1]
    all_texts = texts if neg_texts is None else torch.cat([texts, neg_texts.flatten(0, 1)])  # [B + B*K, L]
    out = ctx.encoder(mb["images"], all_texts, ctx.needs_dense)
    text = out["text"]  # [B + B*K, D]
    inputs: dict[str, torch.Tensor | None] = {
        "image_features": out["image"],  # [B, D]
        "text_features": text[:n],  # [B, D]
        "neg_text_features": text[n:].unflatten(0, (n, k)) if k else None,  # [B, K, D]
        "neg_mask": mb["neg_mask"],  # [B, K]
        "logit_scale": out["logit_scale"],
        "logit_bias": out["logit_bias"],  # [] or None; every loss accepts it (softmax losses ignore it)
    }
    if ctx.needs_dense:
        tokens, mask = out["text_tokens"], out["text_mask"]  # [B + B*K, L, D], [B + B*K, L]
        inputs.update(
            image_tokens=out["image_tokens"],  # [B, Np, D]
            text_tokens=tokens[:n],
            text_mask=mask[:n],
            neg_text_tokens=tokens[n:].unflatten(0, (n, k)) if k else None,  # [B, K, L, D]
            neg_text_mask=mask[n:].unflatten(0, (n, k)) if k else None,  # [B, K, L]
        )
    return inputs


def _total(terms: dict[str, torch.Tensor], inject_nan: bool) -> torch.Tensor:
    total = sum(terms.values())
    if not isinstance(total, torch.Tensor):  # sum() of no terms is the int 0
        raise TypeError(f"the loss returned no tensor terms ({sorted(terms)}); nothing to backpropagate")
    if inject_nan:  # test hook (FSC_CLIP_TEST_NAN_AT_STEP), see fsc_clip.training.hooks
        total = total * float("nan")
    return total


def _check_finite(total: torch.Tensor, terms: dict[str, torch.Tensor], ctx: StepContext) -> None:
    # One all_reduce of a flag so that every rank stops at the same step (none is left in a collective).
    if any_rank(~torch.isfinite(total.detach()), ctx.dist):
        values = {k: float(v.detach()) for k, v in terms.items()}
        raise NonFiniteLossError(
            f"non-finite loss on at least one rank (rank {ctx.dist.rank} terms: {values}); all ranks stopped. "
            "Try a lower optim.lr, optim.grad_clip_norm, or precision amp_bf16/fp32."
        )


def compute_gradients(ctx: StepContext, micro_batches: Sequence[Any], inject_nan: bool = False) -> dict[str, Any]:
    """Forward + backward over one optimizer step's micro-batches; gradients end up in ``.grad``.

    Returns the detached loss terms of the whole (accumulated) batch plus ``loss`` (their sum).
    """
    mbs = [batch_to_device(b, ctx.dist.device, ctx.use_negatives) for b in micro_batches]
    if len(mbs) == 1:
        with ctx.autocast():
            terms = ctx.loss_fn(**encode_batch(ctx, mbs[0]))
            total = _total(terms, inject_nan)
        _check_finite(total, terms, ctx)
        ctx.scaler.scale(total).backward()
    else:
        terms, total = _accumulated_backward(ctx, mbs, inject_nan)
    out = {name: value.detach() for name, value in terms.items()}
    out["loss"] = total.detach()
    return out


def _accumulated_backward(
    ctx: StepContext, mbs: list[DeviceBatch], inject_nan: bool
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Contrastive-correct accumulation (see the module docstring)."""
    with torch.no_grad(), ctx.autocast():
        cached = [encode_batch(ctx, mb) for mb in mbs]
    n = len(mbs)
    for j, mb in enumerate(mbs):
        # Gradients are synchronised across ranks only on the last micro-batch.
        no_sync = getattr(ctx.encoder, "no_sync", None)  # DDP's; a plain module has none
        sync = contextlib.nullcontext() if j == n - 1 or no_sync is None else no_sync()
        with sync:
            with ctx.autocast():
                fresh = encode_batch(ctx, mb)
                inputs = _splice(cached, fresh, j)
                # The scalars enter every pass (not batched: _splice passes them through): value kept, gradient 1/A.
                for key in ("logit_scale", "logit_bias"):
                    if inputs.get(key) is not None:
                        inputs[key] = _grad_over_passes(inputs[key], n)
                terms = ctx.loss_fn(**inputs)
                total = _total(terms, inject_nan)
            _check_finite(total, terms, ctx)
            ctx.scaler.scale(total).backward()
    return terms, total


def _grad_over_passes(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x`` in value, ``x / n`` in gradient (a scalar that every one of ``n`` accumulation passes sees)."""
    return x / n + (x - x / n).detach()


def _splice(cached: list[dict[str, Any]], fresh: dict[str, Any], j: int) -> dict[str, Any]:
    """Loss inputs of the full accumulated batch with micro-batch ``j`` replaced by its fresh features."""
    parts = [*cached[:j], fresh, *cached[j + 1 :]]
    inputs: dict[str, Any] = {}
    for key in fresh:
        if key in _BATCHED and fresh[key] is not None:
            inputs[key] = torch.cat([p[key] for p in parts])
        else:
            inputs[key] = fresh[key]
    return inputs


def optimizer_step(ctx: StepContext) -> torch.Tensor | None:
    """Unscale, clip, step, reset gradients and clamp the logit scale; returns the pre-clip grad norm."""
    grad_norm = None
    if ctx.grad_clip_norm is not None:
        ctx.scaler.unscale_(ctx.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(ctx.params, ctx.grad_clip_norm)
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    ctx.optimizer.zero_grad(set_to_none=True)
    if ctx.logit_scale is not None:
        with torch.no_grad():  # open_clip's clamp: temperature scale never above 100
            ctx.logit_scale.clamp_(0, math.log(100))
    return grad_norm


def train_step(ctx: StepContext, micro_batches: Sequence[Any], inject_nan: bool = False) -> dict[str, Any]:
    """:func:`compute_gradients` then :func:`optimizer_step`; returns detached terms (+ ``grad_norm``)."""
    out = compute_gradients(ctx, micro_batches, inject_nan=inject_nan)
    grad_norm = optimizer_step(ctx)
    if grad_norm is not None:
        out["grad_norm"] = grad_norm.detach()
    return out


def iter_groups(iterator: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """Group consecutive loader batches into lists of ``size`` (an incomplete tail is dropped)."""
    group: list[Any] = []
    for item in iterator:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
