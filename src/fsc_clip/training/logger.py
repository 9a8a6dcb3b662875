"""Rank-0 run logging: tqdm bar (loss terms, samples/s, ETA), metrics.jsonl, optional TensorBoard.

``metrics.jsonl`` is append-only, one JSON object per line (``step``; ``epoch`` numbered from 1: the epoch the
step belongs to, or for an ``eval`` record the epoch just finished). Each record is appended with one
``write`` on an ``O_APPEND`` descriptor; a crash or a full disk can still leave a *torn last line*, so
readers use :func:`read_metrics`, which skips (and reports) lines that are not complete JSON, and a resumed
run first rewrites the file atomically without torn lines and without the records of steps it will redo
(:func:`trim_metrics`). A new record never continues a torn line: it starts on a fresh one.

TensorBoard events go to ``<run>/tensorboard`` only when the ``tensorboard`` package is installed
(``pip install 'fsc-clip[tensorboard]'``); ``logging.tensorboard: true`` without it prints one warning line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from fsc_clip.fileio import output_error, write_text

logger = logging.getLogger(__name__)


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
        tensorboard: ``None``: write TensorBoard events if the ``tensorboard`` package is installed; ``True``:
            the same, with a warning line when it is not; ``False``: never.
    """

    def __init__(
        self,
        run_dir: Path,
        enabled: bool,
        total_steps: int,
        initial_step: int,
        progress: bool,
        tensorboard: bool | None,
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
        if tensorboard is not False:
            self._tb = _open_tensorboard(run_dir / "tensorboard", initial_step, warn=tensorboard is True)

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
        append_jsonl(self.path, {k: _plain(v) for k, v in row.items()})

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            logger.info("%s", text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()


def _open_tensorboard(log_dir: Path, initial_step: int, warn: bool) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: metrics.jsonl only
        if warn:
            logger.warning(
                "logging.tensorboard is true but the tensorboard package is not installed: metrics go to "
                "metrics.jsonl only (pip install 'fsc-clip[tensorboard]')"
            )
        return None
    # purge_step: a resumed run hides the events of the steps it redoes, as trim_metrics does for metrics.jsonl.
    return SummaryWriter(log_dir=str(log_dir), purge_step=initial_step or None)


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append ``row`` as one line with a single ``write`` (``O_APPEND``), starting a fresh line after a torn one.

    Raises:
        OutputError: the file cannot be written (disk full, read-only, ...), naming it.
    """
    data = (json.dumps(row) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)  # read: the torn-tail check
        try:
            if _ends_torn(fd):
                data = b"\n" + data
            view = memoryview(data)
            while view:  # a regular file normally takes it in one write; loop on a short write
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as err:
        raise output_error(path, err) from err


def _ends_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; lines that are not complete JSON objects (a torn last line) are
    skipped with a warning naming the file and line."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            logger.warning("%s line %d is not a complete JSON record (torn write?): skipped", path, number)
            continue
        records.append(record)
    return records


def trim_metrics(path: Path, step: int) -> None:
    """Rewrite ``path`` atomically without torn lines and without records after ``step`` (steps a resumed run
    redoes), so that the file holds each step once. Nothing is rewritten when nothing would change."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    records = read_metrics(path)
    kept = [r for r in records if not isinstance(r.get("step"), int) or r["step"] <= step]
    new_text = "".join(json.dumps(r) + "\n" for r in kept)
    if new_text == text:
        return
    if len(kept) < len(records):
        dropped = len(records) - len(kept)
        logger.info("%s: dropped %d record(s) after step %d, which this run redoes", path, dropped, step)
    write_text(path, new_text)
