"""Sigmoid (SigLIP) losses on real torch.distributed (gloo, 2 CPU processes), at the feature level in float64:

- per-rank losses with DDP's gradient averaging == one process on the union batch (values and gradients, 1e-10),
  for ``siglip`` with negatives and ``fsc-siglip`` with local tokens; the bias gets a gradient on every rank;
- without negatives, each rank's loss and gradients == open_clip's ``SigLipLoss(rank, world_size=2)`` with its
  neighbour exchanges (``bidir``, ``shift``) and its all-gather.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
from loss_inputs import make_inputs

WORLD = 2
B = 3  # images per rank
CASES = {"siglip": {"loss_name": "siglip"}, "fsc-siglip": {"loss_name": "fsc-siglip", "local_neg_weight": 0.5}}
OPEN_CLIP_IMPLS = ("bidir", "shift", "gather")
TOL = {"rtol": 1e-10, "atol": 1e-10}


def _union() -> dict:
    x = make_inputs(7, batch=WORLD * B)  # row 0 (rank 0) has no valid negative, row 1 all valid
    x["logit_bias"] = torch.tensor(-2.0, dtype=torch.float64)
    return {k: v.detach() for k, v in x.items()}


def _leaves(x: dict) -> dict:
    return {
        k: v.clone().requires_grad_() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for k, v in x.items()
    }


def _run(loss_fn, x: dict) -> tuple[torch.Tensor, dict]:
    """Total loss and its gradient with respect to every float input."""
    terms = loss_fn(**x)
    total = sum(terms.values())
    leaves = {k: v for k, v in x.items() if isinstance(v, torch.Tensor) and v.requires_grad}
    grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)  # siglip: tokens unused
    return total.detach(), {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)}


def _worker(rank: int, port: int, workdir: str) -> None:
    import torch.distributed as dist
    from open_clip.loss import SigLipLoss

    from fsc_clip.losses import build_loss

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        full = torch.load(Path(workdir) / "union.pt", weights_only=True)
        local = {k: v if v.ndim == 0 else v[rank * B : (rank + 1) * B] for k, v in full.items()}
        out: dict = {}
        for name, cfg in CASES.items():
            value, grads = _run(build_loss(cfg, rank=rank, world_size=WORLD), _leaves(local))
            out[f"{name}/bias_grad_before_averaging"] = grads["logit_bias"].clone()
            # DDP averages parameter gradients over ranks. The scalars are replicated parameters: averaged. A rank's
            # features feed only its own copy of the model, so their share of the average is their gradient / W.
            for g in grads.values():
                if g.ndim == 0:
                    dist.all_reduce(g)
                g /= WORLD
            out[f"{name}/value"], out[f"{name}/grads"] = value, grads
        plain = {k: local[k] for k in ("image_features", "text_features", "logit_scale", "logit_bias")}
        no_negatives = _leaves(plain) | {"neg_text_features": None, "neg_mask": None}
        out["ours/no-negatives"] = _run(build_loss({"loss_name": "siglip"}, rank=rank, world_size=WORLD), no_negatives)
        for impl in OPEN_CLIP_IMPLS:
            x = _leaves(plain)
            ref = SigLipLoss(rank=rank, world_size=WORLD, dist_impl=impl)(
                x["image_features"], x["text_features"], x["logit_scale"], x["logit_bias"]
            )
            out[f"open_clip/{impl}"] = (ref.detach(), dict(zip(x, torch.autograd.grad(ref, list(x.values())))))
        torch.save(out, Path(workdir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    import torch.multiprocessing as mp

    work = tmp_path_factory.mktemp("siglip_dist")
    torch.save(_union(), work / "union.pt")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    if method == "forkserver":
        mp.get_context("forkserver").set_forkserver_preload(["torch", "open_clip", "fsc_clip.losses"])
    mp.start_processes(_worker, args=(_free_port(), str(work)), nprocs=WORLD, join=True, start_method=method)
    return [torch.load(work / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
@pytest.mark.parametrize("name", list(CASES))
def test_two_ranks_equal_one_process_on_the_union(ranks, name):
    from fsc_clip.losses import build_loss

    union = _union()
    value, grads = _run(build_loss(CASES[name]), _leaves(union))
    # The per-rank losses are normalised by the local image count: their mean is the union loss.
    torch.testing.assert_close(sum(r[f"{name}/value"] for r in ranks) / WORLD, value, **TOL)
    for key, want in grads.items():
        if want.ndim == 0:  # logit_scale, logit_bias: averaged, identical on every rank
            for r in ranks:
                torch.testing.assert_close(r[f"{name}/grads"][key], want, **TOL, msg=f"{name}: d/d{key}")
        else:  # rank r's features are rows r·B:(r+1)·B of the union
            got = torch.cat([r[f"{name}/grads"][key] for r in ranks])
            torch.testing.assert_close(got, want, **TOL, msg=f"{name}: d/d{key}")
    assert all(r[f"{name}/bias_grad_before_averaging"].abs() > 1e-6 for r in ranks), name


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
@pytest.mark.parametrize("impl", OPEN_CLIP_IMPLS)
def test_each_rank_equals_open_clip_siglip(ranks, impl):
    for rank, r in enumerate(ranks):
        ours_value, ours_grads = r["ours/no-negatives"]
        ref_value, ref_grads = r[f"open_clip/{impl}"]
        torch.testing.assert_close(ours_value, ref_value, **TOL, msg=f"rank {rank}")
        assert set(ref_grads) == {"image_features", "text_features", "logit_scale", "logit_bias"}
        for key, want in ref_grads.items():
            torch.testing.assert_close(ours_grads[key], want, **TOL, msg=f"rank {rank}: d/d{key}")
