"""2x2 group scorer (Winoground, EqBen, ColorSwap, MMVP-VLM): text, image and group outcomes.

``s[m, c, i]`` is the similarity of caption c and image i of item m; caption c belongs to image c.

- text score:  s(c0,i0) > s(c1,i0)  and  s(c1,i1) > s(c0,i1)   (each image picks its caption)
- image score: s(c0,i0) > s(c0,i1)  and  s(c1,i1) > s(c1,i0)   (each caption picks its image)
- group score: text and image

Tie policy: strict ``>`` everywhere, so a tie is never a success (as in the Winoground and EqBen code).
"""

from __future__ import annotations

import torch


def group_outcomes(s: torch.Tensor) -> dict[str, torch.Tensor]:
    """Winoground outcomes for a batch of 2x2 similarity matrices.

    Args:
        s: ``[M, 2, 2]`` with ``s[m, caption, image]``.

    Returns:
        ``{"text": [M] bool, "image": [M] bool, "group": [M] bool}``.
    """
    if s.ndim != 3 or s.shape[1:] != (2, 2):
        raise ValueError(f"expected [M, 2, 2] similarities, got {tuple(s.shape)}")
    s = s.float()
    c0i0, c0i1, c1i0, c1i1 = s[:, 0, 0], s[:, 0, 1], s[:, 1, 0], s[:, 1, 1]
    text = (c0i0 > c1i0) & (c1i1 > c0i1)
    image = (c0i0 > c0i1) & (c1i1 > c1i0)
    return {"text": text, "image": image, "group": text & image}
