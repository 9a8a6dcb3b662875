"""Fingerprints that tie a result JSON to the exact weights and benchmark files it was computed from.

``fsc-clip eval`` reuses an existing ``<benchmark>.json`` only when both fingerprints match the current run, so
results of other weights (a re-trained checkpoint at the same path, another random initialisation) or of changed
benchmark files are never mixed in silently.

- **Weights** (:func:`weights_fingerprint`): SHA-256 over the model's state dict, tensor by tensor in sorted key
  order (name, dtype, shape, raw bytes), plus what changes the outputs without changing a tensor: the
  architecture name, QuickGELU and the evaluation image transform. It hashes what is actually in memory, so it
  covers random initialisations, merged LoRA adapters and precision casts alike. Cost: about 0.45 s for ViT-B/32
  (605 MB of fp32 tensors) on one CPU core, against ~20 s to load the model.
- **Benchmark data** (:func:`data_fingerprint`): every file under the benchmark's folder (and under any folder or
  file given as a benchmark option, e.g. ``image_root``), hidden files excluded, symbolic links followed.
  Annotation files (``.json``, ``.jsonl``, ``.csv``, ``.tsv``, ``.txt``, ``.yaml``, ``.yml``; they define the items
  and the labels) are hashed by content; every other file (images, frames) by relative path and size. Paths are
  relative to the benchmark folder, so moving or copying the data elsewhere (``cp`` changes modification times)
  keeps the fingerprint; adding, removing, renaming or resizing an image, or editing any annotation, changes it.
  An image rewritten in place with exactly the same byte size is not detected (re-run with ``--overwrite``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

WEIGHTS_METHOD = "sha256:state_dict+arch+quick_gelu+transform/v1"
DATA_METHOD = "sha256:annotation-content+file-path-size/v1"
ANNOTATION_SUFFIXES = frozenset({".json", ".jsonl", ".csv", ".tsv", ".txt", ".yaml", ".yml"})
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # function reprs in transforms carry a memory address
_CHUNK = 1 << 20


def weights_fingerprint(loaded_model: Any) -> dict[str, Any]:
    """Fingerprint of a :class:`~fsc_clip.models.LoadedModel`'s weights and input pipeline.

    Returns:
        ``{"sha256": hex, "method": ..., "tensors": n, "bytes": total tensor bytes}``.
    """
    import torch

    spec = loaded_model.spec
    digest = hashlib.sha256()
    digest.update(f"{spec.name}|quick_gelu={bool(spec.quick_gelu)}|".encode())
    digest.update(_ADDRESS.sub("", repr(loaded_model.preprocess_val)).encode())
    state = loaded_model.model.state_dict()
    total = 0
    for key in sorted(state):
        tensor = state[key].detach()
        digest.update(f"|{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        raw = tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy()  # any dtype, incl. bf16
        digest.update(memoryview(raw))
        total += raw.nbytes
    return {"sha256": digest.hexdigest(), "method": WEIGHTS_METHOD, "tensors": len(state), "bytes": total}


def benchmark_folders(bench: Any, data_root: str | Path) -> list[Path]:
    """The folders (or files) a benchmark reads: its folder under the data root, plus path-valued options."""
    subdir = getattr(bench, "subdir", "")
    folders = [Path(data_root) / subdir if subdir else Path(bench.root(data_root))]
    for value in (getattr(bench, "options", None) or {}).values():
        if isinstance(value, (str, os.PathLike)) and str(value) and Path(value).expanduser().exists():
            path = Path(value).expanduser()
            if not any(_is_within(path, f) for f in folders):
                folders.append(path)
    return folders


def data_fingerprint(folders: Iterable[Path]) -> dict[str, Any]:
    """Fingerprint of the files under ``folders`` (see the module docstring for what is hashed).

    Returns:
        ``{"sha256": hex, "method": ..., "files": n, "annotation_files": n}``; a missing folder counts as empty.
    """
    digest = hashlib.sha256()
    n_files = n_annotations = 0
    for index, folder in enumerate(folders):
        digest.update(f"#folder{index}\0".encode())
        for rel, path in _walk(Path(folder)):
            size = path.stat().st_size
            digest.update(f"{rel}\0{size}\0".encode())
            n_files += 1
            if path.suffix.lower() in ANNOTATION_SUFFIXES:
                digest.update(_file_sha256(path).encode())
                n_annotations += 1
    return {"sha256": digest.hexdigest(), "method": DATA_METHOD, "files": n_files, "annotation_files": n_annotations}


def mismatch(recorded: Mapping[str, Any] | None, current: Mapping[str, Any]) -> str | None:
    """Why a recorded fingerprint does not match the current one (``None`` if it matches)."""
    if not isinstance(recorded, Mapping) or "sha256" not in recorded:
        return "no fingerprint recorded (written by an older fsc-clip, or edited)"
    if recorded.get("method") != current["method"]:
        return f"fingerprint method {recorded.get('method')!r} differs from {current['method']!r}"
    if recorded["sha256"] != current["sha256"]:
        return f"fingerprint {str(recorded['sha256'])[:12]}... differs from {current['sha256'][:12]}..."
    return None


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """``(relative posix path, path)`` of every non-hidden file under ``root`` in sorted order, links followed."""
    if root.is_file():
        yield root.name, root
        return
    seen: set[str] = set()
    for top, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a symbolic link loop
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(top) / name
            yield path.relative_to(root).as_posix(), path


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True
