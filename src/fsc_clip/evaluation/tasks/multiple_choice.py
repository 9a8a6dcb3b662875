"""Multiple-choice scorer: one query, N candidates, one right answer (image->N texts and text->N images).

Tie policy: an item is correct only if the right candidate's score is **strictly greater** than every other
candidate's score. A tie for the top (e.g. two identical candidate texts, or a collapsed model giving equal
scores) counts as a failure; NaN scores also count as failures. This is the strict ``>`` rule of SugarCrepe,
EqBen and VL-CheckList; for benchmarks whose official code uses ``argmax`` (ARO, WhatsUp, ImageCoDe) it only
differs on exact ties, where ``argmax`` would silently favour the first option (usually the right one).
"""

from __future__ import annotations

import torch


def multiple_choice_correct(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-query correctness under the strict tie policy.

    Args:
        scores: Similarities ``[M, N]`` (query m vs candidate n).
        labels: Index of the right candidate per query ``[M]`` (long).

    Returns:
        Bool tensor ``[M]``: ``scores[m, labels[m]] > scores[m, j]`` for every ``j != labels[m]``.
    """
    if scores.ndim != 2 or labels.shape != scores.shape[:1]:
        raise ValueError(f"expected scores [M, N] and labels [M], got {tuple(scores.shape)} / {tuple(labels.shape)}")
    scores = scores.float()
    labels = labels.long()
    target = scores.gather(1, labels[:, None]).squeeze(1)  # [M]
    others = scores.clone()
    others.scatter_(1, labels[:, None], float("-inf"))
    best_other = others.max(dim=1).values  # [M]; -inf when N == 1
    return target > best_other
