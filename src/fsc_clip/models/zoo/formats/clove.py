"""CLoVe: the released file is the fine-tune *before* patching; the published model is a weight-space
interpolation with the OpenAI model, ``(1 - w) * openai + w * clove`` with ``w = 0.6``, at text context 64.

Source: Netflix/clove@77fea6445f4bbd0d41334cba85f538e52e7da4d2 README (``patch_model(model,
get_state_dict(pt_load(URL), model), weight_for_state_dict=0.6)``) and ``src/training/utils.py``
(``get_state_dict``: ``checkpoint["state_dict"]`` when it has an ``epoch``, ``module.`` stripped;
``compute_wise_state_dict``: same keys required, every entry interpolated). The OpenAI positional embedding
(77 rows) is pruned to the file's 64 rows, as ytaek-oh/fsc-clip ``model_utils.merge`` does for CLoVe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.zoo.formats import FORMATS, ZooFormat
from fsc_clip.models.zoo.formats.common import base_state_dict, read_state_dict


def wise_patch(base: dict[str, Any], finetuned: dict[str, Any], weight: float, source: str) -> dict[str, Any]:
    """``(1 - weight) * base + weight * finetuned`` per tensor (CLoVe's ``compute_wise_state_dict``).

    The base's text positional embedding is cut to the fine-tune's length first.

    Raises:
        ModelLoadError: the two state dicts do not have the same keys.
    """
    base = dict(base)
    pos = "positional_embedding"
    if pos in base and pos in finetuned and finetuned[pos].shape[0] < base[pos].shape[0]:
        base[pos] = base[pos][: finetuned[pos].shape[0]]
    only_base, only_ft = sorted(set(base) - set(finetuned)), sorted(set(finetuned) - set(base))
    if only_base or only_ft:
        raise ModelLoadError(
            f"{source}: keys differ from the base model (missing: {only_base[:5]}, unexpected: {only_ft[:5]})."
        )
    return {k: ((1 - weight) * base[k].float() + weight * finetuned[k].float()) for k in base}


def _patched(entry: Any, path: Path, cache_dir: str | None = None) -> dict[str, Any]:
    if entry.patching is None or entry.patching.method != "wise_ft":
        raise ModelLoadError(f"zoo entry {entry.name!r}: clove_patch needs `patching: {{method: wise_ft, ...}}`.")
    finetuned = read_state_dict(path)
    return wise_patch(base_state_dict(entry, entry.patching.base), finetuned, entry.patching.weight, str(path))


FORMATS.register(
    "clove_patch",
    ZooFormat(
        "CLoVe: WiSE-FT patch with the base model (weight 0.6) at context length 64",
        "Netflix/clove@77fea6445f4bbd0d41334cba85f538e52e7da4d2 README + src/training/utils.py",
        to_state_dict=_patched,
    ),
)
