"""Safe reading of model weights: ``torch.load(weights_only=True)`` or safetensors, nothing else.

Understands plain state dicts, ``{"state_dict": ...}`` wrappers, DDP ``module.`` / ``torch.compile``
``_orig_mod.`` prefixes, and our own run checkpoints (``{"format": "fsc-clip", "model": {...}, ...}``).

Our own checkpoints (training runs, WiSE-FT outputs) are written by :func:`write_run_checkpoint`: atomically
(:mod:`fsc_clip.fileio`) and with a ``"sha256"`` entry, the digest of everything else in the file
(:func:`payload_sha256`, computed over the loaded objects, so the file stays a plain ``weights_only``-loadable
dict). :func:`read_checkpoint` recomputes it: a file damaged on disk (flipped bytes, truncation) is refused
with a message naming it instead of silently yielding wrong weights. Files without the entry (written before
checksums existed, or by other tools) load without the check.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fsc_clip.errors import ModelLoadError, UnsafeCheckpointError

CHECKPOINT_FORMAT = "fsc-clip"
CHECKSUM_KEY = "sha256"
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


def safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a :class:`ModelLoadError` naming ``path``."""
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
        raise ModelLoadError(f"Cannot read checkpoint {path}: it is damaged or not a PyTorch file ({err})") from err
    except Exception as err:  # a damaged file can fail anywhere in the unpickler (EOFError, ValueError, ...)
        raise ModelLoadError(
            f"Cannot read checkpoint {path}: it is damaged or not a PyTorch file ({type(err).__name__}: {err})"
        ) from err


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
    obj = safe_torch_load(path)
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path} does not hold a state dict (found {type(obj).__name__}).")
    if obj.get("format") == CHECKPOINT_FORMAT:
        verify_checksum(obj, path)
        extra = {k: v for k, v in obj.items() if k not in ("state_dict", "model", CHECKSUM_KEY)}
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


class CorruptCheckpointError(ModelLoadError):
    """A checkpoint's content does not match the sha256 recorded when it was written."""


def _feed(digest: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged byte encoding of ``obj`` to ``digest`` (dict keys in a fixed order)."""
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())  # raw bytes, no copy
    elif isinstance(obj, Mapping):
        digest.update(f"D{len(obj)};".encode())
        for key in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _feed(digest, key)
            _feed(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for item in obj:
            _feed(digest, item)
    elif isinstance(obj, (bytes, bytearray)):
        digest.update(f"B{len(obj)};".encode())
        digest.update(obj)
    elif isinstance(obj, str):
        data = obj.encode("utf-8")
        digest.update(f"S{len(data)};".encode())
        digest.update(data)
    elif isinstance(obj, float):
        digest.update(f"F{obj.hex()};".encode())  # exact, unlike repr round-trips across versions
    else:  # None, bool, int, torch.dtype, ...: their repr is exact and stable
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())


def payload_sha256(payload: Mapping[str, Any]) -> str:
    """Hex sha256 of a checkpoint's content (its ``"sha256"`` entry excluded), independent of the file layout."""
    digest = hashlib.sha256()
    _feed(digest, {k: v for k, v in payload.items() if k != CHECKSUM_KEY})
    return digest.hexdigest()


def verify_checksum(obj: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Check the ``"sha256"`` entry of a loaded checkpoint (files without one pass: nothing to check).

    Raises:
        CorruptCheckpointError: the content differs from what was written.
    """
    expected = obj.get(CHECKSUM_KEY)
    if expected is None:
        return
    if payload_sha256(obj) != expected:
        raise CorruptCheckpointError(
            f"{path} is damaged: its content does not match the sha256 recorded when it was written "
            "(bytes changed on disk or in a copy). Use another checkpoint of the run (e.g. an epoch_N.pt)."
        )


class _RecordingWriter:
    """A binary handle that remembers the ``OSError`` of a failed write.

    ``torch.save`` turns a failing ``write`` into ``RuntimeError: ... unexpected pos N vs M``; with the
    recorded error we can report the real cause (disk full, file too large) and the path instead.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.handle.flush()


def write_run_checkpoint(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` plus its ``"sha256"`` to ``path`` atomically (temporary file + rename).

    Raises:
        OutputError: the file cannot be written (disk full, read-only, ...); the previous file is intact.
    """
    import torch

    from fsc_clip.fileio import write_with

    record = {**payload, CHECKSUM_KEY: payload_sha256(payload)}

    def _save(handle: IO[bytes]) -> None:
        proxy = _RecordingWriter(handle)
        try:
            torch.save(record, proxy)  # type: ignore[arg-type]
        except RuntimeError as err:
            if proxy.error is not None:
                raise proxy.error from err  # fileio turns it into an OutputError naming the path
            raise

    write_with(path, _save)
    return Path(path)
