"""Run checkpoints: atomic writes, retention, RNG state capture, and loading for ``--resume``.

Format (read back by ``fsc_clip.models.load_model``; loadable with ``torch.load(path, weights_only=True)``)::

    {"format": "fsc-clip", "format_version": 1,
     "model": {"name", "pretrained", "quick_gelu", "lora": None | {"rank", "alpha", "targets"}},
     "state_dict": ..., "optimizer": ..., "scaler": ... | None,
     "epoch": int,           # epoch in progress (== finished epochs when batch_in_epoch == 0)
     "batch_in_epoch": int,  # loader batches of that epoch already consumed
     "step": int,            # optimizer steps done so far (= scheduler position)
     "rng": [per-rank {"torch", "cuda", "numpy", "python"}], "world_size": int,
     "config": {...resolved TrainConfig...}}
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsc_clip.config import ConfigError
from fsc_clip.errors import ModelLoadError

FORMAT = "fsc-clip"
FORMAT_VERSION = 1
LATEST = "latest.pt"
_EPOCH_RE = re.compile(r"^epoch_(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    """This process's RNG states as ``weights_only``-loadable data (numpy/python states as lists)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def atomic_save(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` via a temporary file + ``os.replace``: a crash never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(ckpt: dict[str, Any], ckpt_dir: Path, epoch_file: int | None, keep_last_epochs: int | None) -> None:
    """Write ``latest.pt`` (and ``epoch_<N>.pt`` when ``epoch_file`` is given), then prune old epoch files."""
    ckpt = {"format": FORMAT, "format_version": FORMAT_VERSION, **ckpt}
    atomic_save(ckpt, ckpt_dir / LATEST)
    if epoch_file is not None:
        atomic_save(ckpt, ckpt_dir / f"epoch_{epoch_file}.pt")
        prune_epochs(ckpt_dir, keep_last_epochs)


def epoch_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every ``epoch_N.pt`` in ``ckpt_dir``, oldest first."""
    found = []
    for path in ckpt_dir.glob("epoch_*.pt"):
        match = _EPOCH_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def prune_epochs(ckpt_dir: Path, keep_last: int | None) -> None:
    """Delete all but the newest ``keep_last`` epoch checkpoints (``None`` keeps all)."""
    if keep_last is None:
        return
    for _, path in epoch_checkpoints(ckpt_dir)[:-keep_last]:
        path.unlink(missing_ok=True)


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """Map ``--resume`` to a checkpoint file: ``auto`` → this run's ``latest.pt`` if any; a dir → its latest."""
    if resume is None or resume == "":
        return None
    if resume == "auto":
        latest = run_dir / "checkpoints" / LATEST
        return latest if latest.is_file() else None
    path = Path(resume)
    if path.is_dir():
        path = path / "checkpoints" / LATEST if (path / "checkpoints").is_dir() else path / LATEST
    if not path.is_file():
        raise ConfigError(f"--resume {resume}: no checkpoint at {path} (use 'auto', a .pt file or a run dir)")
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one of our run checkpoints (``weights_only=True``) and check its format marker."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torn/foreign file: say which and why
        raise ModelLoadError(f"cannot load checkpoint {path}: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not an fsc-clip run checkpoint (no 'format': 'fsc-clip' marker)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ModelLoadError(f"{path} has format_version {ckpt['format_version']}; upgrade fsc-clip to load it")
    return ckpt
