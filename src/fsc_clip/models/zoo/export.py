"""Export a loaded model so that other tools load it unchanged (``fsc-clip export``).

- ``open_clip``: ``open_clip_pytorch_model.bin`` + ``open_clip_config.json`` (the layout of open_clip's
  ``push_to_hf_hub.save_for_hf``: loads with ``open_clip.create_model_and_transforms("local-dir:DIR")`` or, once
  uploaded, ``"hf-hub:org/repo"``). QuickGELU and a shortened context are written into ``model_cfg``.
- ``safetensors``: the same with ``open_clip_model.safetensors``.
- ``transformers``: ``config.json`` + ``model.safetensors`` of a ``transformers.CLIPModel``
  (``CLIPModel.from_pretrained(DIR)``), via the key mapping of :mod:`fsc_clip.models.zoo.formats.transformers_clip`.

Each export is loaded back and its embeddings compared with the source model (:func:`verify_export`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.registry import Registry

Exporter = Callable[[Any, Path], list[Path]]
EXPORTERS: Registry[Exporter] = Registry("export format")
TOLERANCE = 1e-4  # max |difference| of L2-normalised embeddings accepted by verify_export


def architecture_of(lm: Any) -> str:
    """The open_clip architecture of a loaded model (a zoo entry's spec carries the zoo name)."""
    from fsc_clip.models.zoo import get_entry, is_zoo_name

    name = lm.spec.name
    if is_zoo_name(name):
        return get_entry(name).architecture
    if name.startswith("hf-hub:"):
        raise ModelLoadError(f"{name} is already published on the Hub; export a run or a zoo model instead.")
    return name


def open_clip_config(lm: Any) -> dict[str, Any]:
    """``open_clip_config.json`` content for ``lm`` (model_cfg with its activation and context length)."""
    import open_clip

    model_cfg = copy.deepcopy(open_clip.get_model_config(architecture_of(lm)))
    if not model_cfg:
        raise ModelLoadError(f"no open_clip config for {architecture_of(lm)}.")
    if lm.spec.quick_gelu:
        model_cfg["quick_gelu"] = True
    model_cfg["text_cfg"]["context_length"] = int(lm.model.context_length)
    visual = lm.model.visual
    preprocess = {"mean": list(visual.image_mean), "std": list(visual.image_std)}
    preprocess.update(
        {k: v for k, v in getattr(visual, "preprocess_cfg", {}).items() if k in ("interpolation", "resize_mode")}
    )
    return {"model_cfg": model_cfg, "preprocess_cfg": preprocess}


def _state_dict(lm: Any) -> dict[str, Any]:
    return {k: v.detach().cpu().float().contiguous() for k, v in lm.model.state_dict().items()}


def _export_open_clip(lm: Any, out: Path) -> list[Path]:
    import torch

    from fsc_clip.fileio import write_json, write_with

    sd = _state_dict(lm)
    write_with(out / "open_clip_pytorch_model.bin", lambda handle: torch.save(sd, handle))
    write_json(out / "open_clip_config.json", open_clip_config(lm))
    return [out / "open_clip_pytorch_model.bin", out / "open_clip_config.json"]


def _export_safetensors(lm: Any, out: Path) -> list[Path]:
    from safetensors.torch import save

    from fsc_clip.fileio import write_bytes, write_json

    write_bytes(out / "open_clip_model.safetensors", save(_state_dict(lm)))
    write_json(out / "open_clip_config.json", open_clip_config(lm))
    return [out / "open_clip_model.safetensors", out / "open_clip_config.json"]


def _export_transformers(lm: Any, out: Path) -> list[Path]:
    from safetensors.torch import save

    from fsc_clip.fileio import write_bytes, write_text
    from fsc_clip.models.zoo.formats.transformers_clip import hf_config_dict, open_clip_to_hf

    transformers = _transformers()
    config = transformers.CLIPConfig(**hf_config_dict(open_clip_config(lm)["model_cfg"], lm.spec.quick_gelu))
    write_bytes(out / "model.safetensors", save(open_clip_to_hf(_state_dict(lm)), metadata={"format": "pt"}))
    write_text(out / "config.json", config.to_json_string())
    return [out / "model.safetensors", out / "config.json"]


EXPORTERS.register("open_clip", _export_open_clip)
EXPORTERS.register("safetensors", _export_safetensors)
EXPORTERS.register("transformers", _export_transformers)


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as err:
        raise ModelLoadError(
            "--format transformers needs the `transformers` package: pip install transformers"
        ) from err
    return transformers


def export_model(lm: Any, out_dir: str | Path, fmt: str, verify: bool = True) -> list[Path]:
    """Write ``lm`` to ``out_dir`` in format ``fmt`` and (by default) check the export reproduces it.

    Raises:
        ModelLoadError: unknown format, a model without an equivalent, or a failed verification.
    """
    from fsc_clip.fileio import ensure_writable_dir
    from fsc_clip.registry import UnknownNameError

    try:
        exporter = EXPORTERS.get(fmt)
    except UnknownNameError as err:
        raise ModelLoadError(str(err)) from None
    out = ensure_writable_dir(out_dir, "--output folder")
    files = exporter(lm, out)
    if verify:
        verify_export(lm, out, fmt)
    return files


def _probe(lm: Any) -> tuple[Any, Any]:
    import torch

    size = lm.model.visual.image_size
    size = size if isinstance(size, (tuple, list)) else (size, size)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, *size, generator=gen)
    tokens = lm.tokenizer(["a photo of a dog", "two red cubes on a table"])
    return images, tokens


def _features(model: Any, images: Any, tokens: Any, hf: bool) -> tuple[Any, Any]:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        if hf:
            img, txt = model.get_image_features(pixel_values=images), model.get_text_features(input_ids=tokens)
            img, txt = (x if torch.is_tensor(x) else x.pooler_output for x in (img, txt))
        else:
            img, txt = model.encode_image(images), model.encode_text(tokens)
    return F.normalize(img.float(), dim=-1), F.normalize(txt.float(), dim=-1)


def verify_export(lm: Any, out: Path, fmt: str) -> float:
    """Load the export with the target library and compare embeddings; returns the max difference.

    Raises:
        ModelLoadError: a difference above :data:`TOLERANCE`.
    """
    import open_clip

    images, tokens = _probe(lm)
    device = next(lm.model.parameters()).device
    ours = _features(lm.model.float().cpu(), images, tokens, hf=False)
    lm.model.to(device)
    if fmt == "transformers":
        theirs_model = _transformers().CLIPModel.from_pretrained(str(out)).eval()
        theirs = _features(theirs_model, images, tokens, hf=True)
    else:
        model = open_clip.create_model(f"local-dir:{out}").eval()
        theirs = _features(model, images, tokens, hf=False)
    diff = max(float((a - b).abs().max()) for a, b in zip(ours, theirs))
    if diff > TOLERANCE:
        raise ModelLoadError(f"export to {out} ({fmt}) does not reproduce the model: max difference {diff:.2e}.")
    return diff


def read_config(out: Path) -> dict[str, Any]:
    """The ``open_clip_config.json`` of an export (for tests and tools)."""
    return json.loads((out / "open_clip_config.json").read_text(encoding="utf-8"))
