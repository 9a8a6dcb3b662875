"""Build open_clip models from tags, files, hub ids and our run checkpoints (the layer below the model zoo).

:func:`fsc_clip.models.load_model` is the public entry point: it resolves model-zoo names
(:mod:`fsc_clip.models.zoo`) and delegates everything else to :func:`load_open_clip` here. The zoo's format loaders
build on this module too, which is why it knows nothing of the zoo (no import cycle).

- ``pretrained=None``: random initialisation (tiny test/demo models, training from scratch);
- an open_clip tag (``"openai"``, ``"datacomp_xl_s13b_b90k"``, ...): weights via the Hugging Face cache;
- a local ``.pt/.pth/.bin/.safetensors`` file (plain, ``{"state_dict": ...}`` or DDP-prefixed);
- one of our run checkpoints or run directories (the architecture, QuickGELU and LoRA come from it);
- ``name="hf-hub:org/repo"``: an open_clip model published on the Hugging Face Hub.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.checkpoint import WEIGHT_SUFFIXES, LoadedCheckpoint, load_weights_into, read_checkpoint
from fsc_clip.models.configs import register_model_configs

log = logging.getLogger(__name__)
HF_HUB_PREFIX = "hf-hub:"


@dataclass
class ModelSpec:
    """What was loaded, enough to load it again (stored in results and checkpoints)."""

    name: str
    pretrained: str | None = None
    quick_gelu: bool = False
    lora: dict[str, Any] | None = None
    family: str | None = None  # fsc_clip.models.families; filled from ``name`` when not given

    def __post_init__(self) -> None:
        if self.family is None:
            from fsc_clip.models.families import family_of

            try:
                self.family = family_of(self.name)
            except ModelLoadError:  # an architecture open_clip does not know cannot have been loaded; keep None
                self.family = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        """Short human label, e.g. ``ViT-B-32/openai``."""
        if not self.pretrained:
            return f"{self.name}/random-init"
        if not _looks_like_path(self.pretrained):
            return f"{self.name}/{self.pretrained}"
        path = Path(self.pretrained)
        # A run checkpoint (<run>/checkpoints/latest.pt) is best known by its run's name.
        tail = path.parent.parent.name if path.parent.name == "checkpoints" else path.name
        return f"{self.name}/{tail}"


@dataclass
class LoadedModel:
    """A ready-to-use model with its tokenizer and image transforms."""

    model: Any  # open_clip CLIP / CustomTextCLIP
    tokenizer: Callable[..., Any]
    preprocess_train: Callable[..., Any]
    preprocess_val: Callable[..., Any]
    spec: ModelSpec
    checkpoint: LoadedCheckpoint | None = None


def _looks_like_path(value: str) -> bool:
    return value.endswith(WEIGHT_SUFFIXES) or "/" in value or "\\" in value or Path(value).expanduser().exists()


def _needs_quick_gelu(name: str, tag: str) -> bool:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag) or {}
    return bool(cfg.get("quick_gelu", False)) and not _arch_has_quick_gelu(name)


def _arch_has_quick_gelu(name: str) -> bool:
    import open_clip

    return bool((open_clip.get_model_config(name) or {}).get("quick_gelu", False))


def _check_arch(name: str) -> None:
    import open_clip

    if name.startswith(HF_HUB_PREFIX) or name in open_clip.list_models():
        return
    import difflib

    close = difflib.get_close_matches(name, open_clip.list_models(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelLoadError(f"Unknown model architecture {name!r}.{hint} See `fsc-clip list models`.")


def _resolve_quick_gelu(name: str, pretrained: str | None, requested: bool | None) -> bool:
    """Decide QuickGELU. OpenAI weights need it: we choose it automatically and refuse a contradiction."""
    if pretrained and not _looks_like_path(pretrained) and _needs_quick_gelu(name, pretrained):
        if requested is False:
            raise ModelLoadError(
                f"{name}/{pretrained} weights were trained with QuickGELU; running them with GELU silently "
                "degrades accuracy. Drop --no-quick-gelu (or use the '-quickgelu' architecture)."
            )
        log.info("%s/%s: using QuickGELU, as these weights require.", name, pretrained)
        return True
    local_file = bool(pretrained and _looks_like_path(pretrained))
    if requested is None and local_file and not _arch_has_quick_gelu(name) and _openai_family(name):
        warnings.warn(
            f"Loading {pretrained} into {name} with GELU activations. If these weights descend from OpenAI "
            f"CLIP, pass --force-quick-gelu (force_quick_gelu=True) or use {name}-quickgelu; otherwise accuracy "
            "silently degrades. Published checkpoints load with the right activation by name: `fsc-clip list models "
            "--zoo`.",
            stacklevel=3,
        )
    return bool(requested) and not _arch_has_quick_gelu(name)


def _openai_family(name: str) -> bool:
    """Architectures OpenAI released weights for (the ones fine-tuned checkpoints usually descend from)."""
    return name in {"ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "RN50", "RN101", "RN50x4", "RN50x16"}


def _tag_weights(name: str, tag: str, cache_dir: str | None) -> tuple[str, dict[str, Any]]:
    """Local file for an open_clip pretrained tag, plus its preprocessing config."""
    import open_clip

    from fsc_clip.models.hub import resolve_hub_file

    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag not in tags:
        raise ModelLoadError(
            f"Unknown pretrained tag {tag!r} for {name}. Known tags: {', '.join(tags) or '(none)'}. "
            "Pass a local weights file path to --pretrained to load other weights."
        )
    cfg = open_clip.get_pretrained_cfg(name, tag)
    hub = cfg.get("hf_hub", "")
    if not hub:
        raise ModelLoadError(f"{name}/{tag} has no Hugging Face Hub location; download it manually and pass the path.")
    repo_id, filename = hub.rstrip("/"), "open_clip_pytorch_model.bin"
    if not hub.endswith("/"):
        repo_id, filename = hub.rsplit("/", 1)
    path = resolve_hub_file(repo_id, [filename], f"{name} / {tag}", cache_dir)
    preprocess = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
    return path, preprocess


class _DropRandomInitWarning(logging.Filter):
    """open_clip warns "No pretrained weights loaded" whenever we build first and load our weights after."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


