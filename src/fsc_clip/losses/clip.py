"""Symmetric InfoNCE (CLIP) loss and its NegCLIP variant, for one rank's rows against all columns."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def clip_loss(
    image_features: Tensor,
    text_features: Tensor,
    logit_scale: Tensor,
    all_image_features: Tensor | None = None,
    all_text_features: Tensor | None = None,
    rank: int = 0,
    neg_text_features: Tensor | None = None,
    neg_valid: Tensor | None = None,
) -> Tensor:
    """CLIP loss of the local rows; with negatives, the NegCLIP variant.

    Image→text: each local image against every positive caption of the global batch (and, for NegCLIP,
    every valid negative caption of the global batch as extra columns; invalid ones are masked to −∞).
    Text→image: each local positive caption against every image. Label of local row i: ``rank·B + i``.

    Args:
        image_features: ``[B, D]`` local, normalised.
        text_features: ``[B, D]`` local positives, normalised.
        logit_scale: Scalar, already exponentiated.
        all_image_features: ``[W·B, D]`` gathered (with gradient); None = the local batch is global.
        all_text_features: ``[W·B, D]`` gathered positives; None = local.
        rank: This rank's index (offsets the labels).
        neg_text_features: ``[N, D]`` negative captions used as extra image→text columns (gathered).
        neg_valid: ``[N]`` bool mask for ``neg_text_features``.

    Returns:
        Scalar loss, mean over local rows of both directions, averaged.
    """
    all_images = image_features if all_image_features is None else all_image_features
    all_texts = text_features if all_text_features is None else all_text_features
    # Same expression order as open_clip.loss.ClipLoss so that the no-negative case matches it bit for bit.
    logits_per_image = logit_scale * image_features @ all_texts.T  # [B, W·B]
    logits_per_text = logit_scale * text_features @ all_images.T  # [B, W·B]
    if neg_text_features is not None:
        neg_logits = logit_scale * image_features @ neg_text_features.T  # [B, N]
        if neg_valid is not None:
            neg_logits = neg_logits.masked_fill(~neg_valid.unsqueeze(0), float("-inf"))
        logits_per_image = torch.cat([logits_per_image, neg_logits], dim=1)  # [B, W·B + N]
    num_rows = image_features.shape[0]
    labels = torch.arange(num_rows, device=image_features.device) + rank * num_rows
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
