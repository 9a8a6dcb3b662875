"""The demo's fine-tuning runs, trained side by side in worker processes with one torch thread each.

Why: one step of the demo's tiny model keeps two cores only partly busy, and a run's floating-point result depends on
the number of threads it uses. Measured on the 2-core development machine, idle (``benchmarks/finetune_jobs.py``):
an FSC-CLIP-sized step (512 texts, 128 images, AdamW) takes 455 ms with two threads, 645 ms with one, and two
one-thread runs at once take about 690 ms each, so two runs side by side finish about 1.3x sooner than one after the
other. And with exactly one thread per run, the numbers of a run no longer depend on how many cores the machine has
(with torch's default, one thread per core, they changed by about a point between one and two threads).

Each run is a normal :func:`fsc_clip.training.train` call in a ``spawn``-ed process; its run folder, checkpoints and
``metrics.jsonl`` are exactly those of a run trained in the main process. The parent only waits, reports progress
(each running run's last logged step) and, when a run fails, lets the runs already under way finish (their work is
kept), starts no new one and raises the first error with the name of its run.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsc_clip.errors import UserError

THREADS_PER_RUN = 1
"""Torch threads of every fine-tuning run: fixed, so that results do not depend on the machine's core count."""

__all__ = ["THREADS_PER_RUN", "RunFailedError", "RunJob", "default_workers", "run_progress", "train_side_by_side"]


class RunFailedError(UserError):
    """A fine-tuning run stopped in its worker process for a reason the user can act on (named in the message)."""


@dataclass(frozen=True)
class RunJob:
    """One training run to do: its name, its ``TrainConfig`` and where its run folder is."""

    name: str
    config: Any  # fsc_clip.training.TrainConfig (picklable dataclass)
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


def _train_in_worker(config: Any, threads: int) -> float:
    """Worker process: train one run with ``threads`` torch threads; returns its wall seconds."""
    import torch

    from fsc_clip.training import train

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    train(config)
    return time.perf_counter() - t0


def train_side_by_side(
    jobs: Sequence[RunJob],
    workers: int,
    on_done: Callable[[RunJob, float], None],
    on_poll: Callable[[list[RunJob], list[RunJob]], None] | None = None,
    poll_seconds: float | None = 30.0,
) -> None:
    """Train ``jobs`` in ``workers`` processes (one torch thread each), in order, as workers become free.

    Args:
        jobs: The runs to train (none of them may share a run folder).
        workers: Processes at once (at least 1; more than ``len(jobs)`` are not started).
        on_done: Called in this process with each finished run and its wall seconds.
        on_poll: Called after each finished run and every ``poll_seconds`` with (finished runs, running runs).
        poll_seconds: Seconds between two ``on_poll`` calls while runs are under way (None: only when one ends).

    Raises:
        RunFailedError: a run stopped with a user-facing error (the message names the run) or its process died.
        RuntimeError: a run raised any other error (chained to it, with the worker's traceback).
    """
    if not jobs:
        return
    finished: list[RunJob] = []
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools or locks
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))), mp_context=context) as pool:
        futures: dict[Future[float], RunJob] = {
            pool.submit(_train_in_worker, job.config, THREADS_PER_RUN): job for job in jobs
        }
        pending = set(futures)
        failure: tuple[RunJob, BaseException] | None = None
        while pending:
            done, pending = wait(pending, timeout=poll_seconds if on_poll else None, return_when=FIRST_COMPLETED)
            for future in done:
                job = futures[future]
                if future.cancelled():
                    continue
                error = future.exception()
                if error is not None:
                    if failure is None:
                        failure = (job, error)
                        for other in pending:
                            other.cancel()  # not started yet: never start it; running ones finish and are kept
                    continue
                finished.append(job)
                on_done(job, future.result())
            if on_poll is not None and failure is None:
                # The pool takes jobs in order: the first `workers` unfinished ones run (Future.running() would also
                # count the one already queued for the next free worker).
                running = [job for f, job in futures.items() if f in pending][:workers]
                on_poll(list(finished), running)
    if failure is not None:
        job, error = failure
        if isinstance(error, BrokenProcessPool):
            raise RunFailedError(
                f"fine-tuning run {job.name}: its worker process died (out of memory or killed?). Finished runs "
                f"are kept; run the demo again to resume from the last checkpoint in {job.run_dir}."
            ) from error
        if isinstance(error, UserError):
            raise RunFailedError(f"fine-tuning run {job.name}: {error}") from error
        raise RuntimeError(f"fine-tuning run {job.name} failed (traceback of its process above)") from error
