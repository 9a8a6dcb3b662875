"""Training options prove their effect (real tiny open_clip model, real FSC-CLIP loss, real loader batches).

Each test observes the option through what it must change, so it fails when the option is dropped:

- ``optim.grad_clip_norm``: with plain SGD (lr 1, no momentum, no decay) the weight update *is* the applied
  gradient; its global norm must equal the threshold when the raw norm is above it (same direction), and equal
  the raw gradient when below. float64, so the only error is round-off.
- logit-scale clamp: a step built to push ``logit_scale`` 1.0 above ln(100) must leave it at ln(100).
- ``model.grad_checkpointing``: each residual block really runs twice per step (recomputed in backward), and
  3 AdamW steps end with the same float32 weights as without it (tolerance below).
- ``optim.precision=amp_bf16`` (and ``amp`` on CPU): the linear layers really compute in bfloat16, and the loss
  and gradients stay close to fp32 (tolerances below).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import pytest
import torch

from fsc_clip.data import DataConfig, build_train_loader
from fsc_clip.losses import LossConfig, build_loss
from fsc_clip.training.config import ModelConfig, OptimConfig, TrainConfig
from fsc_clip.training.distributed import DistInfo
from fsc_clip.training.loop import autocast_factory, build_model, uses_negatives
from fsc_clip.training.optim import build_optimizer
from fsc_clip.training.step import FeatureEncoder, StepContext, compute_gradients, optimizer_step, train_step

CPU = torch.device("cpu")


def _model(grad_checkpointing: bool = False):
    """``fsc-tiny`` through the trainer's own :func:`build_model` (seeded: identical initial weights)."""
    torch.manual_seed(0)
    cfg = TrainConfig(model=ModelConfig(name="fsc-tiny", pretrained=None, grad_checkpointing=grad_checkpointing))
    lm, _ = build_model(cfg, CPU)
    return lm


def _batches(toy_data, lm, n: int = 3, double: bool = False) -> list:
    cfg = DataConfig(
        train_data=str(toy_data["tsv"]), negatives="precomputed", precomputed_negatives=str(toy_data["negatives"])
    )
    loader = build_train_loader(cfg, tokenizer=lm.tokenizer, preprocess=lm.preprocess_val, batch_size=8)
    loader.set_epoch(0)
    batches = list(loader)[:n]
    return [dataclasses.replace(b, images=b.images.double()) for b in batches] if double else batches


def _ctx(lm, optimizer, precision: str = "fp32", grad_clip_norm: float | None = None) -> StepContext:
    loss_fn = build_loss(LossConfig(loss_name="fsc-clip"))
    return StepContext(
        encoder=FeatureEncoder(lm.model),
        loss_fn=loss_fn,
        optimizer=optimizer,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        autocast=autocast_factory(precision, CPU),
        dist=DistInfo(),
        logit_scale=lm.model.logit_scale,
        needs_dense=loss_fn.needs_dense,
        use_negatives=uses_negatives(loss_fn),
        grad_clip_norm=grad_clip_norm,
        params=[p for p in lm.model.parameters() if p.requires_grad],
    )


def _sgd_applied_gradient(toy_data, threshold_factor: float) -> tuple[float, float, float, list, list]:
    """Raw gradient (norm and tensors) of one step, and the update that optimizer_step applied with SGD(lr=1)."""
    lm = _model()
    lm.model.double()
    params = [p for p in lm.model.parameters() if p.requires_grad]
    ctx = _ctx(lm, torch.optim.SGD(params, lr=1.0))
    compute_gradients(ctx, _batches(toy_data, lm, n=1, double=True))
    raw = [p.grad.detach().clone() for p in params]
    raw_norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in raw])))
    ctx.grad_clip_norm = threshold = raw_norm * threshold_factor
    before = [p.detach().clone() for p in params]
    reported = optimizer_step(ctx)
    applied = [b - p.detach() for b, p in zip(before, params)]
    applied_norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(a) for a in applied])))
    assert reported is not None and math.isclose(float(reported), raw_norm, rel_tol=1e-9)  # logged: pre-clip norm
    return raw_norm, threshold, applied_norm, raw, applied


def test_grad_clipping_scales_a_large_gradient_down_to_the_threshold(toy_data):
    raw_norm, threshold, applied_norm, raw, applied = _sgd_applied_gradient(toy_data, threshold_factor=0.25)
    assert raw_norm > threshold > 0
    assert applied_norm <= threshold * (1 + 1e-6)
    assert math.isclose(applied_norm, threshold, rel_tol=1e-6)  # scaled to the threshold, not beyond
    scale = threshold / raw_norm
    for a, g in zip(applied, raw):  # same direction: every gradient scaled by the same factor
        torch.testing.assert_close(a, g * scale, rtol=1e-6, atol=1e-12)