_QUIET = _DropRandomInitWarning()


def _create(name: str, quick_gelu: bool, device: str, precision: str, preprocess: dict[str, Any], **kwargs: Any):
    import open_clip

    root = logging.getLogger()
    if _QUIET not in root.filters:
        root.addFilter(_QUIET)
    model, train_tf, val_tf = open_clip.create_model_and_transforms(
        name,
        pretrained=None,
        device=device,
        precision=precision,
        force_quick_gelu=quick_gelu,
        image_mean=preprocess.get("mean"),
        image_std=preprocess.get("std"),
        image_interpolation=preprocess.get("interpolation"),
        image_resize_mode=preprocess.get("resize_mode"),
        # open_clip would download a Hugging Face text tower's base weights (roberta-base, ...) whenever it loads
        # no CLIP weights itself, which is always the case here: ours are loaded afterwards, or the model is random.
        pretrained_text=False,
        **kwargs,
    )
    return model, train_tf, val_tf


def load_open_clip(
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
    """Build an open_clip model, its tokenizer and transforms (no zoo names: see :func:`fsc_clip.models.load_model`).

    Args:
        name: open_clip architecture (``ViT-B-32``, ``fsc-tiny``, ``hf-hub:org/repo``). May be omitted when
            ``pretrained`` is one of our run checkpoints, which records it.
        pretrained: ``None`` (random init), an open_clip tag, a weights file, or a run checkpoint/dir.
        device: torch device string.
        precision: open_clip precision (``fp32``, ``fp16``, ``bf16``, ``amp``...).
        force_quick_gelu: ``None`` = decide automatically (OpenAI tags get QuickGELU); ``True``/``False`` force.
        cache_dir: Hugging Face cache folder override.
        merge_lora: For LoRA run checkpoints, merge the adapters into plain weights (for evaluation).
        patch_dropout: Override the vision tower's patch dropout (training).

    Raises:
        ModelLoadError: unknown architecture/tag, missing file, offline without cached weights, mismatch.
    """
    register_model_configs()
    ckpt = None
    if pretrained and _looks_like_path(pretrained):
        ckpt = read_checkpoint(pretrained)
        if ckpt.is_run_checkpoint:
            return _from_run_checkpoint(name, ckpt, device, precision, merge_lora, patch_dropout)
    if name is None:
        raise ModelLoadError(
            "A model architecture is required (e.g. --model ViT-B-32) unless loading a run checkpoint."
        )
    _check_arch(name)
    extra = {"force_patch_dropout": patch_dropout} if patch_dropout is not None else {}
    if name.startswith(HF_HUB_PREFIX):
        return _from_hub(name, device, precision, cache_dir, extra)
    quick_gelu = _resolve_quick_gelu(name, pretrained, force_quick_gelu)
    preprocess: dict[str, Any] = {}
    weights_path: str | None = None
    if pretrained and ckpt is None:
        weights_path, preprocess = _tag_weights(name, pretrained, cache_dir)
    model, train_tf, val_tf = _create(name, quick_gelu, device, precision, preprocess, **extra)
    if ckpt is not None:
        load_weights_into(model, ckpt.state_dict, ckpt.path)
    elif weights_path is not None:
        load_weights_into(model, read_checkpoint(weights_path).state_dict, weights_path)
    model.eval()
    spec = ModelSpec(name=name, pretrained=pretrained, quick_gelu=quick_gelu or _arch_has_quick_gelu(name))
    return LoadedModel(model, _tokenizer(name, model), train_tf, val_tf, spec, ckpt)


def _tokenizer(name: str, model: Any, label: str | None = None):
    """The architecture's tokenizer at its config's context length (SigLIP: its own sentencepiece vocabulary, 64
    positions; CLIPA: BERT, 32), its special-token layout (and the model's ``label``, default ``name``) recorded on
    ``model`` for the dense text mask and its error messages."""

    from fsc_clip.models.configs import tiny_tokenizer
    from fsc_clip.models.dense import attach_text_layout

    tokenizer = tiny_tokenizer(name) or _open_clip_tokenizer(name, label)
    attach_text_layout(model, tokenizer, label or name)
    return tokenizer


def _open_clip_tokenizer(name: str, label: str | None):
    """``open_clip.get_tokenizer(name)``; a Hugging Face tokenizer (SigLIP, CLIPA, ...) that is neither cached nor
    downloadable is a :class:`ModelLoadError` naming the repository, not a traceback."""
    import open_clip

    try:
        return open_clip.get_tokenizer(name)
    except (OSError, ValueError) as err:  # transformers: OSError offline / not found; ValueError: bad repo files
        cfg = open_clip.get_model_config(name) if not name.startswith("local-dir:") else None
        repo = ((cfg or {}).get("text_cfg") or {}).get("hf_tokenizer_name") or "its Hugging Face repository"
        raise ModelLoadError(
            f"{label or name}: its tokenizer ({repo}) is not in the Hugging Face cache and could not be downloaded "
            f"({type(err).__name__}: {str(err).splitlines()[0]}). Run once with network access (or copy the "
            "cache, HF_HOME) and set HF_HUB_OFFLINE=1 on offline machines."
        ) from None


def _from_hub(name: str, device: str, precision: str, cache_dir: str | None, extra: dict[str, Any]) -> LoadedModel:
    import open_clip

    from fsc_clip.models.hub import resolve_hub_model_dir

    local = "local-dir:" + str(resolve_hub_model_dir(name[len(HF_HUB_PREFIX) :], cache_dir))
    model, train_tf, val_tf = open_clip.create_model_and_transforms(local, device=device, precision=precision, **extra)
    model.eval()
    spec = ModelSpec(name=name, pretrained=None, quick_gelu=False)
    return LoadedModel(model, _tokenizer(local, model, name), train_tf, val_tf, spec)


def _from_run_checkpoint(
    name: str | None, ckpt: LoadedCheckpoint, device: str, precision: str, merge: bool, patch_dropout: float | None
) -> LoadedModel:
    meta = ckpt.meta or {}
    arch = meta["name"]
    if name and name != arch:
        warnings.warn(f"{ckpt.path} was trained as {arch}; ignoring --model {name}.", stacklevel=3)
    quick_gelu = bool(meta.get("quick_gelu", False)) and not _arch_has_quick_gelu(arch)
    extra = {"force_patch_dropout": patch_dropout} if patch_dropout is not None else {}
    model, train_tf, val_tf = _create(arch, quick_gelu, "cpu", "fp32", meta.get("preprocess") or {}, **extra)
    lora = meta.get("lora")
    if lora:
        from fsc_clip.models.lora import apply_lora

        apply_lora(model, **lora)
    load_weights_into(model, ckpt.state_dict, ckpt.path)
    if lora and merge:
        from fsc_clip.models.lora import merge_lora

        merge_lora(model)
    model = _to_device_precision(model, device, precision)
    model.eval()
    spec = ModelSpec(name=arch, pretrained=str(ckpt.path), quick_gelu=bool(meta.get("quick_gelu")), lora=lora)
    return LoadedModel(model, _tokenizer(arch, model), train_tf, val_tf, spec, ckpt)


def _to_device_precision(model: Any, device: str, precision: str) -> Any:
    import torch

    model = model.to(device)
    if precision in ("fp16", "pure_fp16"):
        model = model.to(torch.float16)
    elif precision in ("bf16", "pure_bf16"):
        model = model.to(torch.bfloat16)
    return model
