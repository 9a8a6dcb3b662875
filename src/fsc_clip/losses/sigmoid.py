"""Sigmoid (SigLIP) losses with hard negatives: ``siglip``, ``negsiglip`` and ``fsc-siglip``.

Reference for the sigmoid term and its exchange semantics: open_clip_torch 3.3.0, ``open_clip/loss.py``
``SigLipLoss``.

Sigmoid term, for rank r with B local images ``x_i``, the positive captions ``y_j`` of all W ranks (rank q's at
``j = q·B … q·B + B − 1``) and, when negatives are used as columns, the set ``N`` of *valid* hard negatives
``w_n`` (``neg_mask`` True) of every image on every rank::

    z_ij = s·⟨x_i, y_j⟩ + b        label l_ij = +1 if j = r·B + i (the matched pair), −1 otherwise
    u_in = s·⟨x_i, w_n⟩ + b        label −1 for every image, the negative's own image included

    L_sig = −(1/B) · [ Σ_i Σ_j log σ(l_ij · z_ij) + Σ_i Σ_{n ∈ N} log σ(−u_in) ]

``s`` is the exponentiated logit scale, ``b`` the model's raw logit bias (not exponentiated). Invalid negatives
are not in ``N``: their terms are removed exactly (not pushed away with a large negative logit), so the values
stored in their slots never matter.

Losses (built by ``fsc_clip.losses.build_loss``):

- ``siglip``: ``L_sig``; the batch's valid negatives, when it has them, are columns of ``N`` (as ``clip`` does for
  the softmax family);
- ``negsiglip``: the same, negatives required;
- ``fsc-siglip``: ``L_sig`` over the positives only (``N`` empty) ``+ λ_g·L_g + λ_l·L_l``, where ``L_g`` and ``L_l``
  are the global and local (LHN) hard-negative losses with SCR exactly as :class:`~fsc_clip.losses.FSCCLIPLoss`
  computes them: separate (1+K)-way softmaxes over [positive, K negatives] of each image with the same ``s``.
  The bias would add the same ``b`` to every logit of such a softmax, where it cancels, so it is left out.

Distributed. Each rank computes the loss of its *own* images against the texts (and negatives) of *all* ranks,
normalised by the *local* image count B, as open_clip's ``SigLipLoss`` does. Its per-rank losses sum to
``W·B·L_union/B``; DDP's gradient averaging divides by W, which gives exactly the gradient of one process on the
union batch of W·B images (normalised by W·B). open_clip passes text blocks around a ring of neighbour exchanges;
here they are all-gathered with gradient (:func:`~fsc_clip.losses.distributed.gather_with_grad`), which has the
same value and the same gradient (the backward of the all-gather returns to each rank the sum of the gradients all
ranks send to its texts). Masks travel without gradient. ``s`` and ``b`` enter every rank's loss, so both get a
gradient on every rank.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from fsc_clip.config import ConfigError
from fsc_clip.losses.distributed import gather_no_grad, gather_with_grad
from fsc_clip.losses.fsc import FSCCLIPLoss


def sigmoid_loss(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor,
    logit_bias: Tensor,
    rank: int = 0,
    neg_text_features: Tensor | None = None,
    neg_valid: Tensor | None = None,
) -> Tensor:
    """Sigmoid loss ``L_sig`` of the local images (see the module docstring).

    Args:
        image_features: ``[B, D]`` local, normalised.
        text_features: ``[W·B, D]`` positive captions of every rank (gathered; rank q's block at rows
            ``q·B:(q+1)·B``); ``[B, D]`` in a single process.
        logit_scale: Scalar, already exponentiated.
        logit_bias: Scalar (shape ``[]`` or ``[1]``), the raw bias.
        rank: This rank's index (locates the matched pairs).
        neg_text_features: ``[N, D]`` negative captions, negative-only columns for every image (gathered).
        neg_valid: ``[N]`` bool mask for ``neg_text_features`` (None = all valid).

    Returns:
        Scalar loss, summed over all pairs and divided by the local image count B.
    """
    num_images = image_features.shape[0]
    # Same expression order as open_clip.loss.SigLipLoss so that a single process without negatives matches it.
    logits = logit_scale * image_features @ text_features.T  # [B, W·B]
    logits = logits + logit_bias
    columns = torch.arange(text_features.shape[0], device=logits.device)  # [W·B]
    matched = columns.unsqueeze(0) == torch.arange(num_images, device=logits.device).unsqueeze(1) + rank * num_images
    labels = 2 * matched.to(logits.dtype) - 1  # [B, W·B], ±1
    loss = -F.logsigmoid(labels * logits).sum()
    if neg_text_features is not None:
        neg_logits = logit_scale * image_features @ neg_text_features.T + logit_bias  # [B, N]
        log_p = F.logsigmoid(-neg_logits)  # [B, N], label −1
        if neg_valid is not None:
            # `where`, not a multiplication: an invalid slot contributes exactly 0 and sends no gradient.
            log_p = torch.where(neg_valid.unsqueeze(0), log_p, torch.zeros_like(log_p))
        loss = loss - log_p.sum()
    return loss / num_images


class FSCSigLIPLoss(FSCCLIPLoss):
    """The sigmoid family: ``L_sig + λ_g·L_g + λ_l·L_l`` (see the module docstring for the exact objective).

    Same constructor, attributes and call (``forward``) as :class:`~fsc_clip.losses.FSCCLIPLoss` (``negclip`` here
    means: the valid negatives are negative-only columns of the sigmoid term), except that ``logit_bias`` is
    required: the sigmoid term raises ``ConfigError`` without it (or for a non-scalar one). The sigmoid term is
    returned as ``sigmoid_loss``; :attr:`metrics` also holds ``logit_bias``.
    """

    uses_logit_bias: ClassVar[bool] = True
    contrastive_term: ClassVar[str] = "sigmoid_loss"

    def _clip_term(
        self,
        image: Tensor,
        text: Tensor,
        neg_text: Tensor | None,
        neg_mask: Tensor | None,
        logit_scale: Tensor,
        logit_bias: Tensor | None = None,
    ) -> Tensor:
        if logit_bias is None:
            raise ConfigError(
                "loss_name: a sigmoid (SigLIP) loss needs the model's logit_bias, got None; use a SigLIP-family "
                "model (it has a logit_bias) or a softmax loss (clip / negclip / fsc-clip)"
            )
        if logit_bias.numel() != 1:
            raise ConfigError(f"logit_bias must be a scalar, got shape {tuple(logit_bias.shape)}")
        all_text = gather_with_grad(text, self.world_size)  # [W·B, D]; images stay local (one direction only)
        neg_cols = neg_valid = None
        if self.negclip and neg_text is not None and neg_mask is not None:
            neg_cols = gather_with_grad(neg_text, self.world_size).flatten(0, 1)  # [W·B·K, D]
            neg_valid = gather_no_grad(neg_mask, self.world_size).flatten()  # [W·B·K]
        return sigmoid_loss(image, all_text, logit_scale, logit_bias, self.rank, neg_cols, neg_valid)
