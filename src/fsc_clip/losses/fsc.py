"""FSCCLIPLoss: CLIP / NegCLIP contrastive loss + global and local hard-negative losses with SCR."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from fsc_clip.losses.clip import clip_loss
from fsc_clip.losses.distributed import all_reduce_sum_no_grad, gather_no_grad, gather_with_grad
from fsc_clip.losses.hard_negative import global_hn_logits, hn_accuracy, with_positive
from fsc_clip.losses.local import SIM_NORMALIZERS, local_scores
from fsc_clip.losses.scr import NEG_LOSS_NAMES, masked_mean, scr_loss


class FSCCLIPLoss(nn.Module):
    """The FSC-CLIP objective ``L_clip + λ_g·L_g + λ_l·L_l`` on a fixed ``[B, K, ...]`` + mask layout.

    ``forward`` returns a dict of weighted loss terms (``clip_loss`` and, when active,
    ``global_hn_loss`` and ``local_hn_loss``); the trainer sums its values. Report-only scalars
    (detached tensors, never synchronised to the host here) are left in :attr:`metrics` after each call:
    ``logit_scale``, ``hn_row_frac`` (share of images with at least one valid negative),
    ``global_hn_acc`` / ``local_hn_acc`` (share of those images whose positive caption beats every
    valid negative, globally / locally).

    Args:
        global_weight: λ_g; 0 drops the global hard-negative loss.
        local_weight: λ_l; 0 drops the local hard-negative loss (LHN).
        neg_loss: ``"focal_loss"`` or ``"cross_entropy"`` (focal with γ = 0).
        focal_gamma: γ of the focal loss.
        label_smoothing: SCR ε over valid negatives (None = 0).
        sim_normalizer: ``"minmax"`` or ``"softmax"``.
        sim_sparsify: Zero min-max weights below 1/Np.
        negclip: Append the (gathered) valid negatives as extra image→text columns of the CLIP loss.
        rank: This process's rank.
        world_size: Number of processes; > 1 gathers features with gradient (``torch.distributed``
            must be initialised).
        require_negatives: Value of :attr:`needs_negatives`; default: True iff negatives are used.
    """

    #: Whether ``forward`` needs the model's ``logit_bias`` (False: the softmax losses ignore it).
    uses_logit_bias: ClassVar[bool] = False
    #: Key of the image-text contrastive term in the dict ``forward`` returns.
    contrastive_term: ClassVar[str] = "clip_loss"

    def __init__(
        self,
        global_weight: float = 0.5,
        local_weight: float = 0.2,
        neg_loss: str = "focal_loss",
        focal_gamma: float = 2.0,
        label_smoothing: float | None = 0.02,
        sim_normalizer: str = "minmax",
        sim_sparsify: bool = False,
        negclip: bool = False,
        rank: int = 0,
        world_size: int = 1,
        *,
        require_negatives: bool | None = None,
    ) -> None:
        super().__init__()
        if neg_loss not in NEG_LOSS_NAMES:
            raise ValueError(f"neg_loss must be one of {NEG_LOSS_NAMES}, got {neg_loss!r}")
        if sim_normalizer not in SIM_NORMALIZERS:
            raise ValueError(f"sim_normalizer must be one of {SIM_NORMALIZERS}, got {sim_normalizer!r}")
        self.global_weight = float(global_weight)
        self.local_weight = float(local_weight)
        self.neg_loss = neg_loss
        self.gamma = float(focal_gamma) if neg_loss == "focal_loss" else 0.0
        self.label_smoothing = label_smoothing
        self.sim_normalizer = sim_normalizer
        self.sim_sparsify = bool(sim_sparsify)
        self.negclip = bool(negclip)
        self.rank = int(rank)
        self.world_size = int(world_size)
        uses_negatives = self.negclip or self.global_weight > 0 or self.local_weight > 0
        #: Whether the trainer must request dense tokens (``encode(..., dense=True)``).
        self.needs_dense: bool = self.local_weight > 0
        #: Whether the trainer must provide hard-negative captions.
        self.needs_negatives: bool = uses_negatives if require_negatives is None else bool(require_negatives)
        self.metrics: dict[str, Tensor] = {}

    def extra_repr(self) -> str:
        return (
            f"global_weight={self.global_weight}, local_weight={self.local_weight}, neg_loss={self.neg_loss!r}, "
            f"gamma={self.gamma}, label_smoothing={self.label_smoothing}, sim_normalizer={self.sim_normalizer!r}, "
            f"sim_sparsify={self.sim_sparsify}, negclip={self.negclip}, world_size={self.world_size}"
        )

    def forward(
        self,
        image_features: Tensor,
        text_features: Tensor,
        neg_text_features: Tensor | None,
        neg_mask: Tensor | None,
        logit_scale: Tensor,
        image_tokens: Tensor | None = None,
        text_tokens: Tensor | None = None,
        text_mask: Tensor | None = None,
        neg_text_tokens: Tensor | None = None,
        neg_text_mask: Tensor | None = None,
        logit_bias: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Compute the weighted loss terms for this rank's batch.

        Args:
            image_features: ``[B, D]`` L2-normalised.
            text_features: ``[B, D]`` L2-normalised positive captions.
            neg_text_features: ``[B, K, D]`` L2-normalised negatives, or None (no negatives).
            neg_mask: ``[B, K]`` bool, True where negative k of image i exists (None = all exist).
            logit_scale: Scalar tensor, already exponentiated.
            image_tokens: ``[B, Np, D]`` projected patch tokens (local loss only).
            text_tokens: ``[B, L, D]`` projected tokens of the positives.
            text_mask: ``[B, L]`` bool, valid tokens (no padding, no start-of-text).
            neg_text_tokens: ``[B, K, L, D]`` projected tokens of the negatives (absent ones: finite values).
            neg_text_mask: ``[B, K, L]`` bool.
            logit_bias: The model's logit bias (SigLIP-family models), or None; ignored here, since a bias shared
                by every logit cancels in a softmax. Accepted so that the trainer can pass it to any loss.

        Returns:
            ``{"clip_loss": ..., "global_hn_loss": ..., "local_hn_loss": ...}`` (the first key is
            :attr:`contrastive_term`), each already weighted; a hard-negative term is absent when its weight is 0
            or its inputs are missing.
        """
        metrics = {"logit_scale": logit_scale.detach()}
        if self.uses_logit_bias and logit_bias is not None:
            metrics["logit_bias"] = logit_bias.detach()
        if neg_text_features is not None and neg_mask is None:
            neg_mask = torch.ones(neg_text_features.shape[:2], dtype=torch.bool, device=neg_text_features.device)
        if neg_mask is not None:
            neg_mask = neg_mask.bool()
        pair_term = self._clip_term(image_features, text_features, neg_text_features, neg_mask, logit_scale, logit_bias)
        terms = {self.contrastive_term: pair_term}
        if neg_text_features is not None and neg_mask is not None:  # neg_mask is set above whenever negatives exist
            metrics["hn_row_frac"] = neg_mask.any(dim=1).float().mean().detach()
            if self.global_weight > 0:
                terms["global_hn_loss"] = self.global_weight * self._global_term(
                    image_features, text_features, neg_text_features, neg_mask, logit_scale, metrics
                )
            if (
                self.local_weight > 0
                and image_tokens is not None
                and text_tokens is not None
                and text_mask is not None
                and neg_text_tokens is not None
                and neg_text_mask is not None
            ):
                tokens = (image_tokens, text_tokens, text_mask, neg_text_tokens, neg_text_mask)
                terms["local_hn_loss"] = self.local_weight * self._local_term(*tokens, neg_mask, logit_scale, metrics)
        self.metrics = metrics
        return terms

    def _clip_term(
        self,
        image: Tensor,
        text: Tensor,
        neg_text: Tensor | None,
        neg_mask: Tensor | None,
        logit_scale: Tensor,
        logit_bias: Tensor | None = None,
    ) -> Tensor:
        del logit_bias  # cancels in the softmax
        all_image = gather_with_grad(image, self.world_size)  # [W·B, D]
        all_text = gather_with_grad(text, self.world_size)  # [W·B, D]
        neg_cols = neg_valid = None
        if self.negclip and neg_text is not None and neg_mask is not None:
            neg_cols = gather_with_grad(neg_text, self.world_size).flatten(0, 1)  # [W·B·K, D]
            neg_valid = gather_no_grad(neg_mask, self.world_size).flatten()  # [W·B·K]
        return clip_loss(image, text, logit_scale, all_image, all_text, self.rank, neg_cols, neg_valid)

    def _hn_mean(self, per_row: Tensor, rows: Tensor) -> Tensor:
        """Mean over rows with negatives; across ranks, normalised by the *global* row count / W so that
        DDP's gradient averaging reproduces the single-process mean exactly."""
        if self.world_size == 1:
            return masked_mean(per_row, rows)
        count = all_reduce_sum_no_grad(rows.sum(), self.world_size).to(per_row.dtype) / self.world_size
        return masked_mean(per_row, rows, count=count)

    def _global_term(
        self,
        image: Tensor,
        text: Tensor,
        neg_text: Tensor,
        neg_mask: Tensor,
        logit_scale: Tensor,
        metrics: dict[str, Tensor],
    ) -> Tensor:
        logits = global_hn_logits(image, text, neg_text, logit_scale)  # [B, 1+K]
        valid = with_positive(neg_mask)  # [B, 1+K]
        rows = neg_mask.any(dim=1)  # [B]
        metrics["global_hn_acc"] = hn_accuracy(logits, valid, rows)
        return self._hn_mean(scr_loss(logits, valid, self.gamma, self.label_smoothing), rows)

    def _local_term(
        self,
        image_tokens: Tensor,
        text_tokens: Tensor,
        text_mask: Tensor,
        neg_text_tokens: Tensor,
        neg_text_mask: Tensor,
        neg_mask: Tensor,
        logit_scale: Tensor,
        metrics: dict[str, Tensor],
    ) -> Tensor:
        groups = [
            (text_tokens.unsqueeze(1), text_mask.bool().unsqueeze(1)),  # [B, 1, L, D], [B, 1, L]
            (neg_text_tokens, neg_text_mask.bool() & neg_mask.unsqueeze(-1)),  # [B, K, L, D], [B, K, L]
        ]
        scores, has_tokens = local_scores(
            image_tokens, groups, logit_scale, self.sim_normalizer, self.sim_sparsify
        )  # [B, 1+K] each
        neg_valid = has_tokens[:, 1:]  # [B, K] (already includes neg_mask)
        rows = has_tokens[:, 0] & neg_valid.any(dim=1)  # [B]
        valid = with_positive(neg_valid)  # [B, 1+K]; column 0 always "valid" so that every row is well posed
        metrics["local_hn_acc"] = hn_accuracy(scores, valid, rows)
        return self._hn_mean(scr_loss(scores, valid, self.gamma, self.label_smoothing), rows)
