"""Low-rank adapters (LoRA) for open_clip models, as ``torch.nn.utils.parametrize`` parametrizations.

Why parametrizations and not wrapper modules: ``nn.MultiheadAttention`` reads ``in_proj_weight`` and
``out_proj.weight`` directly in its functional forward, so wrapping its sub-modules would silently
train nothing. A parametrization replaces the *weight attribute* itself with ``W + s·(B @ A)``, so
every code path that reads the weight — MHA's fused path, ``F.conv2d`` of the patch embedding,
``nn.Linear`` — sees the adapted weight. ``visual.proj`` and ``text_projection`` are bare
``nn.Parameter`` matrices, not layers: they stay frozen and untouched (dense token projection in
:func:`fsc_clip.models.encode` keeps working).

Targets (the authors' LoRA recipe, ytaek-oh/fsc-clip lora_utils): every ``nn.Linear`` (MLPs, attention output
projections), the patch-embedding ``Conv2d`` and the attention in-projections of both towers, the
latter with one rank-r adapter per q/k/v block.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils import parametrize

TARGETS = ("linear", "patch_embed", "attn_in_proj")
_META_ATTR = "_fsc_lora"  # {"rank", "alpha", "targets"} recorded on the model by apply_lora
_FLAGS_ATTR = "_fsc_lora_requires_grad"  # requires_grad of every parameter before apply_lora


class LoRADelta(nn.Module):
    """Parametrization ``W -> W + scaling · (B @ A)`` with ``groups`` independent row blocks.

    For a weight of shape ``[out, *rest]`` the update is built per row block ``g``:
    ``B[g] [out/groups, r] @ A[g] [r, prod(rest)]`` (a conv kernel is flattened over ``rest``).
    ``B`` starts at zero, so a freshly adapted model computes exactly what the base model does.
    """

    def __init__(self, weight: torch.Tensor, rank: int, scaling: float, groups: int = 1) -> None:
        super().__init__()
        out = weight.shape[0]
        if out % groups:
            raise ValueError(f"weight rows {out} not divisible into {groups} groups")
        fan_in = weight[0].numel()
        self.groups, self.rank, self.scaling = groups, rank, float(scaling)
        self.lora_A = nn.Parameter(  # [G, r, in]
            torch.empty(groups, rank, fan_in, device=weight.device, dtype=weight.dtype)
        )
        self.lora_B = nn.Parameter(  # [G, out/G, r]
            torch.zeros(groups, out // groups, rank, device=weight.device, dtype=weight.dtype)
        )
        for g in range(groups):  # as nn.Linear initialises its weight
            nn.init.kaiming_uniform_(self.lora_A.data[g], a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        """The low-rank update, flattened to ``[out, prod(rest)]``."""
        return torch.bmm(self.lora_B, self.lora_A).flatten(0, 1) * self.scaling  # [G·out/G, in]

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta().view_as(weight).to(weight.dtype)


def _targets_of(model: nn.Module, targets: Sequence[str]) -> Iterator[tuple[str, nn.Module, str, int]]:
    """(module name, module, tensor name, groups) for every adapted weight."""
    visual_conv1 = getattr(getattr(model, "visual", None), "conv1", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            kind, tensor_name, groups = "linear", "weight", 1
        elif isinstance(module, nn.Conv2d) and module is visual_conv1:
            kind, tensor_name, groups = "patch_embed", "weight", 1
        elif isinstance(module, nn.MultiheadAttention) and getattr(module, "in_proj_weight", None) is not None:
            kind, tensor_name, groups = "attn_in_proj", "in_proj_weight", 3  # one adapter per q/k/v block
        else:
            continue
        if kind in targets:
            yield name, module, tensor_name, groups


def apply_lora(
    model: nn.Module, rank: int = 4, alpha: float | None = None, targets: Sequence[str] = TARGETS
) -> nn.Module:
    """Add rank-``rank`` adapters in place and freeze every other parameter.

    Args:
        model: an open_clip model (unwrapped: apply before DDP / ``torch.compile``).
        rank: adapter rank r.
        alpha: scaling numerator; the update is ``(alpha / rank) · B @ A`` (``None``: alpha = rank, scale 1).
        targets: subset of ``("linear", "patch_embed", "attn_in_proj")``.

    Returns:
        The same model, with only LoRA parameters trainable.
    """
    if getattr(model, _META_ATTR, None):
        raise ValueError("apply_lora: the model already has LoRA adapters")
    unknown = set(targets) - set(TARGETS)
    if rank <= 0 or unknown:
        raise ValueError(
            f"apply_lora: rank must be > 0 and targets a subset of {TARGETS} (got {rank}, {sorted(unknown)})"
        )
    alpha = float(rank if alpha is None else alpha)
    setattr(model, _FLAGS_ATTR, {n: p.requires_grad for n, p in model.named_parameters()})
    found = list(_targets_of(model, targets))
    for p in model.parameters():
        p.requires_grad_(False)
    for _name, module, tensor_name, groups in found:
        weight = getattr(module, tensor_name)
        parametrize.register_parametrization(module, tensor_name, LoRADelta(weight, rank, alpha / rank, groups))
    if not found:
        raise ValueError(f"apply_lora: no layer of {type(model).__name__} matches targets {list(targets)}")
    setattr(model, _META_ATTR, {"rank": int(rank), "alpha": alpha, "targets": list(targets)})
    return model


def lora_modules(model: nn.Module) -> Iterator[LoRADelta]:
    """Every adapter in ``model``."""
    for module in model.modules():
        if isinstance(module, LoRADelta):
            yield module


def lora_config(model: nn.Module) -> dict[str, Any] | None:
    """``{"rank", "alpha", "targets"}`` of an adapted model (what checkpoints record), else ``None``."""
    meta = getattr(model, _META_ATTR, None)
    return dict(meta) if meta else None


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors (``...lora_A`` / ``...lora_B``) of ``model.state_dict()``."""
    return {k: v for k, v in model.state_dict().items() if k.endswith((".lora_A", ".lora_B"))}


@torch.no_grad()
def scale_lora(model: nn.Module, factor: float) -> nn.Module:
    """Multiply every adapter update by ``factor`` (scales ``B``; the delta is linear in it)."""
    for module in lora_modules(model):
        module.lora_B.mul_(float(factor))
    return model


@torch.no_grad()
def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the adapters into plain weights, remove them, and restore the original ``requires_grad`` flags."""
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        parametrizations = cast(nn.ModuleDict, module.parametrizations)
        for tensor_name in list(parametrizations.keys()):
            if any(isinstance(p, LoRADelta) for p in cast(nn.ModuleList, parametrizations[tensor_name])):
                parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
    flags = getattr(model, _FLAGS_ATTR, {})
    for name, p in model.named_parameters():
        p.requires_grad_(flags.get(name, True))
    for attr in (_META_ATTR, _FLAGS_ATTR):
        if hasattr(model, attr):
            delattr(model, attr)
    return model
