"""Sigmoid (SigLIP) losses: naive float64 reference, open_clip's SigLipLoss, the FSC hard-negative terms, registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from loss_inputs import grads_of, make_inputs
from loss_naive_reference import naive_global, naive_local, naive_sigmoid
from open_clip.loss import SigLipLoss

from fsc_clip.config import ConfigError
from fsc_clip.losses import FSCCLIPLoss, FSCSigLIPLoss, LossConfig, build_loss

TOL = {"atol": 1e-6, "rtol": 1e-6}
SIGMOID_NAMES = ("siglip", "negsiglip", "fsc-siglip")


def _inputs(seed: int, bias: float = -3.0) -> dict:
    x = make_inputs(seed)  # row 0: no valid negative, row 1: all valid, the others random
    x["logit_bias"] = torch.tensor(bias, dtype=torch.float64, requires_grad=True)
    return x


def _no_tokens(x: dict) -> dict:
    return {k: v for k, v in x.items() if "token" not in k and k not in ("text_mask", "neg_text_mask")}


@pytest.mark.parametrize("mask", ["random", "none_valid", "all_valid"])
@pytest.mark.parametrize("seed", [0, 1])
def test_siglip_with_negatives_matches_naive(seed, mask):
    x = _no_tokens(_inputs(seed))
    if mask != "random":
        x["neg_mask"] = torch.full_like(x["neg_mask"], mask == "all_valid")
    loss_fn = FSCSigLIPLoss(0.0, 0.0, negclip=True)
    terms = loss_fn(**x)
    assert list(terms) == ["sigmoid_loss"]
    args = ("image_features", "text_features", "logit_scale", "logit_bias", "neg_text_features", "neg_mask")
    expected = naive_sigmoid(*(x[k] for k in args))
    torch.testing.assert_close(terms["sigmoid_loss"], expected, **TOL)
    got, want = grads_of(terms["sigmoid_loss"], x), grads_of(expected, x)
    assert set(want) == {"image_features", "text_features", "neg_text_features", "logit_scale", "logit_bias"}
    for name in want:
        torch.testing.assert_close(got[name], want[name], **TOL, msg=f"d/d{name}")
    assert got["logit_bias"] != 0


@pytest.mark.parametrize(("normalizer", "gamma", "eps"), [("minmax", 2.0, 0.02), ("softmax", 0.0, None)])
@pytest.mark.parametrize("seed", [0, 1])
def test_fsc_siglip_matches_naive(seed, normalizer, gamma, eps):
    x = _inputs(seed)
    loss_fn = FSCSigLIPLoss(0.5, 0.2, "focal_loss", gamma, eps, normalizer)
    terms = loss_fn(**x)
    e = eps or 0.0
    img, txt, negs, mask, scale = (x[k] for k in ("image_features", "text_features", "neg_text_features", "neg_mask",
                                                  "logit_scale"))  # fmt: skip
    expected = {
        "sigmoid_loss": naive_sigmoid(img, txt, scale, x["logit_bias"]),  # positives only
        "global_hn_loss": 0.5 * naive_global(img, txt, negs, mask, scale, gamma, e),
        "local_hn_loss": 0.2 * naive_local(
            x["image_tokens"], x["text_tokens"], x["text_mask"], x["neg_text_tokens"], x["neg_text_mask"], mask,
            scale, gamma, e, normalizer, False,
        ),
    }  # fmt: skip
    assert list(terms) == list(expected)
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, **TOL, msg=name)
    got, want = grads_of(sum(terms.values()), x), grads_of(sum(expected.values()), x)
    for name in want:
        torch.testing.assert_close(got[name], want[name], **TOL, msg=f"d/d{name}")


def test_hard_negative_terms_are_fsc_clips_and_ignore_the_bias():
    """The global / local terms are FSCCLIPLoss's, whatever the bias (it cancels inside their softmaxes)."""
    x = _inputs(2)
    softmax_terms = FSCCLIPLoss(0.5, 0.2)(**{k: v for k, v in x.items() if k != "logit_bias"})
    low = FSCSigLIPLoss(0.5, 0.2)(**x)
    high = FSCSigLIPLoss(0.5, 0.2)(**dict(x, logit_bias=torch.tensor(4.0, dtype=torch.float64)))
    for name in ("global_hn_loss", "local_hn_loss"):
        assert torch.equal(low[name], softmax_terms[name]) and torch.equal(high[name], softmax_terms[name]), name
    assert not torch.allclose(low["sigmoid_loss"], high["sigmoid_loss"])


