"""AdamW parameter groups and the warm-up + cosine/constant learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from fsc_clip.training.config import OptimConfig


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """open_clip's rule: no decay on 1-d tensors (norm weights, biases, class embedding), norms, biases, logit scale.

    2-d embeddings (token and positional embeddings) do get weight decay, as in open_clip.
    """
    return param.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name


def is_lora_param(name: str) -> bool:
    """LoRA adapter parameters (named ``...lora_...``) get the LoRA learning-rate multiplier."""
    return "lora_" in name


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over trainable parameters in up to four groups: (decay | no decay) × (base | LoRA lr).

    Each group carries ``lr_mult`` so that the schedule can set ``lr = base_lr(step) * lr_mult``.

    Raises:
        ValueError: No parameter requires gradients (everything frozen).
    """
    groups: dict[tuple[bool, bool], list[torch.Tensor]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (no_weight_decay(name, param), is_lora_param(name))
        groups.setdefault(key, []).append(param)
    if not groups:
        raise ValueError("no trainable parameters: check model.lock_image / model.lock_text / LoRA settings")
    param_groups = [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else cfg.wd,
            "lr_mult": cfg.lora_lr_mult if lora else 1.0,
            "lr": cfg.lr * (cfg.lora_lr_mult if lora else 1.0),
        }
        for (no_decay, lora), params in sorted(groups.items())
    ]
    return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def lr_at(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """Base learning rate for optimizer step ``step`` (0-based), as open_clip computes it.

    Warm-up rises linearly to ``lr`` at step ``warmup - 1``; then ``cosine`` decays to 0 at
    ``total_steps`` and ``const`` stays at ``lr``.
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "const":
        return cfg.lr
    decay_steps = max(total_steps - cfg.warmup, 1)
    progress = min((step - cfg.warmup) / decay_steps, 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * progress)) * cfg.lr


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """Apply ``base_lr`` to every group, scaled by the group's ``lr_mult``."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group.get("lr_mult", 1.0)
