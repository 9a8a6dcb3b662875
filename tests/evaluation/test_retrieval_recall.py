"""Retrieval recall on hand-made similarity matrices (several captions per image); chunked == full."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsc_clip.evaluation.tasks.retrieval import i2t_competitors, retrieval_scores, t2i_competitors

# rows: images, columns: texts; texts 0,1 -> image 0; 2,3 -> image 1; 4,5 -> image 2
S = torch.tensor(
    [
        [0.9, 0.1, 0.8, 0.2, 0.3, 0.0],  # own best .9, nothing ahead -> 0
        [0.7, 0.2, 0.1, 0.6, 0.5, 0.4],  # own best .6 (text 3); text 0 (.7) ahead -> 1
        [0.5, 0.9, 0.7, 0.8, 0.9, 0.1],  # own best .9 (text 4); text 1 ties at .9 -> counts as ahead -> 1
    ]
)
T2I = torch.tensor([0, 0, 1, 1, 2, 2])


def _as_embeddings(sims):
    """image_emb @ text_emb.T == sims with text_emb = identity."""
    return sims.clone(), torch.eye(sims.shape[1])


def test_hand_made_matrix_competitors_and_recall():
    img, txt = _as_embeddings(S)
    assert i2t_competitors(img, txt, T2I).tolist() == [0, 1, 1]
    # per text, its own image vs the other images (columns of S)
    assert t2i_competitors(img, txt, T2I).tolist() == [0, 2, 2, 1, 0, 1]
    scores = retrieval_scores(img, txt, T2I, ks=(1, 2, 3))
    assert scores["i2t/R@1"] == pytest.approx(100 / 3)
    assert scores["i2t/R@2"] == pytest.approx(100.0)
    assert scores["t2i/R@1"] == pytest.approx(100 * 2 / 6)
    assert scores["t2i/R@2"] == pytest.approx(100 * 4 / 6)
    assert scores["t2i/R@3"] == pytest.approx(100.0)


@pytest.mark.parametrize("chunk", [1, 2, None])
def test_hand_made_matrix_chunked_equals_full(chunk):
    img, txt = _as_embeddings(S)
    assert retrieval_scores(img, txt, T2I, chunk_size=chunk) == retrieval_scores(img, txt, T2I, chunk_size=None)


def _brute_force(sims: np.ndarray, t2i: np.ndarray, ks):
    """Independent reference: full argsort, 'any caption in top-k' / 'own image in top-k'."""
    out = {}
    order = np.argsort(-sims, axis=1, kind="stable")  # [N_img, N_txt]
    for k in ks:
        hits = [np.any(t2i[order[i, :k]] == i) for i in range(sims.shape[0])]
        out[f"i2t/R@{k}"] = 100.0 * np.mean(hits)
    order_t = np.argsort(-sims.T, axis=1, kind="stable")  # [N_txt, N_img]
    for k in ks:
        hits = [t2i[j] in order_t[j, :k] for j in range(sims.shape[1])]
        out[f"t2i/R@{k}"] = 100.0 * np.mean(hits)
    return out


@pytest.mark.parametrize("chunk", [1, 7, 64, None])
def test_random_embeddings_match_brute_force(chunk):
    g = torch.Generator().manual_seed(0)
    n_img = 40
    caps = torch.randint(1, 7, (n_img,), generator=g)  # 1..6 captions per image
    t2i = torch.repeat_interleave(torch.arange(n_img), caps)
    t2i = t2i[torch.randperm(len(t2i), generator=g)]  # captions in arbitrary order
    img = torch.nn.functional.normalize(torch.randn(n_img, 16, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(img[t2i] + 1.2 * torch.randn(len(t2i), 16, generator=g), dim=-1)
    got = retrieval_scores(img, txt, t2i, ks=(1, 5, 10), chunk_size=chunk)
    ref = _brute_force((img @ txt.t()).double().numpy(), t2i.numpy(), (1, 5, 10))
    assert got.keys() == ref.keys()
    for key in ref:
        assert got[key] == pytest.approx(ref[key]), key
    assert 0 < got["i2t/R@1"] < 100  # the fixture is neither trivial nor hopeless


def test_image_without_caption_is_never_a_hit_and_bad_input_raises():
    img, txt = _as_embeddings(S)
    t2i = torch.tensor([0, 0, 1, 1, 1, 1])  # image 2 has no caption
    assert i2t_competitors(img, txt, t2i)[2].item() == 6
    with pytest.raises(ValueError):
        retrieval_scores(img, txt, torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError):
        retrieval_scores(img, txt, torch.tensor([0, 0, 1, 1, 2, 3]))
