"""Run checkpoints: atomic checksummed writes, retention, RNG state capture, and loading for ``--resume``.

Format (read back by ``fsc_clip.models.load_model``; loadable with ``torch.load(path, weights_only=True)``)::

    {"format": "fsc-clip", "format_version": 1,
     "model": {"name", "pretrained", "quick_gelu", "family", "lora": None | {"rank", "alpha", "targets"}},
     "state_dict": ..., "optimizer": ..., "scaler": ... | None,
     "epoch": int,           # epoch in progress (== finished epochs when batch_in_epoch == 0)
     "batch_in_epoch": int,  # loader batches of that epoch already consumed
     "step": int,            # optimizer steps done so far (= scheduler position)
     "rng": [per-rank {"torch", "cuda", "numpy", "python"}], "world_size": int,
     "config": {...resolved TrainConfig...},
     "sha256": hex}          # digest of everything else (fsc_clip.models.checkpoint.payload_sha256)

``epoch`` counts *finished* epochs (internal, 0-based position); everything shown to the user (console,
``metrics.jsonl``, ``epoch_N.pt``) numbers epochs from 1: ``epoch_N.pt`` is the state after epoch N.
Resuming tries ``latest.pt`` first, then the ``epoch_N.pt`` files newest first; a truncated or damaged
file is skipped with a message saying which file was used and why the others were rejected.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsc_clip.config import ConfigError
from fsc_clip.errors import ModelLoadError
from fsc_clip.models.checkpoint import safe_torch_load, verify_checksum, write_run_checkpoint

FORMAT = "fsc-clip"
FORMAT_VERSION = 1
LATEST = "latest.pt"
_EPOCH_RE = re.compile(r"^epoch_(\d+)\.pt$")
_RESUME_KEYS = ("state_dict", "optimizer", "epoch", "batch_in_epoch", "step")


def rng_state() -> dict[str, Any]:
    """This process's RNG states as ``weights_only``-loadable data (numpy/python states as lists)."""
    np_state = np.random.get_state(legacy=True)
    if not isinstance(np_state, tuple):  # only a non-MT19937 bit generator gives the dict form; the global one is MT
        raise TypeError(f"numpy's global RNG state is not the legacy MT19937 tuple (got {type(np_state).__name__})")
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


def save_checkpoint(ckpt: dict[str, Any], ckpt_dir: Path, epoch_file: int | None, keep_last_epochs: int | None) -> None:
    """Write ``latest.pt`` (and ``epoch_<N>.pt`` when ``epoch_file`` is given), then prune old epoch files.

    Each file is written atomically with its sha256 (:func:`fsc_clip.models.checkpoint.write_run_checkpoint`):
    a full disk raises :class:`~fsc_clip.errors.OutputError` naming the file and leaves the previous one intact.
    """
    ckpt = {"format": FORMAT, "format_version": FORMAT_VERSION, **ckpt}
    write_run_checkpoint(ckpt_dir / LATEST, ckpt)
    if epoch_file is not None:
        write_run_checkpoint(ckpt_dir / f"epoch_{epoch_file}.pt", ckpt)
        prune_epochs(ckpt_dir, keep_last_epochs)


def epoch_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every ``epoch_N.pt`` in ``ckpt_dir``, oldest first.

    Sorted by the epoch *number*: by file name, ``epoch_10.pt`` < ``epoch_2.pt`` and retention would
    delete the newest epochs once there are ten or more.
    """
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


def resolve_resume(resume: str | None, run_dir: Path) -> list[Path]:
    """Map ``--resume`` to the checkpoint files to try, in order (empty: start afresh).

    ``auto`` → this run's ``latest.pt`` then its ``epoch_N.pt`` newest first (none yet: a fresh start); a run
    dir or its ``checkpoints/`` folder → the same for that run; a ``.pt`` file → that file only (the user
    chose it: no silent substitute).

    Raises:
        ConfigError: ``--resume`` names a file or folder that holds no checkpoint.
    """
    if resume is None or resume == "":
        return []
    if resume == "auto":
        return _run_candidates(run_dir / "checkpoints")
    path = Path(resume)
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        found = _run_candidates(folder)
        if not found:
            raise ConfigError(
                f"--resume {resume}: no latest.pt or epoch_N.pt in {folder} (use 'auto', a .pt file or a run dir)"
            )
        return found
    if not path.is_file():
        raise ConfigError(f"--resume {resume}: no checkpoint at {path} (use 'auto', a .pt file or a run dir)")
    return [path]


def _run_candidates(ckpt_dir: Path) -> list[Path]:
    """``latest.pt`` (always the newest when intact), then the epoch files, newest first."""
    latest = [ckpt_dir / LATEST] if (ckpt_dir / LATEST).is_file() else []
    return latest + [path for _, path in reversed(epoch_checkpoints(ckpt_dir))]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one of our run checkpoints (``weights_only=True``), check its format marker and its sha256.

    Raises:
        ModelLoadError: unreadable (truncated, damaged, foreign) or corrupt (sha256 mismatch) file.
    """
    ckpt = safe_torch_load(path)  # ModelLoadError (never a raw torch error) for a torn or damaged file
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not an fsc-clip run checkpoint (no 'format': 'fsc-clip' marker)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise ModelLoadError(f"{path} has format_version {ckpt['format_version']}; upgrade fsc-clip to load it")
    verify_checksum(ckpt, path)
    missing = [key for key in _RESUME_KEYS if key not in ckpt]
    if missing:
        raise ModelLoadError(f"{path} lacks {missing}: it holds weights only (e.g. a WiSE-FT output), not a run state")
    return ckpt


def load_newest_valid(candidates: list[Path]) -> tuple[Path, dict[str, Any], list[str]]:
    """The first of ``candidates`` that loads and verifies, with the reasons the ones before it were rejected.

    Raises:
        ModelLoadError: none of them is usable (lists each file and why).
    """
    rejected: list[str] = []
    for path in candidates:
        try:
            return path, load_checkpoint(path), rejected
        except ModelLoadError as err:
            rejected.append(f"{path}: {err}")
    raise ModelLoadError(
        "no usable checkpoint to resume from:\n  " + "\n  ".join(rejected) + "\nStart afresh with --overwrite "
        "(the run folder is moved aside, not deleted) or pass --resume with another checkpoint."
    )
