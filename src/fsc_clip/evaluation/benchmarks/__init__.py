"""The ``BENCHMARKS`` registry: name -> :class:`fsc_clip.evaluation.base.Benchmark` subclass.

One module per benchmark family in this package; each registers its classes with
``@BENCHMARKS.register("name")``. Modules are imported on the first registry lookup (``lazy_modules``);
a family module that is missing or fails to import is an error at that lookup, never silently dropped.
"""

from __future__ import annotations

from fsc_clip.registry import Registry

# C: compositional; D: zeroshot, retrieval; F: synthetic.
_FAMILIES = (
    "aro",
    "crepe",
    "eqben",
    "imagecode",
    "mmvp",
    "spec",
    "sugarcrepe",
    "svo_probes",
    "valse",
    "vl_checklist",
    "whatsup",
    "winoground",  # + colorswap
    "zeroshot",
    "retrieval",
    "sugarcrepe_pp",  # compositional_2025
    "bivlc",
    "cola",  # + cola_single
    "negbench",  # + negbench_syn, negbench_chexpert
    "negbench_retrieval",
    "vismin",
    "synthetic",
)


BENCHMARKS: Registry = Registry("benchmark", lazy_modules=tuple(f"{__name__}.{m}" for m in _FAMILIES))

__all__ = ["BENCHMARKS"]


def list_benchmark_lines() -> list[str]:
    """``fsc-clip list benchmarks``: name, kind, task, description, sub-scores and expected files."""
    lines = ["Benchmarks (data under <data-root>/<folder>/; see docs for the layouts):"]
    for name in BENCHMARKS.names():
        lines.extend(BENCHMARKS.get(name).list_line())
    return lines
