"""Degenerate inputs: finite losses and gradients; the hard-negative terms vanish when undefined."""

from __future__ import annotations

import pytest
import torch
from loss_inputs import grads_of, make_inputs
from loss_naive_reference import naive_local

from fsc_clip.losses import FSCCLIPLoss
from fsc_clip.losses.local import patch_weights


def _check_finite(terms: dict, inputs: dict) -> None:
    for name, value in terms.items():
        assert torch.isfinite(value), name
    for name, grad in grads_of(sum(terms.values()), inputs).items():
        assert torch.isfinite(grad).all(), name


def test_batch_without_valid_negatives():
    x = make_inputs(0)
    x["neg_mask"] = torch.zeros_like(x["neg_mask"])
    loss_fn = FSCCLIPLoss(1.0, 1.0, negclip=True)
    terms = loss_fn(**x)
    _check_finite(terms, x)
    assert terms["global_hn_loss"] == 0 and terms["local_hn_loss"] == 0
    assert loss_fn.metrics["hn_row_frac"] == 0 and loss_fn.metrics["global_hn_acc"] == 0
    grads = grads_of(terms["global_hn_loss"] + terms["local_hn_loss"], x)
    assert all((g == 0).all() for g in grads.values())


@pytest.fixture(params=["gram", "explicit"])
def local_method(request, monkeypatch):
    import fsc_clip.losses.local as local

    monkeypatch.setattr(local, "prefer_gram", lambda *_: request.param == "gram")
    return request.param


def test_constant_similarity_rows(local_method):
    """Identical patches (and zero text tokens) make every token-patch row constant: min-max would divide
    0 by 0; we fall back to uniform weights."""
    x = make_inputs(1)
    with torch.no_grad():
        x["image_tokens"] = x["image_tokens"][:, :1].expand_as(x["image_tokens"]).clone().requires_grad_()
        x["neg_text_tokens"][0, 0] = 0.0
    sims = torch.full((3, 5), 2.5)
    torch.testing.assert_close(patch_weights(sims, "minmax"), torch.full((3, 5), 0.2))
    torch.testing.assert_close(patch_weights(sims, "minmax", sparsify=True), torch.full((3, 5), 0.2))
    for normalizer in ("minmax", "softmax"):
        loss_fn = FSCCLIPLoss(1.0, 1.0, sim_normalizer=normalizer)
        terms = loss_fn(**x)
        _check_finite(terms, x)
        expected = naive_local(
            x["image_tokens"], x["text_tokens"], x["text_mask"], x["neg_text_tokens"], x["neg_text_mask"],
            x["neg_mask"], x["logit_scale"], 2.0, 0.02, normalizer, False,
        )  # fmt: skip
        torch.testing.assert_close(terms["local_hn_loss"], expected, atol=1e-6, rtol=1e-6)


def test_single_valid_token_and_tokenless_captions(local_method):
    x = make_inputs(2)
    x["text_mask"] = torch.zeros_like(x["text_mask"])
    x["text_mask"][:, 3] = True  # every positive has exactly one valid token
    x["neg_text_mask"] = torch.zeros_like(x["neg_text_mask"])
    x["neg_text_mask"][1, :, 2] = True  # only image 1's negatives have a token
    loss_fn = FSCCLIPLoss(1.0, 1.0)
    terms = loss_fn(**x)
    _check_finite(terms, x)
    expected = naive_local(
        x["image_tokens"], x["text_tokens"], x["text_mask"], x["neg_text_tokens"], x["neg_text_mask"],
        x["neg_mask"], x["logit_scale"], 2.0, 0.02, "minmax", False,
    )  # fmt: skip
    torch.testing.assert_close(terms["local_hn_loss"], expected, atol=1e-6, rtol=1e-6)


def test_missing_tokens_or_negatives_drop_terms():
    x = make_inputs(3)
    loss_fn = FSCCLIPLoss(0.5, 0.2)
    no_tokens = {k: v for k, v in x.items() if "token" not in k and k not in ("text_mask", "neg_text_mask")}
    assert set(loss_fn(**no_tokens)) == {"clip_loss", "global_hn_loss"}
    no_negs = dict(no_tokens, neg_text_features=None, neg_mask=None)
    assert set(loss_fn(**no_negs)) == {"clip_loss"}
    assert set(loss_fn.metrics) == {"logit_scale"}


def test_half_precision_inputs_run_local_loss_in_float32(local_method):
    x = make_inputs(4)
    half = {k: (v.detach().to(torch.bfloat16) if v.is_floating_point() else v) for k, v in x.items()}
    terms = FSCCLIPLoss(1.0, 1.0)(**half)
    assert terms["local_hn_loss"].dtype == torch.float32
    assert all(torch.isfinite(v) for v in terms.values())
