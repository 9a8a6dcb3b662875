"""Parameter groups (open_clip's no-decay rule) and the warm-up + cosine/const schedule."""

from __future__ import annotations

import math

import pytest
import torch

from fsc_clip.models import load_model
from fsc_clip.training.config import OptimConfig
from fsc_clip.training.optim import build_optimizer, lr_at, set_lr


@pytest.fixture(scope="module")
def tiny():
    return load_model("fsc-tiny", None).model


def test_no_decay_on_norms_biases_logit_scale_1d_embeddings(tiny):
    opt = build_optimizer(tiny, OptimConfig(lr=1e-3, wd=0.1))
    decay_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    names = dict(tiny.named_parameters())
    assert decay_of[id(names["logit_scale"])] == 0.0
    assert decay_of[id(names["visual.class_embedding"])] == 0.0
    assert decay_of[id(names["ln_final.weight"])] == 0.0
    assert decay_of[id(names["visual.transformer.resblocks.0.attn.in_proj_bias"])] == 0.0
    # 2-d weights and embeddings decay, as in open_clip
    assert decay_of[id(names["token_embedding.weight"])] == 0.1
    assert decay_of[id(names["positional_embedding"])] == 0.1
    assert decay_of[id(names["visual.transformer.resblocks.0.mlp.c_fc.weight"])] == 0.1
    assert len(decay_of) == sum(1 for p in tiny.parameters())  # every trainable parameter exactly once


def test_frozen_parameters_are_left_out(tiny):
    for p in tiny.visual.parameters():
        p.requires_grad_(False)
    try:
        opt = build_optimizer(tiny, OptimConfig())
        n = sum(len(g["params"]) for g in opt.param_groups)
        assert n == sum(1 for p in tiny.parameters() if p.requires_grad)
    finally:
        for p in tiny.visual.parameters():
            p.requires_grad_(True)


def test_lora_params_get_the_multiplier():
    model = torch.nn.Module()
    model.weight = torch.nn.Parameter(torch.zeros(2, 2))
    model.lora_A = torch.nn.Parameter(torch.zeros(2, 2))
    opt = build_optimizer(model, OptimConfig(lr=1e-4, lora_lr_mult=10.0))
    set_lr(opt, 1e-4)
    lrs = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert lrs[id(model.weight)] == pytest.approx(1e-4)
    assert lrs[id(model.lora_A)] == pytest.approx(1e-3)


def test_schedule_matches_open_clip_formulas():
    cfg = OptimConfig(lr=1.0, warmup=4, schedule="cosine")
    total = 14
    assert [lr_at(s, cfg, total) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    for s in range(4, total):
        assert lr_at(s, cfg, total) == pytest.approx(0.5 * (1 + math.cos(math.pi * (s - 4) / 10)))
    const = OptimConfig(lr=2.0, warmup=2, schedule="const")
    assert [lr_at(s, const, 10) for s in (0, 1, 2, 9)] == [1.0, 2.0, 2.0, 2.0]
    assert lr_at(0, OptimConfig(lr=3.0, warmup=0), 5) == 3.0
