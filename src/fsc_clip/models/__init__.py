"""Model layer: load any open_clip model (tags, files, hub ids, our runs) and encode global/dense features."""

from fsc_clip.models.configs import register_model_configs
from fsc_clip.models.dense import (
    DenseFeaturesUnsupported,
    Features,
    encode,
    supports_dense,
    text_token_mask,
    trim_tokens,
)
from fsc_clip.models.factory import LoadedModel, ModelSpec, list_model_lines, load_model

__all__ = [
    "DenseFeaturesUnsupported",
    "Features",
    "LoadedModel",
    "ModelSpec",
    "encode",
    "list_model_lines",
    "load_model",
    "register_model_configs",
    "supports_dense",
    "text_token_mask",
    "trim_tokens",
]
