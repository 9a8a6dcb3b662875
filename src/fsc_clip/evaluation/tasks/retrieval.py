"""Image-text retrieval recall (R@k) with several captions per image, computed in row chunks.

Protocol (COCO Karpathy 5k, Flickr30k 1k, COCO-Counterfactuals):

- **I2T**: an image query is a hit at k if *any* of its captions is among the k best-scoring texts. Equivalently,
  the image's best-scoring caption has fewer than k competitors ahead of it. Only the other images' captions
  compete (its own captions are never counted against it).
- **T2I**: a caption query is a hit at k if its image is among the k best-scoring images.

Tie policy (project-wide: a tie is not a success): a competitor whose score *equals* the query's best positive
score counts as ahead of it. With float similarities this only matters for degenerate models.

Memory: the similarity matrix is never built whole. Image rows are processed in chunks of ``chunk_size``, and
both directions are accumulated from the same chunk, so at most ``chunk_size x n_texts`` scores (plus one
same-shape boolean temporary) exist at once and every similarity is computed once; with ``chunk_size=None``
a single chunk covers everything (the "full" computation, same results).
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


def _caption_table(text_to_image: torch.Tensor, n_img: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the indices of its captions, padded: ``([N_img, M] long, [N_img, M] bool valid)``."""
    order = torch.argsort(text_to_image, stable=True)  # captions grouped by image
    counts = torch.bincount(text_to_image, minlength=n_img)  # [N_img]
    width = max(int(counts.max()) if len(counts) else 0, 1)
    starts = torch.cumsum(counts, 0) - counts  # [N_img]
    slot = torch.arange(width)[None, :]  # [1, M]
    valid = slot < counts[:, None]  # [N_img, M]
    pos = (starts[:, None] + slot).clamp(max=max(len(order) - 1, 0))
    table = order[pos] if len(order) else torch.zeros(n_img, width, dtype=torch.long)
    return table.masked_fill(~valid, 0), valid


def competitors(
    image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor, chunk_size: int | None = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """Competitor counts of both directions from one pass over image-row chunks of the similarity matrix.

    Args:
        image_emb: ``[N_img, D]`` image embeddings.
        text_emb: ``[N_txt, D]`` text embeddings.
        text_to_image: ``[N_txt]`` long, the image index of each caption.
        chunk_size: Image rows per chunk (``None``: the whole matrix at once).

    Returns:
        ``(i2t [N_img], t2i [N_txt])`` long: for an image, how many *other images'* captions score >= its best
        caption (an image without captions gets ``N_txt``); for a caption, how many *other* images score >= its
        own image (NaN gets ``N_img``).

    Each similarity is computed once. The T2I reference score ``s(own image, caption)`` is a row-wise dot product
    (it can differ from the matrix entry in the last float bit, which only matters for exact near-ties); the
    caption's own image is excluded exactly, using the matrix entry itself.
    """
    _check(image_emb, text_emb, text_to_image)
    n_img, n_txt = image_emb.shape[0], text_emb.shape[0]
    t2i_idx = text_to_image.long()
    table, valid = _caption_table(t2i_idx, n_img)  # [N_img, M]
    target = (image_emb[t2i_idx] * text_emb).sum(dim=-1)  # [N_txt] s(own image, caption)
    by_owner = torch.argsort(t2i_idx, stable=True)
    bounds = torch.searchsorted(t2i_idx[by_owner], torch.arange(n_img + 1))  # captions of image i: bounds[i:i+2]
    i2t = torch.empty(n_img, dtype=torch.long)
    t2i = torch.zeros(n_txt, dtype=torch.long)
    step = max(n_img if not chunk_size else int(chunk_size), 1)
    for start in range(0, n_img, step):
        stop = min(start + step, n_img)
        sims = image_emb[start:stop] @ text_emb.t()  # [B, N_txt]
        own = sims.gather(1, table[start:stop]).masked_fill(~valid[start:stop], float("-inf"))  # [B, M]
        best = own.max(dim=1).values  # [B]
        # int32 sums of the comparison masks are ~2x faster than the default int64 ones on CPU
        ahead = (sims >= best[:, None]).sum(dim=1, dtype=torch.int32).long()
        ahead -= ((own >= best[:, None]) & valid[start:stop]).sum(dim=1)
        ahead[~valid[start:stop, 0] | torch.isnan(best)] = n_txt
        i2t[start:stop] = ahead
        t2i += (sims >= target[None, :]).sum(dim=0, dtype=torch.int32)  # [N_txt], includes the own image if here
        mine = by_owner[bounds[start] : bounds[stop]]  # captions whose image is in this chunk
        t2i[mine] -= (sims[t2i_idx[mine] - start, mine] >= target[mine]).long()
        del sims, own
    t2i[torch.isnan(target)] = n_img
    return i2t, t2i


def i2t_competitors(
    image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor, chunk_size: int | None = 1024
) -> torch.Tensor:
    """Per image: how many *other images'* captions score >= its best caption. ``[N_img]`` long."""
    return competitors(image_emb, text_emb, text_to_image, chunk_size)[0]


def t2i_competitors(
    image_emb: torch.Tensor, text_emb: torch.Tensor, text_to_image: torch.Tensor, chunk_size: int | None = 1024
) -> torch.Tensor:
    """Per caption: how many *other* images score >= its own image. ``[N_txt]`` long."""
    return competitors(image_emb, text_emb, text_to_image, chunk_size)[1]


def recall_at_k(competitors: torch.Tensor, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """``{k: fraction of queries with fewer than k competitors ahead}``."""
    return {int(k): (competitors < int(k)).float().mean().item() for k in ks}


def retrieval_scores(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    text_to_image: torch.Tensor,
    ks: Sequence[int] = DEFAULT_KS,
    chunk_size: int | None = 1024,
) -> dict[str, float]:
    """I2T and T2I recall in percent, keyed like the published tables: ``"i2t/R@1"``, ..., ``"t2i/R@10"``.

    Args:
        image_emb: ``[N_img, D]`` (L2-normalised for cosine similarity).
        text_emb: ``[N_txt, D]``.
        text_to_image: ``[N_txt]`` image index of each caption (several captions may share an image).
        ks: Recall cut-offs.
        chunk_size: Image rows per chunk; ``None`` computes the full matrix at once.
    """
    i2t_count, t2i_count = competitors(image_emb.float(), text_emb.float(), text_to_image, chunk_size)
    return scores_from_competitors(i2t_count, t2i_count, ks)


def scores_from_competitors(
    i2t_count: torch.Tensor, t2i_count: torch.Tensor, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, float]:
    """The recall table (percent) from the per-query competitor counts of :func:`competitors`."""
    i2t, t2i = recall_at_k(i2t_count, ks), recall_at_k(t2i_count, ks)
    scores = {f"i2t/R@{k}": 100.0 * v for k, v in i2t.items()}
    scores.update({f"t2i/R@{k}": 100.0 * v for k, v in t2i.items()})
    return scores
