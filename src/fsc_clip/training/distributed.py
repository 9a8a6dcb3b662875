"""torchrun-compatible process-group setup and the few collectives the trainer needs.

``torchrun --nproc_per_node N -m fsc_clip.cli train ...`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/
``MASTER_ADDR``/``MASTER_PORT``; we initialise from those (``env://``) with NCCL on CUDA and gloo on
CPU. Without them the run is a single process and every helper here is a cheap no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str, local_rank: int) -> torch.device:
    """``auto`` → ``cuda:<local_rank>`` when CUDA is available, else CPU; ``cuda`` → ``cuda:<local_rank>``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        device = f"cuda:{local_rank}"
    return torch.device(device)


def init_distributed(device: str = "auto") -> DistInfo:
    """Initialise the default process group from torchrun's environment variables (if present)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    """Destroy the process group if we created one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op on one process)."""
    if info.distributed:
        dist.barrier()


@contextlib.contextmanager
def main_rank_first(info: DistInfo) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. downloads weights into the shared cache), then the others do."""
    if not info.is_main:
        barrier(info)
    yield
    if info.is_main:
        barrier(info)


def any_rank(flag: bool | torch.Tensor, info: DistInfo) -> bool:
    """True when ``flag`` is true on at least one rank; every rank gets the same answer.

    Used for decisions all ranks must take together (stop on a non-finite loss), so that no rank is
    left waiting forever in a collective the others skipped.
    """
    value = torch.as_tensor(flag, dtype=torch.float32).reshape(1).detach()
    if info.distributed:
        value = value.to(_collective_device(info))
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def gather_objects(obj: object, info: DistInfo) -> list[object]:
    """Collect one picklable object per rank (on every rank); ``[obj]`` on one process."""
    if not info.distributed:
        return [obj]
    out: list[object] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: object, info: DistInfo) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _collective_device(info: DistInfo) -> torch.device:
    return info.device if dist.get_backend() == "nccl" else torch.device("cpu")
