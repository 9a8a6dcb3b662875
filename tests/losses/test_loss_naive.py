"""Vectorised losses == naive per-sample float64 reference (values and gradients, 1e-6)."""

from __future__ import annotations

import pytest
import torch
from loss_inputs import grads_of, make_inputs
from loss_naive_reference import naive_clip, naive_global, naive_local

from fsc_clip.losses import FSCCLIPLoss

TOL = {"atol": 1e-6, "rtol": 1e-6}

CASES = [
    # normalizer, sparsify, gamma, eps, negclip
    ("minmax", False, 2.0, 0.02, False),
    ("minmax", True, 2.0, 0.02, False),
    ("softmax", False, 0.0, None, False),
    ("minmax", False, 1.5, 0.1, True),
    ("softmax", True, 0.5, 0.3, True),
]


def _naive_terms(x: dict, normalizer: str, sparsify: bool, gamma: float, eps: float | None, negclip: bool) -> dict:
    e = eps or 0.0
    negs = (x["neg_text_features"], x["neg_mask"]) if negclip else (None, None)
    return {
        "clip_loss": naive_clip(x["image_features"], x["text_features"], x["logit_scale"], *negs),
        "global_hn_loss": naive_global(
            x["image_features"], x["text_features"], x["neg_text_features"], x["neg_mask"], x["logit_scale"], gamma, e
        ),
        "local_hn_loss": naive_local(
            x["image_tokens"], x["text_tokens"], x["text_mask"], x["neg_text_tokens"], x["neg_text_mask"],
            x["neg_mask"], x["logit_scale"], gamma, e, normalizer, sparsify,
        ),
    }  # fmt: skip


@pytest.fixture(params=["gram", "explicit"])
def local_method(request, monkeypatch):
    """Run the local loss through both exact implementations (normally chosen from the shapes)."""
    import fsc_clip.losses.local as local

    monkeypatch.setattr(local, "prefer_gram", lambda *_: request.param == "gram")
    return request.param


@pytest.mark.parametrize(("normalizer", "sparsify", "gamma", "eps", "negclip"), CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_terms_and_gradients_match_naive(seed, normalizer, sparsify, gamma, eps, negclip, local_method):
    x = make_inputs(seed)
    loss_fn = FSCCLIPLoss(1.0, 1.0, "focal_loss", gamma, eps, normalizer, sparsify, negclip=negclip)
    terms = loss_fn(**x)
    expected = _naive_terms(x, normalizer, sparsify, gamma, eps, negclip)
    assert set(terms) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, **TOL, msg=name)
    got = grads_of(sum(terms.values()), x)
    want = grads_of(sum(expected.values()), x)
    for name in want:
        assert torch.isfinite(got[name]).all(), name
        torch.testing.assert_close(got[name], want[name], **TOL, msg=f"d/d{name}")


def test_weights_scale_terms():
    x = make_inputs(3)
    unit = FSCCLIPLoss(1.0, 1.0)(**x)
    weighted = FSCCLIPLoss(0.5, 0.2)(**x)
    torch.testing.assert_close(weighted["clip_loss"], unit["clip_loss"])
    torch.testing.assert_close(weighted["global_hn_loss"], 0.5 * unit["global_hn_loss"])
    torch.testing.assert_close(weighted["local_hn_loss"], 0.2 * unit["local_hn_loss"])


def test_cross_entropy_ignores_gamma():
    x = make_inputs(4)
    ce = FSCCLIPLoss(1.0, 1.0, neg_loss="cross_entropy", focal_gamma=5.0, label_smoothing=0.1)(**x)
    expected = _naive_terms(x, "minmax", False, 0.0, 0.1, False)
    for name in ("global_hn_loss", "local_hn_loss"):
        torch.testing.assert_close(ce[name], expected[name], **TOL)


def test_invalid_negatives_are_excluded_not_zero_filled():
    """Values stored in invalid negative slots never matter (the reference zero-fills them, so they
    enter its softmax as logit-0 columns); with all negatives valid nothing is excluded."""
    x = make_inputs(5)
    loss_fn = FSCCLIPLoss(1.0, 1.0, negclip=True)
    before = {k: v.detach() for k, v in loss_fn(**x).items()}
    invalid = ~x["neg_mask"]
    garbage = dict(x)
    with torch.no_grad():
        garbage["neg_text_features"] = torch.where(invalid[..., None], 0.0, x["neg_text_features"])
        garbage["neg_text_tokens"] = torch.where(invalid[..., None, None], 3.0, x["neg_text_tokens"])
    after = loss_fn(**garbage)
    for name, value in before.items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=1e-12)
    # Zero-filled columns would change the CLIP/NegCLIP value: check that including them differs.
    zero_filled = naive_clip(
        x["image_features"], x["text_features"], x["logit_scale"], garbage["neg_text_features"],
        torch.ones_like(x["neg_mask"]),
    )  # fmt: skip
    assert not torch.allclose(zero_filled, before["clip_loss"])


@pytest.mark.parametrize("method", ["gram", "explicit"])
@pytest.mark.parametrize("normalizer", ["minmax", "softmax"])
def test_token_scores_backward_equals_autograd_of_explicit_z(normalizer, method):
    """The hand-written backward (Gram form, Z never built) against autograd through the explicit
    ``Z = W P`` formula, for a random upstream gradient."""
    from fsc_clip.losses.local import patch_weights, token_scores

    gen = torch.Generator().manual_seed(0)
    patches = torch.randn(2, 5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    texts = torch.randn(2, 2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    weights = patch_weights(torch.einsum("bcld,bpd->bclp", texts, patches).detach(), normalizer)
    z = torch.nn.functional.normalize(torch.einsum("bclp,bpd->bcld", weights, patches), dim=-1)
    explicit = scale * (z * torch.nn.functional.normalize(texts, dim=-1)).sum(-1)
    ours = token_scores(patches, texts, scale, normalizer, method=method)
    torch.testing.assert_close(ours, explicit, **TOL)
    upstream = torch.randn(ours.shape, generator=gen, dtype=torch.float64)
    got = torch.autograd.grad((ours * upstream).sum(), (texts, patches, scale))
    want = torch.autograd.grad((explicit * upstream).sum(), (texts, patches, scale))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, **TOL)