@pytest.mark.parametrize("seed", [0, 1])
def test_no_negatives_equals_open_clip(seed):
    """Without negatives (none given, or none valid) the sigmoid term is open_clip's SigLipLoss bit for bit, values
    and gradients (world size 1; the distributed case is in test_sigmoid_distributed.py)."""
    gen = torch.Generator().manual_seed(seed)
    leaves = {
        "image_features": F.normalize(torch.randn(16, 32, generator=gen), dim=-1).requires_grad_(),
        "text_features": F.normalize(torch.randn(16, 32, generator=gen), dim=-1).requires_grad_(),
        "logit_scale": torch.tensor(10.0, requires_grad=True),
        "logit_bias": torch.tensor(-10.0, requires_grad=True),
    }
    img, txt, scale, bias = leaves.values()
    expected = SigLipLoss()(img, txt, scale, bias)
    want = grads_of(expected, leaves)
    negs = F.normalize(torch.randn(16, 2, 32, generator=gen), dim=-1)
    no_valid = torch.zeros(16, 2, dtype=torch.bool)
    for loss_fn, neg_args in [
        (FSCSigLIPLoss(0.0, 0.0, negclip=True), (None, None)),
        (FSCSigLIPLoss(0.0, 0.0, negclip=True), (negs, no_valid)),
        (FSCSigLIPLoss(0.5, 0.0), (None, None)),
    ]:
        terms = loss_fn(img, txt, *neg_args, scale, logit_bias=bias)
        assert torch.equal(terms["sigmoid_loss"], expected)
        got = grads_of(terms["sigmoid_loss"], leaves)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=0, msg=f"d/d{name}")


def test_invalid_negative_slots_never_matter():
    """Invalid negatives are removed exactly: arbitrary values in their slots change neither value nor gradient."""
    x = _inputs(5)
    loss_fn = FSCSigLIPLoss(1.0, 1.0, negclip=True)
    before = loss_fn(**x)
    want = grads_of(sum(before.values()), x)
    garbage = dict(x)
    invalid = ~x["neg_mask"]
    with torch.no_grad():
        filled = torch.where(invalid[..., None], -50.0, x["neg_text_features"])  # huge logits of either sign
    garbage["neg_text_features"] = filled.requires_grad_()
    after = loss_fn(**garbage)
    got = grads_of(sum(after.values()), garbage)
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=1e-12, msg=name)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-12, msg=f"d/d{name}")
    assert (got["neg_text_features"][invalid] == 0).all()


def test_logit_bias_is_required_and_reported():
    x = _no_tokens(_inputs(0, bias=-1.5))
    loss_fn = FSCSigLIPLoss(0.5, 0.0)
    with pytest.raises(ConfigError, match="logit_bias"):
        loss_fn(**dict(x, logit_bias=None))
    with pytest.raises(ConfigError, match="scalar"):
        loss_fn(**dict(x, logit_bias=torch.zeros(2, dtype=torch.float64)))
    loss_fn(**dict(x, logit_bias=x["logit_bias"].detach().reshape(1)))  # open_clip's nonscalar_logit_scale shape
    loss_fn(**x)
    assert set(loss_fn.metrics) == {"logit_scale", "logit_bias", "hn_row_frac", "global_hn_acc"}
    assert loss_fn.metrics["logit_bias"] == -1.5 and not loss_fn.metrics["logit_bias"].requires_grad
    # The softmax family accepts (and ignores) the bias, so the trainer can always pass it.
    clip = FSCCLIPLoss(0.5, 0.0)
    without = clip(**{k: v for k, v in x.items() if k != "logit_bias"})
    with_bias = clip(**x)
    assert all(torch.equal(with_bias[k], without[k]) for k in without)


def test_registry_names_flags_and_config():
    flags = {  # name: (needs_negatives, needs_dense, negclip, global weight, local weight)
        "siglip": (False, False, True, 0.0, 0.0),
        "negsiglip": (True, False, True, 0.0, 0.0),
        "fsc-siglip": (True, True, False, 0.5, 0.2),
    }
    for name, expected in flags.items():
        loss_fn = build_loss({"loss_name": name}, rank=1, world_size=2)
        assert isinstance(loss_fn, FSCSigLIPLoss) and loss_fn.uses_logit_bias, name
        got = (loss_fn.needs_negatives, loss_fn.needs_dense, loss_fn.negclip, loss_fn.global_weight,
               loss_fn.local_weight)  # fmt: skip
        assert got == expected, name
        assert (loss_fn.rank, loss_fn.world_size, loss_fn.contrastive_term) == (1, 2, "sigmoid_loss")
    for name in ("clip", "negclip", "fsc-clip"):
        assert not build_loss({"loss_name": name}).uses_logit_bias
    assert LossConfig(loss_name="fsc-siglip", neg_loss_weight=0.7, local_neg_weight=0.3).global_weight == 0.7
    assert LossConfig(loss_name="fsc-siglip", apply_local_neg_loss=False).local_weight == 0.0
    assert LossConfig(loss_name="siglip").global_weight == 0.0 and LossConfig(loss_name="negsiglip").local_weight == 0
    only_global = build_loss({"loss_name": "fsc-siglip", "apply_local_neg_loss": False})
    assert only_global.needs_negatives and not only_global.needs_dense


def test_cli_lists_sigmoid_losses(capsys):
    from fsc_clip.cli.main import main

    assert main(["list", "losses"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name in SIGMOID_NAMES:
        assert "sigmoid (SigLIP) loss" in lines[name], lines
