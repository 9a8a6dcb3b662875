"""Distributed equivalence with real torch.distributed (gloo, 2 CPU processes) on the tiny open_clip model:
gradients averaged over 2 ranks × B samples == one process on the concatenated 2·B batch, for the softmax and the
sigmoid (SigLIP) losses (the model gets a learnable logit bias for the latter)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch

WORLD = 2
B, K = 4, 3
WORDS = ("a", "the", "red", "blue", "small", "large", "cat", "dog", "man", "woman", "horse", "shirt", "riding", "on")


def _configs() -> dict:
    return {
        "clip": {"loss": {"loss_name": "fsc-clip", "apply_global_neg_loss": False, "apply_local_neg_loss": False}},
        "negclip": {"loss": {"loss_name": "negclip"}},
        "fsc-clip": {"loss": {"loss_name": "fsc-clip", "neg_loss_weight": 1.0, "local_neg_weight": 0.5}},
        "siglip": {"loss": {"loss_name": "siglip"}},  # negatives as negative-only columns
        "fsc-siglip": {"loss": {"loss_name": "fsc-siglip", "neg_loss_weight": 1.0, "local_neg_weight": 0.5}},
    }


def _batch(tokenizer) -> dict:
    gen = torch.Generator().manual_seed(0)

    def caption() -> str:
        n = int(torch.randint(2, 9, (1,), generator=gen))
        return " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (n,), generator=gen))

    n = WORLD * B
    neg_mask = torch.rand(n, K, generator=gen) > 0.3
    neg_mask[0] = False  # an image without any valid negative ...
    neg_mask[B:] &= torch.tensor([True, False, False])  # ... and far fewer valid negatives on rank 1
    negs = [[caption() if bool(neg_mask[i, k]) else "" for k in range(K)] for i in range(n)]
    return {
        "images": torch.randn(n, 3, 32, 32, generator=gen, dtype=torch.float64),
        "texts": tokenizer([caption() for _ in range(n)]),
        "neg_texts": tokenizer([c for row in negs for c in row]).view(n, K, -1),
        "neg_mask": neg_mask,
    }


def _grads(model, loss_fn, batch: dict) -> dict:
    """One training-step forward/backward: images once, positives + negatives in one text forward."""
    from fsc_clip.models import encode

    model.zero_grad(set_to_none=True)
    n = batch["texts"].shape[0]
    use_negs = loss_fn.needs_negatives or loss_fn.negclip  # `siglip` uses negatives without requiring them
    texts = torch.cat([batch["texts"], batch["neg_texts"].flatten(0, 1)]) if use_negs else batch["texts"]
    f = encode(model, images=batch["images"], texts=texts, dense=loss_fn.needs_dense)
    kwargs = {}
    if use_negs:
        kwargs = {"neg_text_features": f.text[n:].view(n, K, -1), "neg_mask": batch["neg_mask"]}
    if loss_fn.needs_dense:
        kwargs |= {
            "image_tokens": f.image_tokens,
            "text_tokens": f.text_tokens[:n],
            "text_mask": f.text_mask[:n],
            "neg_text_tokens": f.text_tokens[n:].unflatten(0, (n, K)),
            "neg_text_mask": f.text_mask[n:].unflatten(0, (n, K)),
        }
    if loss_fn.uses_logit_bias:
        kwargs["logit_bias"] = model.logit_bias
    terms = loss_fn(f.image, f.text[:n], kwargs.pop("neg_text_features", None), kwargs.pop("neg_mask", None),
                    f.logit_scale, **kwargs)  # fmt: skip
    sum(terms.values()).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


def _model(state_path: Path):
    from fsc_clip.models import load_model

    model = load_model("fsc-tiny").model.double()
    model.logit_bias = torch.nn.Parameter(torch.tensor(-4.0, dtype=torch.float64))  # as a SigLIP model has
    model.load_state_dict(torch.load(state_path, weights_only=True))
    return model


def _worker(rank: int, port: int, workdir: str) -> None:
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_fn

    from fsc_clip.losses import build_loss

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        work = Path(workdir)
        model = _model(work / "state.pt")
        full = torch.load(work / "batch.pt", weights_only=True)
        local = {k: v[rank * B : (rank + 1) * B] for k, v in full.items()}
        results = {}
        for name, spec in _configs().items():
            grads = _grads(model, build_loss(spec["loss"], rank=rank, world_size=WORLD), local)
            if "logit_bias" in grads:  # each rank's own (pre-averaging) bias gradient, all ranks side by side
                results[f"{name}: logit_bias per rank"] = torch.cat(dist_fn.all_gather(grads["logit_bias"].view(1)))
            for g in grads.values():  # what DDP does: average the gradients over ranks
                dist.all_reduce(g)
                g /= WORLD
            results[name] = grads
        if rank == 0:
            torch.save(results, work / "dist_grads.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")
def test_two_gloo_ranks_match_single_process(tmp_path):
    import torch.multiprocessing as mp

    from fsc_clip.losses import build_loss
    from fsc_clip.models import load_model

    torch.manual_seed(0)
    lm = load_model("fsc-tiny")
    lm.model.logit_bias = torch.nn.Parameter(torch.tensor(-4.0))
    torch.save(lm.model.double().state_dict(), tmp_path / "state.pt")
    batch = _batch(lm.tokenizer)
    torch.save(batch, tmp_path / "batch.pt")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # forkserver: one fresh server process imports torch/open_clip once and forks both ranks from it (spawn
    # would import them in every rank; plain fork is unsafe once autograd has run in this process).
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    if method == "forkserver":
        mp.get_context("forkserver").set_forkserver_preload(["torch", "open_clip", "fsc_clip.models"])
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True, start_method=method)
    dist_grads = torch.load(tmp_path / "dist_grads.pt", weights_only=True)

    model = _model(tmp_path / "state.pt")
    for name, spec in _configs().items():
        single = _grads(model, build_loss(spec["loss"]), batch)
        assert set(single) == set(dist_grads[name]), name
        assert "logit_scale" in single
        assert ("logit_bias" in single) == build_loss(spec["loss"]).uses_logit_bias, name
        if "logit_bias" in single:  # the bias enters every rank's loss
            assert (dist_grads[f"{name}: logit_bias per rank"].abs() > 1e-6).all(), name
        for param, grad in single.items():
            torch.testing.assert_close(dist_grads[name][param], grad, atol=1e-5, rtol=1e-5, msg=f"{name}: {param}")
