"""Our tiny open_clip architectures (JSON files beside this module), registered with open_clip on demand."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "model_configs"
OUR_MODELS: dict[str, str] = {
    "fsc-tiny": "3.4M params, 32x32 images, context 16: unit tests",
    "fsc-demo": "small ViT for 64x64 images, context 24: the synthetic-world demo",
}
_registered = False


def register_model_configs() -> None:
    """Make our JSON configs known to ``open_clip.create_model`` (idempotent)."""
    global _registered
    if _registered:
        return
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)
    _registered = True
