"""Cross-rank gathering for contrastive losses (open_clip ``local_loss`` + ``gather_with_grad`` semantics).

Each rank computes the loss of its *own* rows against the columns of *all* ranks. The gather keeps the
autograd graph: its backward sums, over ranks, the gradients every rank's loss sends to a rank's
features. With DDP's gradient averaging, W ranks × B samples then give exactly the gradients of one
process on W·B samples (the authors' code gathers without gradient, which scales the CLIP gradient by
1/W and, with ``--local-loss``, removes it).
"""

from __future__ import annotations

import torch
from torch import Tensor


def gather_with_grad(tensor: Tensor, world_size: int) -> Tensor:
    """Concatenate ``tensor`` from every rank along dim 0, keeping the gradient path to each rank.

    Args:
        tensor: Local tensor ``[B, ...]`` (same shape on every rank).
        world_size: Number of ranks; 1 returns ``tensor`` unchanged.

    Returns:
        ``[world_size * B, ...]``, rank r's block at rows ``r*B:(r+1)*B``.
    """
    if world_size == 1:
        return tensor
    import torch.distributed.nn.functional as dist_fn

    return torch.cat(dist_fn.all_gather(tensor.contiguous()), dim=0)


def gather_no_grad(tensor: Tensor, world_size: int) -> Tensor:
    """Concatenate a tensor that carries no gradient (masks, counts) from every rank along dim 0.

    Boolean tensors travel as uint8 (not every backend gathers bool) and come back as bool.
    """
    if world_size == 1:
        return tensor
    import torch.distributed as dist

    send = tensor.detach().to(torch.uint8) if tensor.dtype == torch.bool else tensor.detach()
    parts = [torch.empty_like(send) for _ in range(world_size)]
    dist.all_gather(parts, send.contiguous())
    out = torch.cat(parts, dim=0)
    return out.bool() if tensor.dtype == torch.bool else out


def all_reduce_sum_no_grad(tensor: Tensor, world_size: int) -> Tensor:
    """Sum a small no-gradient tensor over ranks (a device-side collective, no host synchronisation)."""
    if world_size == 1:
        return tensor
    import torch.distributed as dist

    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out
