"""Image-text retrieval recall (R@k) with several captions per image, computed in row chunks.

Protocol (COCO Karpathy 5k, Flickr30k 1k, COCO-Counterfactuals):

- **I2T**: an image query is a hit at k if *any* of its captions is among the k best-scoring texts. Equivalently,
  the image's best-scoring caption has fewer than k competitors ahead of it. Only the other images' captions
  compete (its own captions are never counted against it).
- **T2I**: a caption query is a hit at k if its image is among the k best-scoring images.

Tie policy (project-wide: a tie is not a success): a competitor whose score *equals* the query's best positive
score counts as ahead of it. With float similarities this only matters for degenerate models.

Memory: the similarity matrix is never built whole. Queries are processed in chunks of ``chunk_size`` rows, so
at most ``chunk_size x max(n_images, n_texts)`` scores (plus same-shape masks) exist at once; with
``chunk_size=None`` a single chunk covers everything (the "full" computation, same results).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

DEFAULT_KS = (1, 5, 10)


def _check(image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor) -> None:
    if image_emb.ndim != 2 or text_emb.ndim != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise ValueError(f"expected [N_img, D] and [N_txt, D], got {tuple(image_emb.shape)} / {tuple(text_emb.shape)}")
    if text_to_image.shape != (text_emb.shape[0],):
        raise ValueError(f"text_to_image must be [N_txt]={text_emb.shape[0]}, got {tuple(text_to_image.shape)}")
    if len(text_to_image) and (int(text_to_image.min()) < 0 or int(text_to_image.max()) >= image_emb.shape[0]):
        raise ValueError("text_to_image holds an image index out of range")


def i2t_competitors(
    image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor, chunk_size: int | None = 256
) -> torch.Tensor:
    """Per image: how many *other images'* captions score >= its best caption. ``[N_img]`` long.

    Args:
        image_emb: ``[N_img, D]`` image embeddings.
        text_emb: ``[N_txt, D]`` text embeddings.
        text_to_image: ``[N_txt]`` long, the image index of each caption.
        chunk_size: Image rows per chunk (``None``: all at once).

    An image without captions gets ``N_txt`` (never a hit).
    """
    _check(image_emb, text_emb, text_to_image)
    n_img, n_txt = image_emb.shape[0], text_emb.shape[0]
    step = n_img if not chunk_size else int(chunk_size)
    out = torch.empty(n_img, dtype=torch.long)
    t2i = text_to_image.long()
    for start in range(0, n_img, max(step, 1)):
        rows = torch.arange(start, min(start + step, n_img))
        sims = image_emb[rows] @ text_emb.t()  # [B, N_txt]
        own = t2i[None, :] == rows[:, None]  # [B, N_txt]
        best = sims.masked_fill(~own, float("-inf")).max(dim=1).values  # [B]
        ahead = (sims >= best[:, None]) & ~own  # [B, N_txt]
        count = ahead.sum(dim=1)
        count[~own.any(dim=1) | torch.isnan(best)] = n_txt
        out[rows] = count
        del sims, own, ahead
    return out


def t2i_competitors(
    image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor, chunk_size: int | None = 256
) -> torch.Tensor:
    """Per caption: how many *other* images score >= its own image. ``[N_txt]`` long (chunks of text rows)."""
    _check(image_emb, text_emb, text_to_image)
    n_img, n_txt = image_emb.shape[0], text_emb.shape[0]
    step = n_txt if not chunk_size else int(chunk_size)
    out = torch.empty(n_txt, dtype=torch.long)
    t2i = text_to_image.long()
    for start in range(0, n_txt, max(step, 1)):
        rows = torch.arange(start, min(start + step, n_txt))
        sims = text_emb[rows] @ image_emb.t()  # [B, N_img]
        target = sims.gather(1, t2i[rows, None])  # [B, 1]
        ahead = sims >= target  # [B, N_img]
        ahead.scatter_(1, t2i[rows, None], False)  # the caption's own image is not a competitor
        count = ahead.sum(dim=1)
        count[torch.isnan(target[:, 0])] = n_img
        out[rows] = count
        del sims, ahead
    return out


def recall_at_k(competitors: torch.Tensor, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """``{k: fraction of queries with fewer than k competitors ahead}``."""
    return {int(k): (competitors < int(k)).float().mean().item() for k in ks}


def retrieval_scores(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    text_to_image: torch.Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int | None = 256,
) -> dict[str, float]:
    """I2T and T2I recall in percent, keyed like the published tables: ``"i2t/R@1"``, ..., ``"t2i/R@10"``.

    Args:
        image_emb: ``[N_img, D]`` (L2-normalised for cosine similarity).
        text_emb: ``[N_txt, D]``.
        text_to_image: ``[N_txt]`` image index of each caption (several captions may share an image).
        ks: Recall cut-offs.
        chunk_size: Query rows per chunk; ``None`` computes the full matrix at once.
    """
    image_emb, text_emb = image_emb.float(), text_emb.float()
    i2t = recall_at_k(i2t_competitors(image_emb, text_emb, text_to_image, chunk_size), ks)
    t2i = recall_at_k(t2i_competitors(image_emb, text_emb, text_to_image, chunk_size), ks)
    scores = {f"i2t/R@{k}": 100.0 * v for k, v in i2t.items()}
    scores.update({f"t2i/R@{k}": 100.0 * v for k, v in t2i.items()})
    return scores
