"""LoRA on a real tiny open_clip model: targets, frozen base, merge equivalence, encode, checkpoints."""

from __future__ import annotations

import copy

import pytest
import torch

from fsc_clip.models import encode, load_model
from fsc_clip.models.lora import (
    apply_lora,
    lora_config,
    lora_modules,
    lora_state_dict,
    merge_lora,
    scale_lora,
)


@pytest.fixture
def model(tiny_model):
    return copy.deepcopy(tiny_model.model)


def _inputs():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(3, 3, 32, 32, generator=g)
    texts = torch.randint(1, 1000, (4, 16), generator=g)
    texts[:, 10:] = 0
    texts[:, 9] = 49407  # EOT (argmax pooling)
    return images, texts


def _randomise_lora(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in lora_modules(m):
            mod.lora_B.copy_(torch.randn(mod.lora_B.shape, generator=g) * 0.05)


def _expected_lora_params(m, r):
    """Independent count: r·(in+out) per Linear; conv as Linear over in·k·k; in_proj: 3 blocks of r·(E+E)."""
    total = 0
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear):
            total += r * (mod.in_features + mod.out_features)
        elif isinstance(mod, torch.nn.MultiheadAttention):
            total += 3 * r * (mod.embed_dim + mod.embed_dim)
    conv = m.visual.conv1
    total += r * (conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] + conv.out_channels)
    return total


def test_only_lora_params_train_and_counts(model):
    expected = _expected_lora_params(model, 4)
    apply_lora(model, rank=4)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith((".lora_A", ".lora_B")) for n in trainable)
    assert sum(p.numel() for p in trainable.values()) == expected
    names = " ".join(trainable)
    assert "visual.conv1.parametrizations.weight" in names
    assert "attn.parametrizations.in_proj_weight" in names and "attn.out_proj.parametrizations.weight" in names
    assert "transformer.resblocks.0.mlp.c_fc" in names  # text tower too
    assert not model.visual.proj.requires_grad and not model.text_projection.requires_grad
    assert lora_config(model) == {"rank": 4, "alpha": 4.0, "targets": ["linear", "patch_embed", "attn_in_proj"]}
    with pytest.raises(ValueError, match="already"):
        apply_lora(model)


def test_fresh_adapters_change_nothing(model):
    images, texts = _inputs()
    with torch.no_grad():
        ref = encode(model, images, texts)
        apply_lora(model, rank=2)
        out = encode(model, images, texts)
    assert torch.allclose(ref.image, out.image, atol=1e-6) and torch.allclose(ref.text, out.text, atol=1e-6)


@pytest.mark.parametrize("target", ["linear", "patch_embed", "attn_in_proj"])
def test_each_target_reaches_the_output(model, target):
    """A non-zero adapter of each kind changes the features (MHA really reads the parametrized weights)."""
    images, texts = _inputs()
    with torch.no_grad():
        ref = encode(model, images, texts)
        apply_lora(model, rank=2, targets=[target])
        _randomise_lora(model)
        out = encode(model, images, texts)
    assert not torch.allclose(ref.image, out.image, atol=1e-4)
    if target != "patch_embed":
        assert not torch.allclose(ref.text, out.text, atol=1e-4)
    else:
        assert torch.allclose(ref.text, out.text, atol=1e-6)


def test_in_proj_delta_matches_hand_computation(model):
    apply_lora(model, rank=2, alpha=8.0, targets=["attn_in_proj"])
    _randomise_lora(model)
    attn = model.transformer.resblocks[0].attn
    base = attn.parametrizations.in_proj_weight.original
    mod = attn.parametrizations.in_proj_weight[0]
    e = attn.embed_dim
    for g in range(3):  # q, k, v blocks, each B_g @ A_g scaled by alpha / r
        want = base[g * e : (g + 1) * e] + 4.0 * mod.lora_B[g] @ mod.lora_A[g]
        assert torch.allclose(attn.in_proj_weight[g * e : (g + 1) * e], want, atol=1e-6)


def test_merge_equals_unmerged_including_dense(model):
    images, texts = _inputs()
    apply_lora(model, rank=4, alpha=8)
    _randomise_lora(model)
    model.eval()
    with torch.no_grad():
        before = encode(model, images, texts, dense=True)
        merge_lora(model)
        after = encode(model, images, texts, dense=True)
    assert not any("parametrizations" in k or "lora" in k for k in model.state_dict())
    assert all(p.requires_grad for p in model.parameters())  # original flags restored
    for field in ("image", "text", "image_tokens", "text_tokens"):
        assert torch.allclose(getattr(before, field), getattr(after, field), atol=1e-5), field


def test_gradients_reach_only_adapters_through_dense_encode(model):
    images, texts = _inputs()
    apply_lora(model, rank=2)
    _randomise_lora(model)
    model.train()
    feats = encode(model, images, texts, dense=True)
    (feats.image.sum() + feats.text.sum() + feats.image_tokens.square().mean() + feats.text_tokens.mean()).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all(n.endswith((".lora_A", ".lora_B")) for n in grads)
    assert any(n.endswith("conv1.parametrizations.weight.0.lora_A") for n in grads)


def test_scale_lora_scales_delta_linearly(model):
    apply_lora(model, rank=2)
    _randomise_lora(model)
    w0 = model.visual.conv1.parametrizations.weight.original.clone()
    full = model.visual.conv1.weight.detach().clone()
    scale_lora(model, 0.25)
    assert torch.allclose(model.visual.conv1.weight, w0 + 0.25 * (full - w0), atol=1e-6)


def test_lora_state_dict_roundtrip_and_load_model(model, tmp_path):
    """A run checkpoint with a LoRA state dict loads through load_model (re-apply, load, merge)."""
    apply_lora(model, rank=3)
    _randomise_lora(model, seed=5)
    small = lora_state_dict(model)
    assert small and all(k.endswith((".lora_A", ".lora_B")) for k in small)
    ckpt = {
        "format": "fsc-clip",
        "format_version": 1,
        "model": {"name": "fsc-tiny", "pretrained": None, "quick_gelu": False, "lora": lora_config(model)},
        "state_dict": model.state_dict(),
        "config": {},
        "epoch": 1,
        "step": 2,
    }
    torch.save(ckpt, tmp_path / "run.pt")
    images, texts = _inputs()
    model.eval()
    with torch.no_grad():
        want = encode(model, images, texts)
        loaded = load_model(pretrained=str(tmp_path / "run.pt"))
        got = encode(loaded.model, images, texts)
    assert not any("lora" in k for k in loaded.model.state_dict())
    assert torch.allclose(want.image, got.image, atol=1e-5) and torch.allclose(want.text, got.text, atol=1e-5)
    # the adapters alone restore the model on top of its frozen base
    fresh = copy.deepcopy(model)
    scale_lora(fresh, 0.0)
    fresh.load_state_dict(small, strict=False)
    with torch.no_grad():
        assert torch.allclose(encode(fresh, images, texts).image, want.image, atol=1e-6)
