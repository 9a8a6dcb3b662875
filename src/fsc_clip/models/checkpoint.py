"""Safe reading of model weights: ``torch.load(weights_only=True)`` or safetensors, nothing else.

Understands plain state dicts, ``{"state_dict": ...}`` wrappers, DDP ``module.`` / ``torch.compile``
``_orig_mod.`` prefixes, and our own run checkpoints (``{"format": "fsc-clip", "model": {...}, ...}``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError, UnsafeCheckpointError

CHECKPOINT_FORMAT = "fsc-clip"
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_PREFIXES = ("module.", "_orig_mod.")

_CONVERT_HINT = (
    "If you trust the file, convert it once in a separate Python session: read it with `torch.load` and "
    "weights_only=False, take its state dict (obj['state_dict'] or obj.state_dict()), save that with "
    "`safetensors.torch.save_file`, and pass the .safetensors file instead."
)


@dataclass
class LoadedCheckpoint:
    """Weights read from disk plus what we know about where they came from."""

    state_dict: dict[str, Any]
    path: Path
    meta: dict[str, Any] | None = None  # the "model" section of our own run checkpoints
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys (epoch, step, config, ...)

    @property
    def is_run_checkpoint(self) -> bool:
        return self.meta is not None


def resolve_checkpoint_path(path: str | Path) -> Path:
    """Map a run directory to its latest checkpoint; check that a file exists."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / "latest.pt", path / "latest.pt"):
            if candidate.is_file():
                return candidate
        raise ModelLoadError(
            f"{path} is a directory but holds no checkpoints/latest.pt; pass a checkpoint file or a training run dir."
        )
    if not path.is_file():
        raise ModelLoadError(f"Checkpoint file not found: {path}")
    return path


def _torch_load(path: Path) -> Any:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"Refusing to load {path}: it contains Python objects that need arbitrary unpickling, which can run "
            f"code from the file ({str(err).splitlines()[0]}).\n{_CONVERT_HINT}"
        ) from err
    except RuntimeError as err:
        if "TorchScript" in str(err) or "jit" in str(err).lower():
            raise UnsafeCheckpointError(
                f"{path} is a TorchScript archive (e.g. an original OpenAI CLIP .pt). Load OpenAI weights with "
                f"`--pretrained openai` instead, or convert the file.\n{_CONVERT_HINT}"
            ) from err
        raise ModelLoadError(f"Cannot read checkpoint {path}: {err}") from err


def _strip_prefixes(state_dict: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state_dict.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def read_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Read weights safely from a file or run directory.

    Raises:
        UnsafeCheckpointError: the file needs arbitrary unpickling (refused, with conversion advice).
        ModelLoadError: the file is missing or holds no tensors we recognise.
    """
    path = resolve_checkpoint_path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return LoadedCheckpoint(_strip_prefixes(load_file(str(path), device="cpu")), path)
    obj = _torch_load(path)
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path} does not hold a state dict (found {type(obj).__name__}).")
    if obj.get("format") == CHECKPOINT_FORMAT:
        extra = {k: v for k, v in obj.items() if k not in ("state_dict", "model")}
        return LoadedCheckpoint(_strip_prefixes(obj["state_dict"]), path, meta=dict(obj["model"]), extra=extra)
    if isinstance(obj.get("state_dict"), dict):
        extra = {k: v for k, v in obj.items() if k != "state_dict"}
        return LoadedCheckpoint(_strip_prefixes(obj["state_dict"]), path, extra=extra)
    return LoadedCheckpoint(_strip_prefixes(obj), path)


def load_weights_into(model: Any, state_dict: dict[str, Any], source: Path | str) -> None:
    """Load ``state_dict`` into an open_clip model (strict), adapting old layouts as open_clip does."""
    from open_clip.factory import convert_state_dict, resize_pos_embed, resize_text_pos_embed

    try:
        state_dict = convert_state_dict(model, dict(state_dict))
        if "logit_scale" in state_dict and model.logit_scale.ndim != state_dict["logit_scale"].ndim:
            state_dict["logit_scale"] = state_dict["logit_scale"].reshape(model.logit_scale.shape)
        resize_pos_embed(state_dict, model)
        resize_text_pos_embed(state_dict, model)
        model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, AssertionError, ValueError, KeyError) as err:
        raise ModelLoadError(
            f"Weights in {source} do not fit the chosen architecture: {str(err)[:600]}\n"
            "Check --model (e.g. ViT-B-32 vs ViT-B-16) matches the checkpoint."
        ) from err
