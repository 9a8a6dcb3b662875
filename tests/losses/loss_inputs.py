"""Random float64 loss inputs with awkward masks, shared by the loss tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_inputs(seed: int = 0, batch: int = 6, k: int = 3, length: int = 6, dim: int = 8, patches: int = 7):
    """Leaf tensors (requires_grad) + masks. Row 0 has no valid negative, row 1 all valid; the
    start-of-text position is never valid; one negative has no valid token, one caption a single token."""
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape, normalize=False):
        x = torch.randn(*shape, generator=gen, dtype=torch.float64)
        x = F.normalize(x, dim=-1) if normalize else x
        return x.requires_grad_()

    neg_mask = torch.rand(batch, k, generator=gen) > 0.4
    neg_mask[0] = False
    neg_mask[1] = True
    text_mask = torch.rand(batch, length, generator=gen) > 0.3
    text_mask[:, 0] = False
    text_mask[:, 1] = True
    text_mask[2] = False
    text_mask[2, 3] = True  # a positive caption with a single valid token
    neg_text_mask = torch.rand(batch, k, length, generator=gen) > 0.3
    neg_text_mask[..., 0] = False
    neg_text_mask[1, 2] = False  # a (valid) negative without any valid token
    return {
        "image_features": leaf(batch, dim, normalize=True),
        "text_features": leaf(batch, dim, normalize=True),
        "neg_text_features": leaf(batch, k, dim, normalize=True),
        "neg_mask": neg_mask,
        "logit_scale": torch.tensor(7.0, dtype=torch.float64, requires_grad=True),
        "image_tokens": leaf(batch, patches, dim),
        "text_tokens": leaf(batch, length, dim),
        "text_mask": text_mask,
        "neg_text_tokens": leaf(batch, k, length, dim),
        "neg_text_mask": neg_text_mask,
    }


def grad_leaves(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.requires_grad}


def grads_of(total: torch.Tensor, inputs: dict) -> dict:
    leaves = grad_leaves(inputs)
    grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True, retain_graph=True)
    return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(leaves.items(), grads)}
