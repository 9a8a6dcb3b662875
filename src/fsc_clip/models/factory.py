"""One entry point for every way a user names a model: ``load_model(name, pretrained)``.

- ``pretrained=None``: random initialisation (tiny test/demo models, training from scratch);
- an open_clip tag (``"openai"``, ``"datacomp_xl_s13b_b90k"``, ...): weights via the Hugging Face cache;
- a local ``.pt/.pth/.bin/.safetensors`` file (plain, ``{"state_dict": ...}`` or DDP-prefixed);
- one of our run checkpoints or run directories (the architecture, QuickGELU and LoRA come from it);
- ``name="hf-hub:org/repo"``: an open_clip model published on the Hugging Face Hub;
- ``name`` = a model-zoo entry (``negclip``, ``clove``, ...; see :mod:`fsc_clip.models.zoo`).

Layering: this module sits above both :mod:`fsc_clip.models.build` (open_clip models from tags, files, hub ids and
run checkpoints) and :mod:`fsc_clip.models.zoo` (published checkpoints, whose format loaders use ``build``).
"""

from __future__ import annotations

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.build import (
    HF_HUB_PREFIX,
    LoadedModel,
    ModelSpec,
    _looks_like_path,
    load_open_clip,
)
from fsc_clip.models.configs import OUR_MODELS, register_model_configs

__all__ = ["HF_HUB_PREFIX", "LoadedModel", "ModelSpec", "list_model_lines", "load_model"]


def load_model(
    name: str | None = None,
    pretrained: str | None = None,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    force_quick_gelu: bool | None = None,
    cache_dir: str | None = None,
    merge_lora: bool = True,
    patch_dropout: float | None = None,
) -> LoadedModel:
    """Build a model, its tokenizer and transforms from any supported source.

    Args:
        name: open_clip architecture (``ViT-B-32``, ``fsc-tiny``, ``hf-hub:org/repo``) or a model-zoo name
            (``negclip``). May be omitted when ``pretrained`` is one of our run checkpoints, which records it.
        pretrained: ``None`` (random init), an open_clip tag, a weights file, or a run checkpoint/dir. For a zoo
            name: an explicit weights file instead of the cached download.
        device: torch device string.
        precision: open_clip precision (``fp32``, ``fp16``, ``bf16``, ``amp``...).
        force_quick_gelu: ``None`` = decide automatically (OpenAI tags get QuickGELU); ``True``/``False`` force.
        cache_dir: Hugging Face cache folder override.
        merge_lora: For LoRA run checkpoints, merge the adapters into plain weights (for evaluation).
        patch_dropout: Override the vision tower's patch dropout (training).

    Raises:
        ModelLoadError: unknown architecture/tag/zoo name, missing file, offline without cached weights, mismatch.
    """
    register_model_configs()
    if name and not name.startswith(HF_HUB_PREFIX):
        from fsc_clip.models.zoo import is_zoo_name, load_zoo_model

        if is_zoo_name(name):  # a published checkpoint by name
            return load_zoo_model(
                name,
                pretrained,
                device=device,
                precision=precision,
                cache_dir=cache_dir,
                force_quick_gelu=force_quick_gelu,
            )
        if not (pretrained and _looks_like_path(pretrained)):  # a run checkpoint names its own architecture
            _check_name(name)
    return load_open_clip(
        name,
        pretrained,
        device=device,
        precision=precision,
        force_quick_gelu=force_quick_gelu,
        cache_dir=cache_dir,
        merge_lora=merge_lora,
        patch_dropout=patch_dropout,
    )


def _check_name(name: str) -> None:
    """An unknown name gets suggestions from both open_clip's architectures and the zoo."""
    import difflib

    import open_clip

    from fsc_clip.models.zoo import ZOO

    if name in open_clip.list_models():
        return
    close = difflib.get_close_matches(name, open_clip.list_models() + ZOO.names(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelLoadError(f"Unknown model architecture or zoo model {name!r}.{hint} See `fsc-clip list models [--zoo]`.")


def list_model_lines() -> list[str]:
    """Lines for ``fsc-clip list models``: our tiny configs, then open_clip's architectures with their tags."""
    import open_clip

    register_model_configs()
    tags: dict[str, list[str]] = {}
    for arch, tag in open_clip.list_pretrained():
        tags.setdefault(arch, []).append(tag)
    from fsc_clip.models.zoo import ZOO

    lines = [f"# model zoo: {len(ZOO)} published fine-tunes by name (negclip, clove, ...): fsc-clip list models --zoo"]
    lines.append("# fsc-clip models (random init; for tests and the demo)")
    lines += [f"{name:<40} {desc}" for name, desc in OUR_MODELS.items()]
    lines.append("# open_clip architectures: pretrained tags (load with --model ARCH --pretrained TAG)")
    for arch in open_clip.list_models():
        if arch in OUR_MODELS:
            continue
        lines.append(f"{arch:<40} {', '.join(tags.get(arch, [])) or '(no pretrained tags)'}")
    return lines
