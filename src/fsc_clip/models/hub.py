"""Offline-aware resolution of pretrained weights through the Hugging Face cache.

open_clip downloads tagged weights with ``hf_hub_download``. Without network that retries for tens of
seconds per file before failing with a generic error. We look in the local cache first and, when the
hub is unreachable or ``HF_HUB_OFFLINE`` is set, fail at once with a message naming the tag, the
repository and the cache folder we searched.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from fsc_clip.errors import ModelLoadError

_HUB_HOST = ("huggingface.co", 443)


def hub_offline() -> bool:
    """True when the user asked for offline mode (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on") for k in ("HF_HUB_OFFLINE",))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Cheap connectivity probe so that a machine without network fails in seconds, not minutes."""
    endpoint = os.environ.get("HF_ENDPOINT")
    host = _HUB_HOST
    if endpoint:
        from urllib.parse import urlparse

        parsed = urlparse(endpoint)
        host = (parsed.hostname or _HUB_HOST[0], parsed.port or (443 if parsed.scheme == "https" else 80))
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def cache_dir_for(cache_dir: str | None) -> str:
    """The folder huggingface_hub reads and writes (respects HF_HOME / HF_HUB_CACHE)."""
    if cache_dir:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _safe_alternatives(filename: str) -> list[str]:
    if filename == "open_clip_pytorch_model.bin":
        return ["open_clip_model.safetensors"]
    stem, _, suffix = filename.rpartition(".")
    return [f"{stem}.safetensors"] if suffix in ("bin", "pth", "pt") and stem else []


def resolve_hub_file(repo_id: str, filenames: list[str], what: str, cache_dir: str | None = None) -> str:
    """Return a local path for the first of ``filenames`` in ``repo_id``, downloading only when possible.

    Args:
        repo_id: Hugging Face repository, e.g. ``timm/vit_base_patch32_clip_224.openai``.
        filenames: Candidate file names, preferred first.
        what: Human description used in errors (e.g. ``"ViT-B-32 / openai"``).
        cache_dir: Optional cache folder (defaults to the Hugging Face cache).
    """
    from huggingface_hub import hf_hub_download

    candidates = [alt for name in filenames for alt in _safe_alternatives(name)] + list(filenames)
    for name in candidates:
        try:
            return hf_hub_download(repo_id, name, cache_dir=cache_dir, local_files_only=True)
        except Exception:  # not cached (huggingface_hub raises several types here)
            continue
    where = cache_dir_for(cache_dir)
    if hub_offline() or not hub_reachable():
        reason = "HF_HUB_OFFLINE is set" if hub_offline() else "the Hugging Face Hub is unreachable"
        raise ModelLoadError(
            f"Weights for {what} are not in the local cache and {reason}.\n"
            f"  looked for: {', '.join(candidates)} of hf.co/{repo_id}\n"
            f"  in cache:   {where}\n"
            "Fix: on a machine with network, download the weights once with\n"
            f"  python -c \"from huggingface_hub import hf_hub_download as d; d('{repo_id}', '{filenames[0]}')\"\n"
            "and copy the cache folder here (or set HF_HOME), or pass a local weights file with --pretrained PATH."
        )
    last_err: Exception | None = None
    for name in candidates:
        try:
            return hf_hub_download(repo_id, name, cache_dir=cache_dir)
        except Exception as err:  # try the next candidate name
            last_err = err
    raise ModelLoadError(f"Could not download weights for {what} from hf.co/{repo_id}: {last_err}")


def resolve_hub_model_dir(repo_id: str, cache_dir: str | None = None) -> Path:
    """Local folder with ``open_clip_config.json`` + weights of an ``hf-hub:`` model (offline-aware)."""
    config = resolve_hub_file(repo_id, ["open_clip_config.json"], f"hf-hub:{repo_id}", cache_dir)
    resolve_hub_file(repo_id, ["open_clip_pytorch_model.bin"], f"hf-hub:{repo_id}", cache_dir)
    return Path(config).parent
