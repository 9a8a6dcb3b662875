"""The packed, chunked local scores equal the dense form (every token position computed) in float64."""

from __future__ import annotations

import pytest
import torch

from fsc_clip.losses.local import local_scores, packed_token_scores, token_scores

TOL = {"atol": 1e-9, "rtol": 1e-9}


def _inputs(batch: int, k: int, length: int, dim: int, patches: int, seed: int) -> dict:
    """Random leaves + masks with the awkward cases: an image whose captions are all padding, missing
    negatives, a negative without tokens, single-token captions, very different lengths per image."""
    gen = torch.Generator().manual_seed(seed)

    def leaf(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_()

    lengths = torch.randint(0, length + 1, (batch, 1 + k), generator=gen)
    lengths[0] = 0  # image 0: no valid token in any caption
    lengths[1, 0] = 1  # a single-token positive
    if batch > 2:
        lengths[2] = length  # no padding at all
    mask = torch.arange(length) < lengths[..., None]  # [B, 1+K, L]
    present = torch.rand(batch, k, generator=gen) > 0.3  # missing negatives
    if batch > 3:
        present[3] = False
    return {
        "patches": leaf(batch, patches, dim),
        "pos": leaf(batch, 1, length, dim),
        "neg": leaf(batch, k, length, dim),
        "pos_mask": mask[:, :1],
        "neg_mask": mask[:, 1:] & present[..., None],
        "scale": torch.tensor(5.0, dtype=torch.float64, requires_grad=True),
    }


def _dense_local_scores(x: dict, normalizer: str, sparsify: bool, method: str) -> torch.Tensor:
    """The dense computation: all positions scored, padding masked before the logsumexp."""
    scores = torch.cat(
        [token_scores(x["patches"], t, x["scale"], normalizer, sparsify, method) for t in (x["pos"], x["neg"])], dim=1
    )  # [B, 1+K, L]
    mask = torch.cat([x["pos_mask"], x["neg_mask"]], dim=1)
    has = mask.any(dim=-1, keepdim=True)
    masked = torch.where(has, scores.masked_fill(~mask, float("-inf")), torch.zeros_like(scores))
    return torch.logsumexp(masked, dim=-1)  # [B, 1+K]


def _grads(value: torch.Tensor, x: dict, upstream: torch.Tensor) -> tuple[torch.Tensor, ...]:
    leaves = (x["patches"], x["pos"], x["neg"], x["scale"])
    return torch.autograd.grad((value * upstream).sum(), leaves)


SHAPES = [  # (B, K, L, D, Np)
    (5, 3, 9, 8, 7),
    (8, 2, 16, 12, 30),
    (4, 1, 5, 6, 3),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", ["gram", "explicit"])
@pytest.mark.parametrize("normalizer,sparsify", [("minmax", False), ("minmax", True), ("softmax", False)])
@pytest.mark.parametrize("chunk_tokens", [1, 13, 10_000])
def test_packed_local_scores_equal_dense(monkeypatch, shape, method, normalizer, sparsify, chunk_tokens):
    import fsc_clip.losses.local as local

    monkeypatch.setattr(local, "prefer_gram", lambda *_: method == "gram")
    monkeypatch.setattr(local, "CHUNK_TOKENS", {"cpu": {"gram": chunk_tokens, "explicit": chunk_tokens}})  # 1: 1 image
    batch, k, length, dim, patches = shape
    x = _inputs(batch, k, length, dim, patches, seed=batch + k)
    groups = [(x["pos"], x["pos_mask"]), (x["neg"], x["neg_mask"])]
    packed, has_tokens = local_scores(x["patches"], groups, x["scale"], normalizer, sparsify)
    dense = _dense_local_scores(x, normalizer, sparsify, method)
    mask = torch.cat([x["pos_mask"], x["neg_mask"]], dim=1)
    assert torch.equal(has_tokens, mask.any(dim=-1))
    torch.testing.assert_close(packed, dense, **TOL)
    upstream = torch.randn(packed.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for got, want in zip(_grads(packed, x, upstream), _grads(dense, x, upstream)):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("method", ["gram", "explicit"])
def test_packed_token_scores_are_dense_scores_on_valid_tokens_only(monkeypatch, method):
    """Per token: the dense value where the mask is True, exactly 0 (and no gradient) elsewhere."""
    import fsc_clip.losses.local as local

    monkeypatch.setattr(local, "prefer_gram", lambda *_: method == "gram")
    x = _inputs(6, 3, 11, 10, 9, seed=3)
    groups = [(x["pos"], x["pos_mask"]), (x["neg"], x["neg_mask"])]
    packed = packed_token_scores(x["patches"], groups, x["scale"], chunk_tokens=20)  # [B, 1+K, L]
    dense = torch.cat([token_scores(x["patches"], t, x["scale"], method=method) for t in (x["pos"], x["neg"])], 1)
    mask = torch.cat([x["pos_mask"], x["neg_mask"]], dim=1)
    torch.testing.assert_close(packed[mask], dense[mask], **TOL)
    assert (packed[~mask] == 0).all()
    g_pos, g_neg = torch.autograd.grad(packed.sum(), (x["pos"], x["neg"]))
    assert (g_pos[~x["pos_mask"]] == 0).all() and (g_neg[~x["neg_mask"]] == 0).all()
    assert g_neg[x["neg_mask"]].abs().sum() > 0


def test_half_precision_groups_are_cast_per_chunk():
    """Token groups in bfloat16 (AMP) give the float32 scores of their float32 copies, and a bfloat16 gradient."""
    x = _inputs(4, 2, 6, 8, 5, seed=4)
    patches = x["patches"].detach().float().requires_grad_()
    pos = x["pos"].detach().bfloat16().requires_grad_()
    neg = x["neg"].detach().bfloat16().requires_grad_()
    scale = x["scale"].detach().float()
    got, _ = local_scores(patches, [(pos, x["pos_mask"]), (neg, x["neg_mask"])], scale)
    want, _ = local_scores(patches, [(pos.float(), x["pos_mask"]), (neg.float(), x["neg_mask"])], scale)
    torch.testing.assert_close(got, want)
    g_pos, g_neg = torch.autograd.grad(got.sum(), (pos, neg))
    assert g_pos.dtype == g_neg.dtype == torch.bfloat16


def test_frozen_text_tokens_and_non_contiguous_groups():
    """Texts without gradient (locked text tower) and a transposed (non-contiguous) group: same patch gradient."""
    x = _inputs(5, 3, 7, 8, 6, seed=5)
    neg = x["neg"].detach().transpose(0, 1).contiguous().transpose(0, 1)  # [B, K, L, D], non-contiguous
    groups = [(x["pos"].detach(), x["pos_mask"]), (neg, x["neg_mask"])]
    got, _ = local_scores(x["patches"], groups, x["scale"])
    want = _dense_local_scores({**x, "pos": x["pos"].detach(), "neg": neg}, "minmax", False, "auto")
    torch.testing.assert_close(got, want, **TOL)
    (g_got,) = torch.autograd.grad(got.sum(), x["patches"])
    (g_want,) = torch.autograd.grad(want.sum(), x["patches"])
    torch.testing.assert_close(g_got, g_want, **TOL)
