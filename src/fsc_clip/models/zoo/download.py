"""Opt-in downloads of zoo weights (``fsc-clip fetch MODEL``); loading never calls this.

- Hugging Face Hub files: ``huggingface_hub.hf_hub_download`` into the Hugging Face cache.
- Plain HTTPS files: :func:`download_url`, resumable (``Range`` requests onto a ``.part`` file) and checked
  against the entry's sha256 when the authors publish one, into ``$FSC_CLIP_CACHE_DIR/zoo/<name>/``.
- Google-Drive-only files: no program download; :func:`manual_steps` says what to do by hand.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.zoo import CACHE_ENV, ZooEntry, find_cached_file, local_path, missing_file_error

log = logging.getLogger(__name__)
CHUNK = 1 << 20


class DownloadError(ModelLoadError):
    """A download failed or produced a file with the wrong checksum."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, start: int, timeout: float) -> Any:
    headers = {"User-Agent": "fsc-clip-fetch"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def download_url(url: str, dest: Path, sha256: str | None = None, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial download (``dest`` + ``.part``).

    The file is moved into place only when complete and, if ``sha256`` is given, only when it matches.

    Raises:
        DownloadError: network failure (the partial file is kept: run again to resume) or checksum mismatch
            (the partial file is deleted).
    """
    from fsc_clip.fileio import ensure_writable_dir

    ensure_writable_dir(dest.parent, "download folder")
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    try:
        _fetch_into(url, part, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not start:  # 416: nothing left to send, the partial file is complete
            raise DownloadError(f"Download of {url} failed: HTTP {err.code} {err.reason}.") from err
    except (urllib.error.URLError, OSError) as err:
        kept = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"Download of {url} was interrupted ({err}); {kept} bytes kept in {part}. Run the same command to resume."
        ) from err
    if sha256:
        actual = sha256_of(part)
        if actual != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"{url}: sha256 {actual} differs from the published {sha256}; the download was deleted. Run again."
            )
    os.replace(part, dest)
    return dest


def _fetch_into(url: str, part: Path, start: int, timeout: float) -> None:
    with _open(url, start, timeout) as resp:
        status = getattr(resp, "status", 200)
        if start and status == 206:
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {start}-"):
                raise DownloadError(f"{url}: the server resumed at the wrong place ({content_range!r}).")
            mode = "ab"
        else:  # 200: a fresh download (a server that ignores Range sends everything again)
            mode = "wb"
        expected = resp.headers.get("Content-Length")
        received = 0
        with open(part, mode) as handle:
            for block in iter(lambda: resp.read(CHUNK), b""):
                handle.write(block)
                received += len(block)
        # http.client returns a short body without error when the connection drops mid-way: check the length
        if expected is not None and received != int(expected):
            raise ConnectionError(f"connection closed after {received} of {expected} bytes")


def manual_steps(entry: ZooEntry) -> str:
    """What to do by hand for a file no program can download (Google Drive, unnamed Hub files)."""
    return str(missing_file_error(entry)).replace(
        "its weights are not on this machine (nothing is downloaded automatically).",
        "this file cannot be downloaded by a program; fetch it by hand:",
    )


def fetch_entry(entry: ZooEntry, cache_dir: str | None = None) -> Path:
    """Download the weights of ``entry`` (and what its loader needs besides) unless already present.

    Returns:
        The local weights path (for Hub-only entries, the Hugging Face cache path).

    Raises:
        ModelLoadError: a manual-only entry (message: the exact manual step), or a failed download.
    """
    found = find_cached_file(entry, cache_dir)
    if entry.format == "open_clip_hub":
        from fsc_clip.models.hub import resolve_hub_model_dir

        return resolve_hub_model_dir(entry.source.hf_repo or "", cache_dir)
    if found is None and entry.manual_only:
        raise ModelLoadError(manual_steps(entry))
    if found is None:
        found = _download(entry, cache_dir)
    if entry.patching is not None and entry.patching.base == "openai":  # CLoVe patches onto OpenAI weights
        from fsc_clip.models.build import _tag_weights

        _tag_weights(entry.architecture, entry.patching.base, cache_dir)
    return found


def _download(entry: ZooEntry, cache_dir: str | None) -> Path:
    src = entry.source
    if src.hf_repo and src.filename:
        from huggingface_hub import hf_hub_download

        if entry.format == "transformers_clip":
            hf_hub_download(src.hf_repo, "config.json", cache_dir=cache_dir)
        return Path(hf_hub_download(src.hf_repo, src.filename, cache_dir=cache_dir))
    dest = local_path(entry)
    assert dest is not None and src.url  # manual_only excluded both
    log.info("Downloading %s to %s (set %s to change the folder)", src.url, dest, CACHE_ENV)
    return download_url(src.url, dest, src.sha256)
