"""The demo's fine-tuning runs, trained side by side in worker processes with one torch thread each.

Why: one step of the demo's tiny model keeps two cores only partly busy, and the training loader's Python work runs
in one thread anyway; on the 2-core development machine the demo's four fine-tuning runs took 704 s one after the
other with two threads and 525 s two at a time with one thread each (``benchmarks/finetune_jobs.py`` times the
model step alone). And with exactly one thread per run, the numbers of a run no longer depend on how many cores the
machine has (with torch's default, one thread per core, they changed by about a point between one and two threads).

Each run is a normal :func:`fsc_clip.training.train` call in a worker process started as
``python -m fsc_clip.demo.worker STOP_FILE <run_dir>/demo_job.json ...`` (each run's ``TrainConfig`` as JSON; a
worker trains its share of the runs one after the other, with :func:`worker_main`). A subprocess, not
``multiprocessing``: a ``spawn``-ed worker re-imports the caller's ``__main__``, so a user's script that calls
``run_demo`` without an ``if __name__ == "__main__":`` guard would start the demo again in every worker (tested).
Its run folder, checkpoints and ``metrics.jsonl`` are exactly those of a run trained in the main process. The parent
waits, reports progress (each running run's last logged step) and, when a run fails, lets the runs already under way
finish (their work is kept), starts no new one and raises the first error with the name of its run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsc_clip.errors import UserError

THREADS_PER_RUN = 1
"""Torch threads of every fine-tuning run: fixed, so that results do not depend on the machine's core count."""
JOB_FILE, STATUS_FILE, ERROR_FILE = "demo_job.json", "demo_status.json", "demo_error.json"
_TICK = 0.2  # seconds between two checks of the worker processes

__all__ = [
    "THREADS_PER_RUN",
    "RunFailedError",
    "RunJob",
    "default_workers",
    "run_progress",
    "train_side_by_side",
    "worker_main",
]


class RunFailedError(UserError):
    """A fine-tuning run stopped in its worker process for a reason the user can act on (named in the message)."""


@dataclass(frozen=True)
class RunJob:
    """One training run to do: its name, its ``TrainConfig`` and where its run folder is."""

    name: str
    config: Any  # fsc_clip.training.TrainConfig
    run_dir: Path
    total_steps: int


def default_workers(runs: int) -> int:
    """Runs side by side when the demo setting ``finetune_jobs`` is 0: one per usable core, at most ``runs``."""
    from fsc_clip.cli.main import usable_cores  # the one home of the core count (affinity-aware)

    return max(1, min(usable_cores(), runs))


def run_progress(job: RunJob) -> int:
    """The last step a run has logged to its ``metrics.jsonl`` (0 before its first record)."""
    from fsc_clip.training.logger import read_metrics

    records = read_metrics(job.run_dir / "metrics.jsonl")
    return int(records[-1].get("step", 0)) if records else 0


@dataclass
class _Worker:
    """One worker process and the runs it has still to report, in order (its round-robin share of the jobs)."""

    process: subprocess.Popen[bytes]
    jobs: list[RunJob]


