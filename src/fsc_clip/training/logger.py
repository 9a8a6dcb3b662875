"""Rank-0 run logging: tqdm bar (loss terms, samples/s, ETA), metrics.jsonl, optional TensorBoard."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().cpu())
    return value


class RunLogger:
    """Writes metrics on the main process only; every method is a no-op elsewhere.

    Args:
        run_dir: The run directory (``metrics.jsonl`` and ``tensorboard/`` go there).
        enabled: True on rank 0.
        total_steps: Optimizer steps of the whole run (for the bar and ETA).
        initial_step: Steps already done (resume).
        progress: Show the tqdm bar.
        tensorboard: Write TensorBoard events if the ``tensorboard`` package is installed.
    """

    def __init__(
        self, run_dir: Path, enabled: bool, total_steps: int, initial_step: int, progress: bool, tensorboard: bool
    ) -> None:
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self._bar = None
        self._tb = None
        self._last_time = time.perf_counter()
        self._samples = 0
        if not enabled:
            return
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True, file=sys.stderr)
        if tensorboard:
            self._tb = _open_tensorboard(run_dir / "tensorboard")

    def count(self, samples: int) -> None:
        """Add ``samples`` processed (globally) since the last record (for samples/s)."""
        self._samples += samples

    def step(self, step: int, epoch: int, record: dict[str, Any], write: bool) -> None:
        """Advance the bar; when ``write``, also append a JSONL record and refresh the bar's numbers."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
        if not write:
            return
        now = time.perf_counter()
        rate = self._samples / max(now - self._last_time, 1e-9)
        self._last_time, self._samples = now, 0
        row = {"step": step, "epoch": epoch, **{k: _plain(v) for k, v in record.items()}, "samples_per_s": rate}
        self.write(row)
        if self._bar is not None:
            shown = {k: f"{v:.4g}" for k, v in row.items() if k.endswith("loss") and isinstance(v, float)}
            self._bar.set_postfix({**shown, "samples/s": f"{rate:.1f}"}, refresh=False)
        if self._tb is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch"):
                    self._tb.add_scalar(f"train/{key}", value, step)

    def write(self, row: dict[str, Any]) -> None:
        """Append one JSON line to metrics.jsonl (main process only)."""
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()


def _open_tensorboard(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None  # tensorboard not installed: JSONL only
    return SummaryWriter(log_dir=str(log_dir))
