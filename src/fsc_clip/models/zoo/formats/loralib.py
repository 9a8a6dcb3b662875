"""loralib-style LoRA checkpoints (FSC-CLIP LoRA, DAC, TSVLC), merged into plain open_clip weights.

Both families save the full ``state_dict()`` of an open_clip model whose layers were replaced by loralib layers
(Microsoft loralib, ``lora_alpha = 1`` everywhere), next to the frozen base weights:

- ``<linear>.lora_A [r, in]``, ``<linear>.lora_B [out, r]``: ``mlp.c_fc``, ``mlp.c_proj``, ``attn.out_proj`` (and
  any other ``nn.Linear`` outside attention);
- ``visual.conv1.lora_A [r*k, in*k]``, ``visual.conv1.lora_B [out*k, r*k]``: the patch embedding; the update is
  ``(B @ A).view(out, in, k, k)``;
- ``attn.in_proj_weight_lora_A [r, d]``, ``attn.in_proj_weight_lora_B [3d, r]``: the fused q/k/v projection of
  their ``MultiheadAttention`` (forward: ``linear(linear(x, A), B) * scaling`` added to ``linear(x, W, b)``).

Every update is ``W + (B @ A) * lora_alpha / r``, exactly what loralib's ``eval()`` merge computes.
Sources: ytaek-oh/fsc-clip@604015d ``src/training/models/lora_utils/{lora_layers,patch}.py`` and ``factory.py``
(``--lora-rank 4``; the file is a torch checkpoint whose ``"state_dict"`` holds the weights);
SivanDoveh/DAC@ca23611 and SivanDoveh/TSVLC@90b18e7
``src/open_clip/loralib/layers.py`` + ``model.py`` (``--lora 4``; ``main.py`` loads ``checkpoint["state_dict"]``
without ``module.``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.zoo.formats import FORMATS, ZooFormat
from fsc_clip.models.zoo.formats.common import read_state_dict

_A, _B = "lora_A", "lora_B"


def _weight_key(a_key: str) -> str:
    """``x.lora_A`` -> ``x.weight``; ``x.in_proj_weight_lora_A`` -> ``x.in_proj_weight``."""
    stem = a_key[: -len(_A)]
    return stem[:-1] if stem.endswith("_") else stem + "weight"


def merge_loralib(state_dict: dict[str, Any], rank: int, alpha: float, source: str = "checkpoint") -> dict[str, Any]:
    """Fold every ``lora_A`` / ``lora_B`` pair into its weight and drop the adapter tensors.

    Args:
        state_dict: full state dict with base weights and adapters.
        rank: loralib ``r`` (the scaling is ``alpha / rank``, independent of the conv kernel size).
        alpha: loralib ``lora_alpha``.
        source: file name for error messages.

    Raises:
        ModelLoadError: an adapter without its pair or its weight, or shapes that do not fit.
    """
    scaling = alpha / rank
    out = {k: v for k, v in state_dict.items() if not k.endswith((_A, _B))}
    a_keys = [k for k in state_dict if k.endswith(_A)]
    if not a_keys:
        raise ModelLoadError(f"{source}: no loralib adapters (keys ending in lora_A) although the entry has LoRA.")
    for a_key in a_keys:
        b_key, w_key = a_key[: -len(_A)] + _B, _weight_key(a_key)
        if b_key not in state_dict or w_key not in state_dict:
            raise ModelLoadError(f"{source}: adapter {a_key} lacks {b_key if b_key not in state_dict else w_key}.")
        weight, lora_a, lora_b = state_dict[w_key], state_dict[a_key], state_dict[b_key]
        if lora_a.shape[0] % rank or lora_b.shape[1] != lora_a.shape[0]:
            raise ModelLoadError(
                f"{source}: {a_key} {tuple(lora_a.shape)} / {b_key} {tuple(lora_b.shape)} do not fit rank {rank}."
            )
        delta = lora_b.double() @ lora_a.double()  # [out(*k), in(*k)]
        if delta.numel() != weight.numel():
            raise ModelLoadError(f"{source}: B@A of {a_key} has {delta.numel()} values, {w_key} {weight.numel()}.")
        out[w_key] = (weight.double() + delta.view(weight.shape) * scaling).to(weight.dtype)
    return out


def _merged(entry: Any, path: Path, cache_dir: str | None = None) -> dict[str, Any]:
    if entry.lora is None:
        raise ModelLoadError(f"zoo entry {entry.name!r} has format {entry.format} but no `lora: {{rank, alpha}}`.")
    return merge_loralib(read_state_dict(path), entry.lora.rank, entry.lora.alpha, str(path))


FORMATS.register(
    "fsc_lora",
    ZooFormat(
        "FSC-CLIP LoRA: full state dict with loralib adapters (lora_utils), merged as W + B@A*alpha/r",
        "ytaek-oh/fsc-clip@604015db3f009a8f7485f1fb7e21d8343c67664a src/training/models/lora_utils",
        to_state_dict=_merged,
    ),
)
FORMATS.register(
    "dac_lora",
    ZooFormat(
        "DAC / TSVLC LoRA: open_clip fork with loralib layers (--lora 4), merged as W + B@A*alpha/r",
        "SivanDoveh/DAC@ca23611c78669010ae145698ae00f79c4fd690d8 src/open_clip/loralib; SivanDoveh/TSVLC@90b18e7",
        to_state_dict=_merged,
    ),
)
