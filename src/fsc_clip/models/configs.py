"""Our tiny open_clip architectures (JSON files beside this module), registered with open_clip on demand.

One tiny, randomly initialised architecture per open_clip model family, so that tests and smoke runs exercise every
code path of the toolkit in milliseconds. Each mirrors the structure of the real family's open_clip config
(open_clip_torch 3.3.0 ``open_clip/model_configs``) at toy sizes:

- ``fsc-tiny-siglip`` mirrors ``ViT-B-16-SigLIP``: timm ViT with an attention-pool (MAP) head and no projection,
  a learnable logit bias, a bidirectional text tower pooled at its last position with a biased projection;
- ``fsc-tiny-pe`` mirrors ``PE-Core-B-16``: timm EVA trunk with a class token, a MAP head and a linear head;
- ``fsc-tiny-eva`` mirrors ``EVA02-B-16``: timm EVA02 trunk pooled by its class token, linear head;
- ``fsc-tiny-clipa`` mirrors ``ViT-L-14-CLIPA``: open_clip ViT, average pooling with the final LayerNorm after the
  pool, no pre-LayerNorm; bidirectional text tower pooled at its last position;
- ``fsc-tiny-rn`` mirrors ``RN50``: OpenAI ModifiedResNet;
- ``fsc-tiny-fastvit`` mirrors ``MobileCLIP-S1``: timm FastViT (MCi) trunk, average pooled; bidirectional text;
- ``fsc-tiny-coca`` mirrors ``coca_ViT-B-32``: attentional-pool ViT, text tower with an appended class token and a
  captioning decoder (only its contrastive towers are used here).

open_clip's ``TimmModel`` passes no size arguments to ``timm.create_model`` (only the model name, the pooling, the
classifier width and the drop rates), so a tiny timm trunk must be a *named* timm model. ``timm-trunks.json`` lists
ours: each is a registered timm entry point called with size overrides (timm 1.0.31 entry points merge keyword
arguments over their defaults). Their names keep the prefix of the family they shrink (``vit_``, ``eva``,
``fastvit_``), which :mod:`fsc_clip.models.families` reads.

The tiny configs use open_clip's CLIP BPE tokenizer even where the real family has its own (SigLIP's
sentencepiece, CLIPA's BERT vocabulary): tests run offline and cannot download one. :func:`tiny_tokenizer` builds
it; ``open_clip.get_tokenizer`` would pick a SigLIP sentencepiece tokenizer for any name containing "siglip".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).parent / "model_configs"
TIMM_TRUNKS_FILE = CONFIG_DIR / "timm-trunks.json"  # not an open_clip config: open_clip skips it (no embed_dim)
OUR_MODELS: dict[str, str] = {
    "fsc-tiny": "3.4M params, 32x32 images, context 16: unit tests",
    "fsc-demo": "small ViT for 64x64 images, context 24: the synthetic-world demo",
    "fsc-tiny-siglip": "SigLIP family (timm ViT + MAP head, logit bias, bidirectional text), 32x32, context 20",
    "fsc-tiny-pe": "PE-Core family (timm EVA + class token + MAP head + linear head), 32x32, context 16",
    "fsc-tiny-eva": "EVA02 family (timm EVA, class-token pooling, linear head), 32x32, context 16",
    "fsc-tiny-clipa": "CLIPA family (open_clip ViT, avg pool + LayerNorm after pool, bidirectional text), context 12",
    "fsc-tiny-rn": "OpenAI ResNet family (ModifiedResNet): global features only, 32x32, context 16",
    "fsc-tiny-fastvit": "MobileCLIP family (timm FastViT-MCi): global features only, 32x32, context 16",
    "fsc-tiny-coca": "CoCa family (attentional-pool ViT, class-token text, decoder): global features only, context 15",
}
__all__ = ["CONFIG_DIR", "OUR_MODELS", "TIMM_TRUNKS_FILE", "register_model_configs", "tiny_tokenizer"]
_registered = False


def register_model_configs() -> None:
    """Make our JSON configs known to ``open_clip.create_model`` and our tiny trunks to timm (idempotent)."""
    global _registered
    if _registered:
        return
    import open_clip

    _register_timm_trunks()
    open_clip.add_model_config(CONFIG_DIR)
    _registered = True


def _register_timm_trunks() -> None:
    from timm.models import is_model, register_model

    trunks: dict[str, dict[str, Any]] = json.loads(TIMM_TRUNKS_FILE.read_text(encoding="utf-8"))
    for name, spec in trunks.items():
        if not is_model(name):
            # timm's registry records an entry point under its function's name and module.
            register_model(_trunk_entry_point(name, spec["base"], spec["kwargs"]))


def _trunk_entry_point(name: str, base: str, overrides: dict[str, Any]) -> Callable[..., Any]:
    def entry_point(pretrained: bool = False, **kwargs: Any) -> Any:
        from timm.models import model_entrypoint

        if pretrained:
            raise ValueError(f"timm model {name} is a randomly initialised test trunk; it has no pretrained weights")
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}  # timm expects tuples
        return model_entrypoint(base)(pretrained=False, **{**args, **kwargs})

    entry_point.__name__ = entry_point.__qualname__ = name
    entry_point.__module__ = __name__
    globals()[name] = entry_point  # timm adds the name to this module's __all__: keep that list truthful
    return entry_point


def tiny_tokenizer(name: str) -> Any | None:
    """The tokenizer of one of our configs: open_clip's CLIP BPE at the config's context length (None otherwise)."""
    if name not in OUR_MODELS:
        return None
    from open_clip.tokenizer import SimpleTokenizer

    cfg = json.loads((CONFIG_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return SimpleTokenizer(context_length=int(cfg["text_cfg"]["context_length"]))
