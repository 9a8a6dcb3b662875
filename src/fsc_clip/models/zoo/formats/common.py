"""Shared steps of the zoo loaders: read a file safely, build the open_clip model an entry needs, load weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError


def read_state_dict(path: Path, wrappers: tuple[str, ...] = ("state_dict",)) -> dict[str, Any]:
    """Tensors of a weights file (safe loading only), unwrapped from ``wrappers`` and ``module.`` prefixes.

    ``read_checkpoint`` already unwraps ``{"state_dict": ...}`` and strips ``module.`` / ``_orig_mod.``;
    ``wrappers`` adds other keys (``model_state_dict`` of scripts built on the OpenAI ``clip`` package).
    """
    from fsc_clip.models.checkpoint import _strip_prefixes, read_checkpoint

    ckpt = read_checkpoint(path)
    state_dict: dict[str, Any] = ckpt.state_dict
    for key in wrappers:
        inner = state_dict.get(key) if isinstance(state_dict, dict) else None
        if isinstance(inner, dict):
            state_dict = _strip_prefixes(inner)
    tensors = {k: v for k, v in state_dict.items() if hasattr(v, "shape")}
    if not tensors:
        raise ModelLoadError(f"{path} holds no tensors (top-level keys: {', '.join(list(state_dict)[:8])}).")
    return tensors


def set_context_length(model: Any, context_length: int) -> None:
    """Shorten the text tower to ``context_length`` tokens (CLoVe runs with 64): keep the first positional
    embeddings and rebuild the causal mask, as ytaek-oh/fsc-clip ``model_utils.adjust_context_length`` does."""
    import torch

    current = int(model.positional_embedding.shape[0])
    if context_length == current:
        return
    if context_length > current:
        raise ModelLoadError(f"context length {context_length} exceeds the architecture's {current}.")
    model.positional_embedding = torch.nn.Parameter(model.positional_embedding.data[:context_length].clone())
    model.context_length = context_length
    mask = torch.full((context_length, context_length), float("-inf")).triu_(1)
    model.register_buffer("attn_mask", mask, persistent=False)


def create_for(entry: Any) -> tuple[Any, Any, Any]:
    """An open_clip model of ``entry.architecture`` with the entry's activation and context length (fp32, cpu)."""
    import open_clip

    from fsc_clip.models.build import _arch_has_quick_gelu, _create
    from fsc_clip.models.configs import register_model_configs

    register_model_configs()
    if entry.architecture not in open_clip.list_models():
        raise ModelLoadError(f"zoo entry {entry.name!r}: unknown open_clip architecture {entry.architecture!r}.")
    cfg = open_clip.get_pretrained_cfg(entry.architecture, entry.base) or {}
    preprocess = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
    quick = entry.quick_gelu and not _arch_has_quick_gelu(entry.architecture)
    model, train_tf, val_tf = _create(entry.architecture, quick, "cpu", "fp32", preprocess)
    set_context_length(model, entry.context_length)
    return model, train_tf, val_tf


def build_model(entry: Any, state_dict: dict[str, Any], path: Path, *, device: str = "cpu", precision: str = "fp32"):
    """A :class:`fsc_clip.models.LoadedModel` of ``entry`` with ``state_dict`` loaded strictly (fp32 first)."""
    import open_clip

    from fsc_clip.models.build import LoadedModel, ModelSpec, _to_device_precision
    from fsc_clip.models.checkpoint import load_weights_into
    from fsc_clip.models.dense import attach_text_layout

    model, train_tf, val_tf = create_for(entry)
    floats = {k: (v.float() if v.is_floating_point() else v) for k, v in state_dict.items()}  # fp16 files
    load_weights_into(model, floats, path)
    model = _to_device_precision(model, device, precision).eval()
    tokenizer = open_clip.get_tokenizer(entry.architecture, context_length=entry.context_length)
    attach_text_layout(model, tokenizer, entry.name)  # padding / start-token ids for dense text masks
    spec = ModelSpec(name=entry.name, pretrained=str(path), quick_gelu=entry.quick_gelu, family=entry.family)
    return LoadedModel(model, tokenizer, train_tf, val_tf, spec)


def base_state_dict(entry: Any, base: str) -> dict[str, Any]:
    """Weights of the model ``entry`` was fine-tuned from: an open_clip tag of its architecture, or a file."""
    from fsc_clip.models.build import _looks_like_path, load_open_clip

    if _looks_like_path(base):
        return read_state_dict(Path(base).expanduser())
    lm = load_open_clip(entry.architecture, base, force_quick_gelu=entry.quick_gelu or None)
    return {k: v.detach().clone() for k, v in lm.model.state_dict().items()}
