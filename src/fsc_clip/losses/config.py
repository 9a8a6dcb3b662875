"""Typed loss configuration using the reference implementation's option names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fsc_clip.config import ConfigError
from fsc_clip.registry import Registry

#: name -> builder(cfg: LossConfig, rank: int, world_size: int) -> FSCCLIPLoss-compatible module. The registry
#: lives here, next to the config that validates names against it, so that this module never imports the factory
#: (which imports the config): the builders register in ``factory.py``, loaded on the first lookup.
LOSSES: Registry[Any] = Registry("loss", lazy_modules=("fsc_clip.losses.factory",))

#: The losses that carry the FSC-CLIP hard-negative terms: λ_g and λ_l are 0 for every other name.
HN_LOSS_NAMES = frozenset({"fsc-clip", "fsc-siglip"})

# The authors' command-line defaults (argparse in their training/params.py). Their store_true flags
# default to off, so a translated command that omits --apply-global-neg-loss must start from these,
# not from the paper recipe below.
REFERENCE_CLI_DEFAULTS: dict[str, Any] = {
    "loss_name": "fsc-clip",
    "neg_loss_name": "cross_entropy",
    "focal_gamma": 1.0,
    "neg_label_smoothing": None,
    "apply_global_neg_loss": False,
    "neg_loss_weight": 1.0,
    "apply_local_neg_loss": False,
    "local_neg_weight": 1.0,
    "sim_normalizer": "minmax",
    "sim_sparsify": False,
}


@dataclass
class LossConfig:
    """Which loss to train with; defaults are the paper's FSC-CLIP recipe (ViT-B/32, COCO).

    Attributes:
        loss_name: A name registered in ``fsc_clip.losses.LOSSES``. ``"clip"`` — CLIP loss; negatives, when
            the data provides them, are appended as image→text columns (the authors' ``--loss-name clip``
            behaviour, i.e. NegCLIP). ``"negclip"`` — the same but negatives are required. ``"fsc-clip"`` —
            CLIP loss over positives plus the separate global / local hard-negative losses enabled below.
            ``"siglip"``, ``"negsiglip"``, ``"fsc-siglip"`` — the same three with the sigmoid (SigLIP) loss in
            place of the CLIP loss (SigLIP-family models, which have a logit bias).
        neg_loss_name: ``"focal_loss"`` or ``"cross_entropy"`` (γ = 0) for the hard-negative losses.
        focal_gamma: Focal exponent γ (used by ``focal_loss``).
        neg_label_smoothing: SCR label smoothing ε over the valid negatives; None = one-hot target.
        apply_global_neg_loss: Add the global hard-negative loss (fsc-clip / fsc-siglip only).
        neg_loss_weight: Its weight λ_g.
        apply_local_neg_loss: Add the local hard-negative loss, LHN (fsc-clip / fsc-siglip only; needs dense
            tokens).
        local_neg_weight: Its weight λ_l.
        sim_normalizer: ``"minmax"`` or ``"softmax"`` normalisation of the token-patch similarity map.
        sim_sparsify: Zero min-max weights below 1/Np.
    """

    loss_name: str = "fsc-clip"
    neg_loss_name: Literal["cross_entropy", "focal_loss"] = "focal_loss"
    focal_gamma: float = 2.0
    neg_label_smoothing: float | None = 0.02
    apply_global_neg_loss: bool = True
    neg_loss_weight: float = 0.5
    apply_local_neg_loss: bool = True
    local_neg_weight: float = 0.2
    sim_normalizer: Literal["minmax", "softmax"] = "minmax"
    sim_sparsify: bool = False

    def __post_init__(self) -> None:
        if self.loss_name not in LOSSES:
            raise ConfigError(f"loss_name: {self.loss_name!r} is not one of {LOSSES.names()}")
        if self.neg_loss_name not in ("cross_entropy", "focal_loss"):
            raise ConfigError(f"neg_loss_name: {self.neg_loss_name!r} is not one of ['cross_entropy', 'focal_loss']")
        if self.sim_normalizer not in ("minmax", "softmax"):
            raise ConfigError(f"sim_normalizer: {self.sim_normalizer!r} is not one of ['minmax', 'softmax']")
        if self.focal_gamma < 0:
            raise ConfigError(f"focal_gamma: must be >= 0, got {self.focal_gamma}")
        if self.neg_label_smoothing is not None and not 0.0 <= self.neg_label_smoothing < 1.0:
            raise ConfigError(f"neg_label_smoothing: must be in [0, 1) or null, got {self.neg_label_smoothing}")
        for key in ("neg_loss_weight", "local_neg_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be >= 0, got {getattr(self, key)}")

    @property
    def global_weight(self) -> float:
        """Effective λ_g (0 unless a loss of :data:`HN_LOSS_NAMES` with the global loss on)."""
        on = self.loss_name in HN_LOSS_NAMES and self.apply_global_neg_loss
        return float(self.neg_loss_weight) if on else 0.0

    @property
    def local_weight(self) -> float:
        """Effective λ_l (0 unless a loss of :data:`HN_LOSS_NAMES` with the local loss on)."""
        on = self.loss_name in HN_LOSS_NAMES and self.apply_local_neg_loss
        return float(self.local_neg_weight) if on else 0.0

    @property
    def gamma(self) -> float:
        """Effective focal γ (0 for cross entropy)."""
        return float(self.focal_gamma) if self.neg_loss_name == "focal_loss" else 0.0
