"""Loss registry and the config → loss factory."""

from __future__ import annotations

from typing import Any

from fsc_clip.config import ConfigError, from_dict
from fsc_clip.losses.config import LOSSES, LossConfig
from fsc_clip.losses.fsc import FSCCLIPLoss
from fsc_clip.losses.sigmoid import FSCSigLIPLoss

__all__ = ["LOSSES", "build_loss", "list_loss_lines"]


def _common(cfg: LossConfig, rank: int, world_size: int) -> dict[str, Any]:
    return {
        "neg_loss": cfg.neg_loss_name,
        "focal_gamma": cfg.focal_gamma,
        "label_smoothing": cfg.neg_label_smoothing,
        "sim_normalizer": cfg.sim_normalizer,
        "sim_sparsify": cfg.sim_sparsify,
        "rank": rank,
        "world_size": world_size,
    }


@LOSSES.register("clip")
def _clip(cfg: LossConfig, rank: int = 0, world_size: int = 1) -> FSCCLIPLoss:
    # The reference's `--loss-name clip`: negatives, if the data has them, become NegCLIP columns.
    return FSCCLIPLoss(0.0, 0.0, negclip=True, require_negatives=False, **_common(cfg, rank, world_size))


@LOSSES.register("negclip")
def _negclip(cfg: LossConfig, rank: int = 0, world_size: int = 1) -> FSCCLIPLoss:
    return FSCCLIPLoss(0.0, 0.0, negclip=True, require_negatives=True, **_common(cfg, rank, world_size))


@LOSSES.register("fsc-clip")
def _fsc_clip(cfg: LossConfig, rank: int = 0, world_size: int = 1) -> FSCCLIPLoss:
    return FSCCLIPLoss(cfg.global_weight, cfg.local_weight, **_common(cfg, rank, world_size))


@LOSSES.register("siglip")
def _siglip(cfg: LossConfig, rank: int = 0, world_size: int = 1) -> FSCSigLIPLoss:
    # As `clip`: negatives, if the data has them, become negative-only columns of the sigmoid loss.
    return FSCSigLIPLoss(0.0, 0.0, negclip=True, require_negatives=False, **_common(cfg, rank, world_size))


@LOSSES.register("negsiglip")
def _negsiglip(cfg: LossConfig, rank: int = 0, world_size: int = 1) -> FSCSigLIPLoss:
    return FSCSigLIPLoss(0.0, 0.0, negclip=True, require_negatives=True, **_common(cfg, rank, world_size))


@LOSSES.register("fsc-siglip")
def _fsc_siglip(cfg: LossConfig, rank: int = 0, world_size: int = 1) -> FSCSigLIPLoss:
    return FSCSigLIPLoss(cfg.global_weight, cfg.local_weight, **_common(cfg, rank, world_size))


_DESCRIPTIONS = {
    "clip": "CLIP loss; negatives, if the batch has them, become NegCLIP columns (reference --loss-name clip)",
    "negclip": "CLIP loss with the batch's valid negatives as extra image->text columns (negatives required)",
    "fsc-clip": "CLIP loss + global and local hard-negative losses with SCR (focal + smoothing)",
    "siglip": "sigmoid (SigLIP) loss; negatives, if the batch has them, become negative-only columns",
    "negsiglip": "sigmoid (SigLIP) loss with the batch's valid negatives as negative-only columns (required)",
    "fsc-siglip": "sigmoid (SigLIP) loss + global and local hard-negative losses with SCR (focal + smoothing)",
}


def list_loss_lines() -> list[str]:
    """One line per registered loss, for ``fsc-clip list losses``."""
    return [f"{name:10s} {_DESCRIPTIONS.get(name, '')}".rstrip() for name in LOSSES.names()]


def build_loss(cfg: LossConfig | dict[str, Any] | None = None, rank: int = 0, world_size: int = 1) -> FSCCLIPLoss:
    """Build the loss module described by ``cfg``.

    Args:
        cfg: A :class:`LossConfig`, a dict of its fields (reference option names; dashes allowed, e.g.
            ``{"loss-name": "fsc-clip", "neg-loss-weight": 0.5}``) or None for the paper recipe.
        rank: This process's rank.
        world_size: Number of processes (features are gathered with gradient when > 1).

    Returns:
        The loss module; see :class:`FSCCLIPLoss` for the call signature and outputs.
    """
    if cfg is None:
        cfg = LossConfig()
    elif isinstance(cfg, dict):
        cfg = from_dict(LossConfig, cfg)
    elif not isinstance(cfg, LossConfig):
        raise ConfigError(f"build_loss: expected a LossConfig or a dict, got {type(cfg).__name__}")
    return LOSSES.get(cfg.loss_name)(cfg, rank=rank, world_size=world_size)
