"""Task scorers and the glue that turns items + an embedder into per-item outcomes and pooled sub-scores.

Tie policy (all tasks): a tie is not a success. See :mod:`.multiple_choice` and :mod:`.group`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from fsc_clip.evaluation.items import Embedder, GroupItem, ImageToTextItem, Item, TextToImageItem

GROUP_METRICS = ("text", "image", "group")


def as_hit(value: Any) -> Any:
    """One outcome as a hit count: ``0`` / ``1`` for a boolean, an int array for a row of bootstrap replicates.

    Scorers accumulate with this, so the same ``Benchmark.score`` computes a point estimate from per-item booleans
    and all bootstrap replicates at once from per-item rows ``[n_resamples]`` (:mod:`fsc_clip.evaluation.stats`).
    """
    if isinstance(value, np.ndarray) and value.ndim:
        return value.astype(np.int64)
    return int(bool(value))


def score_items(items: Sequence[Item], embedder: Embedder, desc: str = "") -> dict[str, list]:
    """Embed (cached) and score every item.

    Returns:
        ``{"correct": [...], "text": [...], "image": [...], "group": [...]}``, each aligned with ``items``;
        multiple-choice items fill ``correct`` (None elsewhere), group items fill text/image/group.
    """
    return score_items_with_sims(items, embedder, desc)[0]


def score_items_with_sims(items: Sequence[Item], embedder: Embedder, desc: str = "") -> tuple[dict[str, list], list]:
    """:func:`score_items` plus every item's candidate similarities (``[N]`` multiple choice, ``[2, 2]`` group
    as ``s[caption, image]``), as numpy arrays aligned with ``items``."""
    import torch

    from fsc_clip.evaluation.tasks.group import group_outcomes
    from fsc_clip.evaluation.tasks.multiple_choice import multiple_choice_correct

    refs, texts = [], []
    for it in items:
        if isinstance(it, ImageToTextItem):
            refs.append(it.image)
            texts.extend(it.texts)
        elif isinstance(it, TextToImageItem):
            refs.extend(it.images)
            texts.append(it.text)
        else:
            refs.extend(it.images)
            texts.extend(it.texts)
    embedder.prefetch(refs, texts, desc=desc)

    n = len(items)
    out: dict[str, list] = {k: [None] * n for k in ("correct", *GROUP_METRICS)}
    sims_out: list = [None] * n
    # Bucket by (type, number of candidates) so each bucket is one batched tensor op.
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        if isinstance(it, ImageToTextItem):
            buckets[("i2t", len(it.texts))].append(i)
        elif isinstance(it, TextToImageItem):
            buckets[("t2i", len(it.images))].append(i)
        elif isinstance(it, GroupItem):
            buckets[("group", 2)].append(i)
        else:
            raise TypeError(f"unknown item type {type(it).__name__}")
    for (kind, k), idx in buckets.items():
        its = [items[i] for i in idx]
        m = len(its)
        # cast: the bucket key was chosen from isinstance() of each of its items just above
        if kind == "i2t":
            i2t = cast(list[ImageToTextItem], its)
            img = embedder.images([it.image for it in i2t])  # [M, D]
            txt = embedder.texts([t for it in i2t for t in it.texts]).view(m, k, -1)  # [M, N, D]
            sims = torch.einsum("md,mnd->mn", img, txt)
            res = multiple_choice_correct(sims, torch.tensor([it.label for it in i2t]))
            for i, r in zip(idx, res.tolist()):
                out["correct"][i] = r
        elif kind == "t2i":
            t2i = cast(list[TextToImageItem], its)
            txt = embedder.texts([it.text for it in t2i])  # [M, D]
            img = embedder.images([r for it in t2i for r in it.images]).view(m, k, -1)  # [M, N, D]
            sims = torch.einsum("md,mnd->mn", txt, img)
            res = multiple_choice_correct(sims, torch.tensor([it.label for it in t2i]))
            for i, r in zip(idx, res.tolist()):
                out["correct"][i] = r
        else:
            groups = cast(list[GroupItem], its)
            img = embedder.images([r for it in groups for r in it.images]).view(m, 2, -1)  # [M, 2, D]
            txt = embedder.texts([t for it in groups for t in it.texts]).view(m, 2, -1)  # [M, 2, D]
            sims = torch.einsum("mcd,mid->mci", txt, img)  # [M, caption, image]
            group_res = group_outcomes(sims)
            for metric in GROUP_METRICS:
                for i, r in zip(idx, group_res[metric].tolist()):
                    out[metric][i] = r
        for i, row in zip(idx, sims.float().cpu().numpy()):
            sims_out[i] = row
    return out, sims_out


def outcome_keys(item: Item) -> list[tuple[str, str]]:
    """``(sub-score name without prefix, outcome key)`` pairs an item contributes to."""
    if isinstance(item, GroupItem):
        return [(f"{item.subset}::{m}" if item.subset else m, m) for m in GROUP_METRICS]
    return [(item.subset or "accuracy", "correct")]


def pooled_accuracy(
    name: str, items: Sequence[Item], outcomes: Mapping[str, Sequence]
) -> tuple[dict[str, float], dict[str, int]]:
    """Pooled accuracy (percent) per sub-score: correct items / items, keys ``"<name>::<sub>"``."""
    hits: dict[str, int] = {}
    counts: dict[str, int] = {}
    for i, it in enumerate(items):
        for sub, key in outcome_keys(it):
            full = f"{name}::{sub}"
            counts[full] = counts.get(full, 0) + 1
            hits[full] = hits.get(full, 0) + as_hit(outcomes[key][i])
    return {k: 100.0 * hits[k] / counts[k] for k in counts}, counts


def macro_accuracy(
    name: str, items: Sequence[Item], outcomes: Mapping[str, Sequence], min_count: int = 1
) -> tuple[dict[str, float], dict[str, int]]:
    """Per sub-score: mean over ``item.category`` of the category's accuracy (categories with >= min_count).

    Counts are the number of items in the kept categories.
    """
    per: dict[str, dict[str, list[int]]] = {}
    for i, it in enumerate(items):
        for sub, key in outcome_keys(it):
            cats = per.setdefault(f"{name}::{sub}", {})
            acc = cats.setdefault(it.category, [0, 0])
            acc[0] = acc[0] + as_hit(outcomes[key][i])
            acc[1] += 1
    scores, counts = {}, {}
    for full, cats in per.items():
        kept = [(h, n) for h, n in cats.values() if n >= min_count]
        if not kept:
            continue
        scores[full] = 100.0 * sum(h / n for h, n in kept) / len(kept)
        counts[full] = sum(n for _, n in kept)
    return scores, counts