def test_grad_clipping_leaves_a_small_gradient_alone(toy_data):
    raw_norm, _, applied_norm, raw, applied = _sgd_applied_gradient(toy_data, threshold_factor=2.0)
    assert math.isclose(applied_norm, raw_norm, rel_tol=1e-9)
    for a, g in zip(applied, raw):
        torch.testing.assert_close(a, g, rtol=1e-9, atol=1e-12)


def test_logit_scale_stays_at_most_ln_100_after_a_step_that_pushes_it_above(toy_data):
    lm = _model()
    lm.model.double()
    scale = lm.model.logit_scale
    with torch.no_grad():
        scale.fill_(math.log(100) - 0.01)
    # Only logit_scale moves, by exactly +1.0: SGD steps against the gradient (or along it with maximize).
    ctx = _ctx(lm, torch.optim.SGD([scale], lr=1.0))
    compute_gradients(ctx, _batches(toy_data, lm, n=1, double=True))
    grad = float(scale.grad)
    assert grad != 0.0
    ctx.optimizer = torch.optim.SGD([scale], lr=1.0 / abs(grad), maximize=grad > 0)
    unclamped = float(scale.detach()) + 1.0
    assert unclamped > math.log(100)  # the step alone would leave the allowed range
    optimizer_step(ctx)
    assert float(scale.detach()) <= math.log(100)
    assert math.isclose(float(scale.detach()), math.log(100), rel_tol=1e-12)  # clamped to the bound, not left behind


def _count_block_calls(model: torch.nn.Module) -> tuple[list[int], list]:
    """Count calls of the MLP inside the first block of each tower. A *pre*-hook on a module inside the block:
    a hook on the checkpointed block itself does not fire on recomputation, and a post-hook may not either
    (recomputation stops as soon as the last saved tensor is rebuilt, inside the MLP)."""
    calls = [0]
    blocks = [model.transformer.resblocks[0].mlp, model.visual.transformer.resblocks[0].mlp]
    hooks = [b.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for b in blocks]
    return calls, hooks


def test_grad_checkpointing_recomputes_blocks_and_gives_the_same_weights(toy_data):
    runs = {}
    for checkpointing in (False, True):
        lm = _model(grad_checkpointing=checkpointing)
        batches = _batches(toy_data, lm)
        optimizer = build_optimizer(lm.model, OptimConfig(lr=1e-3, wd=0.1))
        ctx = _ctx(lm, optimizer)
        calls, hooks = _count_block_calls(lm.model)
        train_step(ctx, [batches[0]])
        for h in hooks:
            h.remove()
        # One image forward + one text forward per step; with checkpointing each block runs again in backward.
        assert calls[0] == (4 if checkpointing else 2)
        for batch in batches[1:]:
            train_step(ctx, [batch])
        runs[checkpointing] = {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
    # Recomputation repeats the same float32 operations (bitwise equal on CPU here); the tolerance, a few float32
    # ulps, only leaves room for kernels that are not bitwise deterministic.
    for key, value in runs[False].items():
        torch.testing.assert_close(runs[True][key], value, rtol=1e-6, atol=1e-7, msg=key)


@pytest.mark.parametrize("precision", ["amp_bf16", "amp"])  # on CPU "amp" autocasts to bfloat16 too
def test_bf16_autocast_runs_in_bf16_and_stays_close_to_fp32(toy_data, precision: str):
    results = {}
    for mode in ("fp32", precision):
        lm = _model()
        lm.model.zero_grad(set_to_none=True)
        dtypes: list[torch.dtype] = []
        probe = lm.model.transformer.resblocks[0].mlp.c_fc
        hook = probe.register_forward_hook(lambda _m, _i, out, seen=dtypes: seen.append(out.dtype))
        out = compute_gradients(_ctx(lm, None, precision=mode), _batches(toy_data, lm, n=1))
        hook.remove()
        grad = torch.cat([p.grad.flatten() for p in lm.model.parameters() if p.grad is not None])
        results[mode] = (float(out["loss"]), grad.double(), set(dtypes))
    loss32, grad32, dtypes32 = results["fp32"]
    loss16, grad16, dtypes16 = results[precision]
    assert dtypes32 == {torch.float32} and dtypes16 == {torch.bfloat16}  # the option really switches precision
    # bfloat16 keeps 8 mantissa bits (relative step 2^-8 = 0.4%): the loss within 2% relative, the gradient
    # direction within cosine 0.99 and its norm within 5% of fp32.
    assert loss16 != loss32
    assert abs(loss16 - loss32) <= 0.02 * abs(loss32)
    cosine = float(torch.nn.functional.cosine_similarity(grad16, grad32, dim=0))
    assert cosine > 0.99
    assert abs(float(grad16.norm()) / float(grad32.norm()) - 1) < 0.05


def test_fp32_has_no_autocast():
    assert autocast_factory("fp32", CPU) is contextlib.nullcontext
