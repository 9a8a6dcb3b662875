"""Model layer: load any open_clip model (tags, files, hub ids, our runs) and encode global/dense features."""

from fsc_clip.models.configs import register_model_configs
from fsc_clip.models.dense import (
    DenseFeaturesUnsupported,
    Features,
    TextLayout,
    dense_unsupported_reason,
    encode,
    logit_bias_of,
    logit_scale_of,
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
    "TextLayout",
    "dense_unsupported_reason",
    "encode",
    "list_model_lines",
    "load_model",
    "logit_bias_of",
    "logit_scale_of",
    "register_model_configs",
    "supports_dense",
    "text_token_mask",
    "trim_tokens",
]
