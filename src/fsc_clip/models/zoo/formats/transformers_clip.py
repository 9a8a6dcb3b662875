"""``transformers`` ``CLIPModel`` <-> open_clip ``CLIP`` (ViT image tower, standard text tower).

Key mapping (transformers ``models/clip/modeling_clip.py`` names; open_clip ``model.py`` / ``transformer.py``):

==============================================================  ==============================================
transformers                                                    open_clip
==============================================================  ==============================================
``text_model.embeddings.token_embedding.weight``                ``token_embedding.weight``
``text_model.embeddings.position_embedding.weight``             ``positional_embedding``
``text_model.encoder.layers.{i}.self_attn.{q,k,v}_proj.*``      ``transformer.resblocks.{i}.attn.in_proj_*``
                                                                (q, k, v stacked along rows)
``...layers.{i}.self_attn.out_proj.*``                          ``...resblocks.{i}.attn.out_proj.*``
``...layers.{i}.layer_norm1/2.*``                               ``...resblocks.{i}.ln_1/2.*``
``...layers.{i}.mlp.fc1/fc2.*``                                 ``...resblocks.{i}.mlp.c_fc/c_proj.*``
``text_model.final_layer_norm.*``                               ``ln_final.*``
``text_projection.weight [e, w]``                               ``text_projection [w, e]`` (transposed)
``vision_model.embeddings.class_embedding``                     ``visual.class_embedding``
``vision_model.embeddings.patch_embedding.weight``              ``visual.conv1.weight``
``vision_model.embeddings.position_embedding.weight``           ``visual.positional_embedding``
``vision_model.pre_layrnorm.*`` (sic) / ``post_layernorm.*``    ``visual.ln_pre.*`` / ``visual.ln_post.*``
``vision_model.encoder.layers.{i}...``                          ``visual.transformer.resblocks.{i}...``
``visual_projection.weight [e, w]``                             ``visual.proj [w, e]`` (transposed)
``logit_scale``                                                 ``logit_scale``
==============================================================  ==============================================

``*.position_ids`` buffers are dropped. READ-CLIP (JiH00nKw0n/READ-CLIP@b2f096c ``example.py``) publishes a
``CLIPModel`` fine-tuned from ``openai/clip-vit-base-patch32`` (``hidden_act: quick_gelu``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.zoo.formats import FORMATS, ZooFormat
from fsc_clip.models.zoo.formats.common import read_state_dict

# (transformers name, open_clip name) of the top-level tensors; per-layer names are in _LAYER.
_TOP = (
    ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
    ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
    ("text_model.final_layer_norm.weight", "ln_final.weight"),
    ("text_model.final_layer_norm.bias", "ln_final.bias"),
    ("vision_model.embeddings.class_embedding", "visual.class_embedding"),
    ("vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight"),
    ("vision_model.embeddings.position_embedding.weight", "visual.positional_embedding"),
    ("vision_model.pre_layrnorm.weight", "visual.ln_pre.weight"),
    ("vision_model.pre_layrnorm.bias", "visual.ln_pre.bias"),
    ("vision_model.post_layernorm.weight", "visual.ln_post.weight"),
    ("vision_model.post_layernorm.bias", "visual.ln_post.bias"),
    ("logit_scale", "logit_scale"),
)
_TRANSPOSED = (("text_projection.weight", "text_projection"), ("visual_projection.weight", "visual.proj"))
_LAYER = (
    ("self_attn.out_proj", "attn.out_proj"),
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    ("mlp.fc1", "mlp.c_fc"),
    ("mlp.fc2", "mlp.c_proj"),
)
_TOWERS = (
    ("text_model.encoder.layers.", "transformer.resblocks."),
    ("vision_model.encoder.layers.", "visual.transformer.resblocks."),
)
_QKV = re.compile(r"^(?P<tower>.+\.layers\.\d+\.)self_attn\.(?P<p>[qkv])_proj\.(?P<kind>weight|bias)$")


def _map_layer_key(key: str, to_open_clip: bool) -> str | None:
    for hf_tower, oc_tower in _TOWERS:
        src_tower, dst_tower = (hf_tower, oc_tower) if to_open_clip else (oc_tower, hf_tower)
        if not key.startswith(src_tower):
            continue
        index, _, rest = key[len(src_tower) :].partition(".")
        for hf_name, oc_name in _LAYER:
            src, dst = (hf_name, oc_name) if to_open_clip else (oc_name, hf_name)
            if rest.startswith(src + "."):
                return f"{dst_tower}{index}.{dst}{rest[len(src) :]}"
    return None


def hf_to_open_clip(state_dict: dict[str, Any], source: str = "checkpoint") -> dict[str, Any]:
    """A ``CLIPModel`` state dict as an open_clip ``CLIP`` state dict.

    Raises:
        ModelLoadError: keys that are not part of the mapping (another model class), or a missing q/k/v part.
    """
    top, transposed = dict(_TOP), dict(_TRANSPOSED)
    out: dict[str, Any] = {}
    qkv: dict[tuple[str, str], dict[str, Any]] = {}
    unknown = []
    for key, value in state_dict.items():
        if key.endswith("position_ids"):
            continue
        if key in top:
            out[top[key]] = value
        elif key in transposed:
            out[transposed[key]] = value.t().contiguous()
        elif m := _QKV.match(key):
            qkv.setdefault((m["tower"], m["kind"]), {})[m["p"]] = value
        elif (mapped := _map_layer_key(key, to_open_clip=True)) is not None:
            out[mapped] = value
        else:
            unknown.append(key)
    if unknown:
        raise ModelLoadError(f"{source}: not a transformers CLIPModel state dict (unknown keys: {unknown[:5]}).")
    for (tower, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ModelLoadError(f"{source}: {tower}self_attn has only {sorted(parts)} of q/k/v {kind}.")
        layer_key = _map_layer_key(f"{tower}layer_norm1.weight", to_open_clip=True) or ""
        out[layer_key.replace("ln_1.weight", f"attn.in_proj_{kind}")] = _cat(parts)
    return out


def _cat(parts: dict[str, Any]) -> Any:
    import torch

    return torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)  # [3w, ...]: open_clip's fused in_proj


def open_clip_to_hf(state_dict: dict[str, Any]) -> dict[str, Any]:
    """An open_clip ``CLIP`` state dict (ViT + standard text tower) as a ``CLIPModel`` state dict.

    Raises:
        ModelLoadError: a key outside the mapping (a CustomTextCLIP, a ResNet tower, attention pooling, ...).
    """
    top = {oc: hf for hf, oc in _TOP}
    transposed = {oc: hf for hf, oc in _TRANSPOSED}
    out: dict[str, Any] = {}
    unknown = []
    for key, value in state_dict.items():
        if key in top:
            out[top[key]] = value
        elif key in transposed:
            out[transposed[key]] = value.t().contiguous()
        elif ".attn.in_proj_" in key:
            stem, kind = key.rsplit(".attn.in_proj_", 1)
            hf_stem = (_map_layer_key(f"{stem}.ln_1.weight", to_open_clip=False) or "").rsplit(".layer_norm1", 1)[0]
            for name, chunk in zip("qkv", value.chunk(3, dim=0)):
                out[f"{hf_stem}.self_attn.{name}_proj.{kind}"] = chunk.contiguous()
        elif (mapped := _map_layer_key(key, to_open_clip=False)) is not None:
            out[mapped] = value
        else:
            unknown.append(key)
    if unknown:
        raise ModelLoadError(f"this open_clip model has no transformers CLIPModel equivalent (keys: {unknown[:5]}).")
    return out


def hf_config_dict(model_cfg: dict[str, Any], quick_gelu: bool) -> dict[str, Any]:
    """A ``transformers.CLIPConfig`` dict equivalent to an open_clip model config (ViT, standard text tower)."""
    vis, txt = model_cfg["vision_cfg"], model_cfg["text_cfg"]
    if isinstance(vis.get("layers"), (list, tuple)) or vis.get("timm_model_name") or txt.get("hf_model_name"):
        raise ModelLoadError("only ViT image towers with the standard text tower convert to transformers CLIPModel.")
    act = "quick_gelu" if quick_gelu or model_cfg.get("quick_gelu") else "gelu"
    t_width, v_width = int(txt.get("width", 512)), int(vis.get("width", 768))
    return {
        "projection_dim": int(model_cfg["embed_dim"]),
        "text_config": {
            "vocab_size": int(txt.get("vocab_size", 49408)),
            "hidden_size": t_width,
            "intermediate_size": int(t_width * txt.get("mlp_ratio", 4.0)),
            "num_hidden_layers": int(txt.get("layers", 12)),
            "num_attention_heads": int(txt.get("heads", 8)),
            "max_position_embeddings": int(txt.get("context_length", 77)),
            "hidden_act": act,
            "layer_norm_eps": 1e-5,
            "projection_dim": int(model_cfg["embed_dim"]),
            "bos_token_id": 49406,
            "eos_token_id": 49407,  # pool at the first end-of-text token, as open_clip's argmax does
            "pad_token_id": 1,
        },
        "vision_config": {
            "hidden_size": v_width,
            "intermediate_size": int(v_width * vis.get("mlp_ratio", 4.0)),
            "num_hidden_layers": int(vis.get("layers", 12)),
            "num_attention_heads": v_width // int(vis.get("head_width", 64)),
            "image_size": int(vis.get("image_size", 224)),
            "patch_size": int(vis.get("patch_size", 16)),
            "hidden_act": act,
            "layer_norm_eps": 1e-5,
            "projection_dim": int(model_cfg["embed_dim"]),
        },
    }


def _check_config(entry: Any, path: Path) -> None:
    """A ``config.json`` beside the weights must agree with the entry's activation (the QuickGELU trap)."""
    config = path.parent / "config.json"
    if not config.is_file():
        return
    data = json.loads(config.read_text(encoding="utf-8"))
    acts = {str(act) for k in ("text_config", "vision_config") if (act := (data.get(k) or {}).get("hidden_act"))}
    expected = "quick_gelu" if entry.quick_gelu else "gelu"
    if acts and acts != {expected}:
        raise ModelLoadError(
            f"{config}: hidden_act {sorted(acts)} contradicts zoo entry {entry.name!r} (quick_gelu={entry.quick_gelu})."
        )


def _from_hf(entry: Any, path: Path, cache_dir: str | None = None) -> dict[str, Any]:
    _check_config(entry, path)
    return hf_to_open_clip(read_state_dict(path), str(path))


FORMATS.register(
    "transformers_clip",
    ZooFormat(
        "transformers CLIPModel (model.safetensors / pytorch_model.bin), converted to open_clip keys",
        "huggingface/transformers models/clip/modeling_clip.py; JiH00nKw0n/READ-CLIP@b2f096c example.py",
        to_state_dict=_from_hf,
    ),
)
