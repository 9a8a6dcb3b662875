"""Contrastive-correct gradient accumulation: 2 micro-batches of B give the gradients of one batch of 2B.

Real tiny open_clip model, real FSC-CLIP loss, real loader batches from a TSV on disk; float64 so the
only difference between the two computations is summation order.
"""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch

from fsc_clip.data import DataConfig, build_train_loader
from fsc_clip.losses import LossConfig, build_loss
from fsc_clip.models import load_model
from fsc_clip.training.distributed import DistInfo
from fsc_clip.training.loop import uses_negatives
from fsc_clip.training.step import FeatureEncoder, StepContext, compute_gradients

B = 6


def _batches(toy_data, lm, batch_size: int) -> list:
    cfg = DataConfig(
        train_data=str(toy_data["tsv"]), negatives="precomputed", precomputed_negatives=str(toy_data["negatives"])
    )
    loader = build_train_loader(cfg, tokenizer=lm.tokenizer, preprocess=lm.preprocess_val, batch_size=batch_size)
    loader.set_epoch(0)
    return [dataclasses.replace(b, images=b.images.double()) for b in loader]


def _grads(lm, loss_fn, micro_batches) -> dict[str, torch.Tensor]:
    model = lm.model
    model.zero_grad(set_to_none=True)
    ctx = StepContext(
        encoder=FeatureEncoder(model),
        loss_fn=loss_fn,
        optimizer=None,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        autocast=contextlib.nullcontext,
        dist=DistInfo(),
        logit_scale=model.logit_scale,
        needs_dense=loss_fn.needs_dense,
        use_negatives=uses_negatives(loss_fn),
    )
    out = compute_gradients(ctx, micro_batches)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    grads["__loss__"] = out["loss"]
    return grads


@pytest.mark.parametrize("loss_name", ["clip", "negclip", "fsc-clip"])
def test_accum_2xB_equals_batch_2B(toy_data, loss_name):
    torch.manual_seed(0)
    lm = load_model("fsc-tiny", None)
    lm.model.double().train()
    loss_fn = build_loss(LossConfig(loss_name=loss_name))
    big = _batches(toy_data, lm, 2 * B)[0]
    small = _batches(toy_data, lm, B)[:2]
    assert torch.equal(torch.cat([s.indices for s in small]), big.indices)  # same samples, same order
    assert big.neg_texts is not None
    ref = _grads(lm, loss_fn, [big])
    acc = _grads(lm, loss_fn, small)
    assert ref.keys() == acc.keys() and len(ref) > 10
    assert "logit_scale" in ref  # its gradient is counted once, not once per micro-batch
    for name in ref:
        torch.testing.assert_close(acc[name], ref[name], rtol=1e-9, atol=1e-12, msg=name)
    if loss_name == "fsc-clip":
        assert loss_fn.needs_dense


def test_naive_accumulation_would_differ(toy_data):
    """Sanity check that the test has teeth: summing per-micro-batch losses is NOT the 2B gradient."""
    torch.manual_seed(0)
    lm = load_model("fsc-tiny", None)
    lm.model.double().train()
    loss_fn = build_loss(LossConfig(loss_name="fsc-clip"))
    big = _batches(toy_data, lm, 2 * B)[0]
    small = _batches(toy_data, lm, B)[:2]
    ref = _grads(lm, loss_fn, [big])
    naive = [_grads(lm, loss_fn, [s]) for s in small]
    name = "visual.proj"
    summed = (naive[0][name] + naive[1][name]) / 2
    assert not torch.allclose(summed, ref[name], rtol=1e-4, atol=1e-8)
