"""SCR targets / reductions and the CLIP loss against open_clip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from fsc_clip.losses import FSCCLIPLoss, scr_loss, scr_targets


def _valid(rows: int = 8, k: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    valid = torch.rand(rows, 1 + k, generator=gen) > 0.5
    valid[:, 0] = True
    valid[0, 1:] = False
    valid[1, 1:] = True
    return valid


@pytest.mark.parametrize("eps", [None, 0.0, 0.02, 0.5])
def test_targets_sum_to_one_and_skip_invalid(eps):
    valid = _valid()
    y = scr_targets(valid, eps)
    torch.testing.assert_close(y.sum(dim=1), torch.ones(len(valid)))
    assert (y[~valid] == 0).all()
    e = eps or 0.0
    n = valid[:, 1:].sum(dim=1).float()
    torch.testing.assert_close(y[:, 0], (1 - e) + e / (1 + n))
    # the smoothing mass is spread uniformly over the positive and the *valid* negatives only
    torch.testing.assert_close(y[:, 1:], valid[:, 1:].float() * (e / (1 + n))[:, None])


@pytest.mark.parametrize("eps", [None, 0.0])
def test_no_smoothing_no_focus_is_cross_entropy(eps):
    valid = _valid(seed=1)
    logits = torch.randn(len(valid), valid.shape[1], dtype=torch.float64)
    ours = scr_loss(logits, valid, gamma=0.0, label_smoothing=eps)
    masked = logits.masked_fill(~valid, float("-inf"))
    expected = F.cross_entropy(masked, torch.zeros(len(valid), dtype=torch.long), reduction="none")
    torch.testing.assert_close(ours, expected)
    all_valid = torch.ones_like(valid)
    torch.testing.assert_close(
        scr_loss(logits, all_valid, 0.0, eps),
        F.cross_entropy(logits, torch.zeros(len(valid), dtype=torch.long), reduction="none"),
    )


def test_smoothed_cross_entropy_matches_torch_when_all_valid():
    """With every negative valid, SCR's smoothing is ordinary label smoothing over 1+K classes."""
    logits = torch.randn(5, 4, dtype=torch.float64)
    expected = F.cross_entropy(logits, torch.zeros(5, dtype=torch.long), reduction="none", label_smoothing=0.1)
    torch.testing.assert_close(scr_loss(logits, torch.ones(5, 4, dtype=torch.bool), 0.0, 0.1), expected)


def test_focal_loss_one_hot():
    logits = torch.randn(6, 4, dtype=torch.float64)
    p = logits.softmax(dim=1)[:, 0]
    expected = -((1 - p) ** 2) * p.log()
    torch.testing.assert_close(scr_loss(logits, torch.ones(6, 4, dtype=torch.bool), 2.0, None), expected)


def test_scr_finite_for_extreme_logits():
    logits = torch.tensor([[60.0, -60.0, 0.0], [0.0, 0.0, 0.0], [-80.0, 80.0, 1.0]], requires_grad=True)
    valid = torch.tensor([[True, True, False], [True, False, False], [True, True, True]])
    for gamma in (0.0, 0.5, 2.0):
        loss = scr_loss(logits, valid, gamma, 0.02).sum()
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()
        assert (grad[~valid] == 0).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_no_negatives_equals_open_clip(seed):
    gen = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(16, 32, generator=gen), dim=-1)
    txt = F.normalize(torch.randn(16, 32, generator=gen), dim=-1)
    scale = torch.tensor(100.0)
    expected = ClipLoss()(img, txt, scale)
    for loss_fn in (FSCCLIPLoss(), FSCCLIPLoss(negclip=True), FSCCLIPLoss(0.0, 0.0)):
        terms = loss_fn(img, txt, None, None, scale)
        assert list(terms) == ["clip_loss"]
        assert torch.equal(terms["clip_loss"], expected)


def test_zero_weights_give_plain_clip_even_with_negatives():
    gen = torch.Generator().manual_seed(2)
    img = F.normalize(torch.randn(8, 16, generator=gen), dim=-1)
    txt = F.normalize(torch.randn(8, 16, generator=gen), dim=-1)
    neg = F.normalize(torch.randn(8, 3, 16, generator=gen), dim=-1)
    scale = torch.tensor(20.0)
    terms = FSCCLIPLoss(global_weight=0.0, local_weight=0.0)(img, txt, neg, torch.ones(8, 3, dtype=torch.bool), scale)
    assert list(terms) == ["clip_loss"]
    assert torch.equal(terms["clip_loss"], ClipLoss()(img, txt, scale))
