"""The run folder: checked before any work, never silently reused, never deleted.

A run folder (``<output>/<name>``) that already holds a run (``config.yaml``, ``metrics.jsonl`` or
checkpoints) is only written into with ``--resume`` (continue it) or ``--overwrite`` (move it aside to
``<name>.old-<time>`` and start afresh). Resuming with settings that differ from the checkpoint's own is
refused, except for the keys in :data:`MAY_CHANGE_ON_RESUME` (where to run, how to log, how long to train).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from fsc_clip.config import ConfigError
from fsc_clip.fileio import ensure_writable_dir, output_error

logger = logging.getLogger(__name__)

RUN_MARKERS = ("config.yaml", "metrics.jsonl", "checkpoints")

# Dotted config keys (or section prefixes) that may differ between a run and its resumption: they do not change
# what the weights are trained on or how one step works. Everything else must match the checkpoint's config.
MAY_CHANGE_ON_RESUME = (
    "resume",
    "overwrite",
    "device",
    "output",
    "name",
    "logging.",
    "eval.",
    "checkpoint.",
    "optim.epochs",
    "optim.max_steps",
    "data.workers",
    "data.persistent_workers",
)


class RunExistsError(ConfigError):
    """The run folder already holds a run and neither ``--resume`` nor ``--overwrite`` was given."""


def holds_run(run_dir: Path) -> list[str]:
    """The names of the run files already in ``run_dir`` (empty for a new or empty folder)."""
    found = []
    for name in RUN_MARKERS:
        path = run_dir / name
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            found.append(name)
    return found


def prepare_run_dir(run_dir: Path, output: str, resume: str | None, overwrite: bool) -> str | None:
    """Check (and for ``--overwrite`` move aside) the run folder before any model is loaded; main rank only.

    Returns:
        A message to show (where an overwritten run went), or None.

    Raises:
        OutputError: ``output`` or the run folder cannot be written.
        RunExistsError: the folder holds a run and neither ``resume`` nor ``overwrite`` is set.
        ConfigError: both ``resume`` and ``overwrite`` are set.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: continue the run, or start it afresh")
    ensure_writable_dir(output, "output folder (--output)")
    existing = holds_run(run_dir)
    if existing and not resume and not overwrite:
        raise RunExistsError(
            f"run folder {run_dir} already holds a run ({', '.join(existing)}): pass --resume auto to continue it, "
            "or --overwrite to move it aside and start afresh (or choose another --name)"
        )
    message = None
    if existing and overwrite:
        message = f"--overwrite: moved the previous run {run_dir} to {_move_aside(run_dir)}"
    if run_dir.is_dir():
        ensure_writable_dir(run_dir, "run folder")
        if (run_dir / "checkpoints").is_dir():
            ensure_writable_dir(run_dir / "checkpoints", "checkpoint folder")
    return message


def _move_aside(run_dir: Path) -> Path:
    """Rename ``run_dir`` to a free ``<name>.old-<YYYYmmdd-HHMMSS>[-k]`` sibling (nothing is deleted)."""
    base = f"{run_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    target, k = run_dir.with_name(base), 1
    while target.exists():
        k += 1
        target = run_dir.with_name(f"{base}-{k}")
    try:
        run_dir.rename(target)
    except OSError as err:
        raise output_error(run_dir, err, action=f"move the previous run aside to {target}") from err
    return target


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix[:-1]: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def config_differences(run_config: dict[str, Any], new_config: dict[str, Any]) -> list[str]:
    """``key: run has X, now Y`` for every setting that differs and may not change on resume."""
    old, new = _flatten(run_config), _flatten(new_config)
    diffs = []
    for key in sorted(old.keys() | new.keys()):
        if any(key == k or (k.endswith(".") and key.startswith(k)) for k in MAY_CHANGE_ON_RESUME):
            continue
        if key in old and key in new and old[key] == new[key]:
            continue
        diffs.append(f"{key}: run has {old.get(key, '<unset>')!r}, now {new.get(key, '<unset>')!r}")
    return diffs


def check_resume_config(path: Path, run_config: dict[str, Any] | None, new_config: dict[str, Any]) -> None:
    """Refuse to resume ``path`` with other settings than it was trained with (see :data:`MAY_CHANGE_ON_RESUME`).

    Raises:
        ConfigError: lists each differing key with both values.
    """
    if run_config is None:
        logger.warning("%s records no config: cannot check that the resumed run uses the same settings", path)
        return
    diffs = config_differences(run_config, new_config)
    if diffs:
        raise ConfigError(
            f"cannot resume {path} with different settings:\n  " + "\n  ".join(diffs) + "\nResume with the run's own "
            "settings (its config.yaml: --config <run>/config.yaml --resume auto), or start a new run "
            "(another --name, or --overwrite)."
        )
