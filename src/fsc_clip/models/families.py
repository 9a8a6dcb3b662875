"""Model families: which kind of open_clip model an architecture name builds, read from its config.

A family decides what the toolkit can do with a model: the sigmoid (SigLIP) losses need the learnable
``logit_bias`` the SigLIP family carries; the local hard-negative loss needs per-patch tokens, which a convolutional
tower (ResNet, ConvNeXt, FastViT/MobileCLIP) does not have. Run checkpoints and the model zoo record the family
next to the architecture name so that a result can be read without rebuilding the model; the name alone rebuilds it
(open_clip's config decides the family, so the two cannot disagree).

The families are checked in order (first match wins) against open_clip's model config (open_clip_torch 3.3.0
``open_clip/model_configs/*.json``): ``vision_cfg.timm_model_name`` / ``timm_pool`` for timm towers,
``vision_cfg.layers`` as a list for ModifiedResNet, ``init_logit_bias`` for the sigmoid-trained models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fsc_clip.errors import ModelLoadError

Config = dict[str, Any]


@dataclass(frozen=True)
class Family:
    """One family of open_clip models.

    Attributes:
        name: Recorded in checkpoints, results and the zoo.
        examples: open_clip architectures of this family (documentation).
        matches: Predicate on the open_clip model config.
    """

    name: str
    examples: str
    matches: Callable[[Config], bool]


def _vision(cfg: Config) -> Config:
    return cfg.get("vision_cfg") or {}


def _timm_pool(cfg: Config) -> str | None:
    v = _vision(cfg)
    return str(v.get("timm_pool") or "") if v.get("timm_model_name") else None


def _is_timm_vit(cfg: Config) -> bool:
    # ``vit_*`` (incl. PE-Core's ``vit_pe_core_*``), ``eva*`` and ``vitamin_*`` (a convolutional stem, then ViT
    # blocks: patch tokens at the end) end in patch tokens; ``fastvit_*``, ``convnext_*``, ``swin_*`` do not.
    return str(_vision(cfg).get("timm_model_name") or "").startswith(("vit_", "eva", "vitamin_"))


FAMILIES: tuple[Family, ...] = (
    Family(
        "siglip",
        "ViT-B-16-SigLIP, ViT-B-16-SigLIP2, ViT-SO400M-14-SigLIP2 (timm ViT, attention-pool head, logit bias)",
        lambda c: "init_logit_bias" in c and _timm_pool(c) is not None,
    ),
    Family(
        "timm-map",
        "PE-Core-B-16, PE-Core-L-14-336 (timm ViT with an attention-pool head, softmax-trained)",
        lambda c: _timm_pool(c) == "map",
    ),
    Family(
        "timm-vit",
        "EVA02-B-16, EVA01-g-14, MobileCLIP2-B/L-14, ViTamin-B (timm ViT pooled by class token or mean, linear head)",
        lambda c: _timm_pool(c) in ("token", "avg", "") and _is_timm_vit(c),
    ),
    Family(
        "timm-conv",
        "MobileCLIP-S1/S2 (FastViT), convnext_base_w, swin_base_patch4_window7_224 (convolutional timm towers)",
        lambda c: _timm_pool(c) is not None,
    ),
    Family(
        "coca",
        "coca_ViT-B-32, coca_ViT-L-14 (CoCa: a CLIP ViT plus a captioning decoder)",
        lambda c: "multimodal_cfg" in c,
    ),
    Family(
        "hf-text",
        "roberta-ViT-B-32, xlm-roberta-base-ViT-B-32, nllb-clip-base (CLIP ViT with a Hugging Face text tower)",
        lambda c: bool((c.get("text_cfg") or {}).get("hf_model_name")),
    ),
    Family(
        "clip-resnet",
        "RN50, RN101, RN50x4 (OpenAI ModifiedResNet)",
        lambda c: isinstance(_vision(c).get("layers"), list | tuple),
    ),
    Family(
        "clip-vit",
        "ViT-B-32 (OpenAI), ViT-B-16-quickgelu (MetaCLIP), ViT-H-14-378-quickgelu (DFN), ViT-B-16-CLIPA",
        lambda c: True,
    ),
)


def family_of_config(cfg: Config) -> str:
    """Family name of an open_clip model config (the parsed ``model_configs/<name>.json``)."""
    return next(f.name for f in FAMILIES if f.matches(cfg))


def family_of(architecture: str) -> str:
    """Family name of an open_clip architecture (``ViT-B-16-SigLIP2`` -> ``siglip``).

    Raises:
        ModelLoadError: open_clip (and our packaged configs) do not know the architecture.
    """
    import open_clip

    from fsc_clip.models.configs import register_model_configs

    register_model_configs()
    if architecture.startswith("hf-hub:"):
        return "hub"  # the config lives in the Hub repository; read after download
    cfg = open_clip.get_model_config(architecture)
    if cfg is None:
        raise ModelLoadError(f"unknown open_clip architecture {architecture!r}; see `fsc-clip list models`")
    return family_of_config(cfg)
