"""Hooks around the loop: periodic evaluation, and the two *test hooks* (environment variables).

Test hooks (used by tests/training to exercise real failures; harmless when unset):

- ``FSC_CLIP_TEST_KILL_AT_STEP=k``: the process exits abruptly (``os._exit(137)``, no cleanup, like
  a SIGKILL) right after optimizer step ``k`` and any checkpoint written at that step. Used to prove
  that ``--resume auto`` continues exactly from the last checkpoint.
- ``FSC_CLIP_TEST_NAN_AT_STEP=k`` (optionally with ``FSC_CLIP_TEST_NAN_RANK=r``): the loss of step
  ``k`` (1-based) is made NaN on rank ``r`` only (default: every rank). Used to prove that all ranks
  stop together with a clear message.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


KILL_ENV = "FSC_CLIP_TEST_KILL_AT_STEP"
NAN_ENV = "FSC_CLIP_TEST_NAN_AT_STEP"
NAN_RANK_ENV = "FSC_CLIP_TEST_NAN_RANK"


def maybe_kill(step: int) -> None:
    """Exit hard after step ``step`` if ``FSC_CLIP_TEST_KILL_AT_STEP`` asks for it."""
    if os.environ.get(KILL_ENV) == str(step):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(137)


def inject_nan(step: int, rank: int) -> bool:
    """Whether step ``step`` (1-based) should produce a NaN loss on ``rank`` (test hook)."""
    if os.environ.get(NAN_ENV) != str(step):
        return False
    target = os.environ.get(NAN_RANK_ENV)
    return target is None or target == str(rank)


def run_evaluation(
    loaded_model: Any,
    benchmarks: list[str],
    data_root: str | None,
    output_dir: Path,
    batch_size: int,
    device: str,
    progress: bool = False,
) -> dict[str, float | None] | None:
    """Evaluate the model being trained on ``benchmarks``; returns ``{benchmark: score}``.

    The evaluation suite is imported lazily; when it is not installed/available, logs why and
    returns None so that training carries on.
    """
    try:
        from fsc_clip.evaluation.runner import evaluate
    except ImportError as err:
        log.warning("[eval] skipped: the evaluation suite is not available (%s)", err)
        return None
    if data_root is None:
        log.warning("[eval] skipped: set eval.data_root to the folder holding the benchmarks")
        return None
    model = loaded_model.model
    was_training = model.training
    model.eval()
    try:
        results = evaluate(
            loaded_model,
            benchmarks=list(benchmarks),
            data_root=Path(data_root),
            output_dir=output_dir,
            batch_size=batch_size,
            device=device,
            overwrite=True,
            progress=progress,
        )
    finally:
        model.train(was_training)
    # a column is None when part of a benchmark's data is missing (the evaluation's None rule)
    return {name: None if result["score"] is None else float(result["score"]) for name, result in results.items()}