def _worker_env() -> dict[str, str]:
    import fsc_clip

    package_root = str(Path(fsc_clip.__file__).resolve().parents[1])  # importable even if only on the caller's sys.path
    pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
    threads = str(THREADS_PER_RUN)
    return {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def _start(jobs: list[RunJob], stop_file: Path) -> _Worker:
    """Write each run's job file and start one worker process that trains them one after the other."""
    from fsc_clip.config import to_dict
    from fsc_clip.fileio import write_text

    for job in jobs:
        job.run_dir.mkdir(parents=True, exist_ok=True)
        for name in (ERROR_FILE, STATUS_FILE):
            (job.run_dir / name).unlink(missing_ok=True)
        write_text(job.run_dir / JOB_FILE, json.dumps(to_dict(job.config), default=str))
    command = [sys.executable, "-m", "fsc_clip.demo.worker", str(stop_file)]
    command += [str(job.run_dir / JOB_FILE) for job in jobs]
    return _Worker(subprocess.Popen(command, env=_worker_env()), list(jobs))


def _failure(job: RunJob, returncode: int | None) -> Exception:
    """The error to raise for a failed run (read from its error file; none: its process died)."""
    try:
        error = json.loads((job.run_dir / ERROR_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return RunFailedError(
            f"fine-tuning run {job.name}: its process ended with exit code {returncode} (out of memory, killed, or it "
            f"could not start: see its messages above). Finished runs are kept; run the demo again to resume from "
            f"the last checkpoint in {job.run_dir}."
        )
    if error.get("user_error"):
        return RunFailedError(f"fine-tuning run {job.name}: {error['message']}")
    return RuntimeError(f"fine-tuning run {job.name} failed: {error['type']}: {error['message']}\n{error['traceback']}")


def train_side_by_side(
    jobs: Sequence[RunJob],
    workers: int,
    on_done: Callable[[RunJob, float], None],
    on_poll: Callable[[list[RunJob], list[RunJob]], None] | None = None,
    poll_seconds: float | None = 30.0,
) -> None:
    """Train ``jobs`` in up to ``workers`` processes at once (one torch thread each).

    Worker ``k`` trains jobs ``k, k + workers, ...`` one after the other in one interpreter (a fresh process per run
    cost about 10 s of imports and set-up each, which doubled the quick demo's fine-tuning stage).

    Args:
        jobs: The runs to train (none of them may share a run folder).
        workers: Processes at once (at least 1).
        on_done: Called in this process with each finished run and its wall seconds.
        on_poll: Called after each finished run and every ``poll_seconds`` with (finished runs, running runs).
        poll_seconds: Seconds between two ``on_poll`` calls while runs are under way (None: only when one ends).

    Raises:
        RunFailedError: a run stopped with a user-facing error (the message names the run) or its process died.
        RuntimeError: a run raised any other error (the message has its traceback).
    """
    if not jobs:
        return
    n = max(1, min(workers, len(jobs)))
    stop_file = jobs[0].run_dir.parent / f".demo-stop-{os.getpid()}"  # after a failure workers start no further run
    stop_file.unlink(missing_ok=True)
    pool = [_start(list(jobs[k::n]), stop_file) for k in range(n)]
    finished: list[RunJob] = []
    failure: Exception | None = None
    last_poll = time.perf_counter()
    try:
        while any(w.jobs for w in pool):
            time.sleep(_TICK)
            ended = False
            for w in pool:
                while w.jobs and (w.jobs[0].run_dir / STATUS_FILE).exists():  # written atomically: complete when seen
                    job = w.jobs.pop(0)
                    finished.append(job)
                    on_done(job, json.loads((job.run_dir / STATUS_FILE).read_text(encoding="utf-8"))["seconds"])
                    ended = True
                if w.jobs and w.process.poll() is not None:  # it exited before its next run reported
                    failed = w.process.returncode != 0 or (w.jobs[0].run_dir / ERROR_FILE).exists()
                    if failed and failure is None:
                        failure = _failure(w.jobs[0], w.process.returncode)
                        stop_file.touch()  # runs under way finish and are kept; no new one starts
                    w.jobs.clear()
                    ended = True
            due = poll_seconds is not None and time.perf_counter() - last_poll >= poll_seconds
            if on_poll is not None and failure is None and (ended or due):
                on_poll(list(finished), [w.jobs[0] for w in pool if w.jobs])
                last_poll = time.perf_counter()
        for w in pool:
            w.process.wait()
    except BaseException:  # Ctrl-C or an error in a callback: stop the workers (checkpoints let a re-run resume)
        for w in pool:
            w.process.terminate()
        for w in pool:
            w.process.wait()
        raise
    finally:
        stop_file.unlink(missing_ok=True)
    if failure is not None:
        raise failure


def worker_main(stop_file: str, job_files: list[str]) -> int:
    """``python -m fsc_clip.demo.worker STOP_FILE JOB_FILE...``: train the runs in order, each reporting
    ``demo_status.json`` (done) or ``demo_error.json`` (failed) beside its job file; stop before the next run when
    ``STOP_FILE`` exists (another run failed)."""
    import traceback

    import torch

    from fsc_clip.config import from_dict
    from fsc_clip.fileio import write_text
    from fsc_clip.training import TrainConfig, train

    torch.set_num_threads(THREADS_PER_RUN)
    for job_file in map(Path, job_files):
        if Path(stop_file).exists():
            return 0
        t0 = time.perf_counter()
        try:
            train(from_dict(TrainConfig, json.loads(job_file.read_text(encoding="utf-8"))))
        except Exception as err:
            record = {"user_error": isinstance(err, UserError), "type": type(err).__name__, "message": str(err),
                      "traceback": traceback.format_exc()}  # fmt: skip
            write_text(job_file.parent / ERROR_FILE, json.dumps(record))
            if not isinstance(err, UserError):
                raise  # a bug: its traceback also goes to the console
            return 2
        write_text(job_file.parent / STATUS_FILE, json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    return 0
