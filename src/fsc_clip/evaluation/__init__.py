"""Evaluation: benchmark adapters (native layouts) -> task items -> cached embeddings -> scores -> JSON.

Public API::

    from fsc_clip.evaluation import evaluate, BENCHMARKS
    results = evaluate(loaded_model, benchmarks=["sugarcrepe"], data_root="data", output_dir="out")

Submodules are imported lazily so ``import fsc_clip.evaluation`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BENCHMARKS", "evaluate", "resolve_benchmarks"]


def __getattr__(name: str) -> Any:
    if name == "BENCHMARKS":
        from fsc_clip.evaluation.benchmarks import BENCHMARKS

        return BENCHMARKS
    if name in ("evaluate", "resolve_benchmarks"):
        from fsc_clip.evaluation import runner

        return getattr(runner, name)
    raise AttributeError(name)
