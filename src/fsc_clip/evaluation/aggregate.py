"""Aggregation: sub-scores -> benchmark columns -> headline columns, per named profile.

A benchmark's column is computed by its class (``Benchmark.aggregate(scores)``) from its full-name
sub-scores exactly as in the published tables (vl_compo results.csv / individual_results.csv). A *profile* names the
benchmark columns
of a table and its headline columns:

- ``fsc``: FSC-CLIP's 11 compositional benchmarks; ``Comp`` = unweighted mean of the 11.
- ``vl_compo``: the companion study's 12; ``comp_avg`` = unweighted mean of the 12.
- ``frontier``: SugarCrepe, Winoground and the ``compositional_2025`` benchmarks; ``Comp25`` = mean of the four core
  ones (SugarCrepe++, BiVLC, COLA, NegBench MCQ), ``Frontier`` = mean of those six; the group's other benchmarks are
  further columns, outside the headlines.

Other areas extend this without editing it: D adds headline columns (``ZS``, ``I2T``, ``T2I``, ...) with
:func:`add_headline` from its benchmark modules; F registers a ``synthetic`` profile with
``PROFILES.register("synthetic", Profile(...))``. Benchmark modules are all imported before a profile is
looked up (:func:`get_profile`), so such registrations are always in place.

Missing inputs give ``None`` (never a silently partial mean).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fsc_clip.registry import Registry

Columns = dict[str, float | None]
HeadlineFn = Callable[[Columns, Mapping[str, float | None]], float | None]


def mean(values: Iterable[float | None]) -> float | None:
    """Unweighted mean; ``None`` if any value is missing or there are none."""
    vals = list(values)
    present = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals or len(present) < len(vals):
        return None
    return sum(present) / len(present)


def pooled(scores: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Accuracy pooled over examples: ``sum(w_k * score_k) / sum(w_k)`` (raises KeyError if one is missing)."""
    return sum(weights[k] * scores[k] for k in weights) / sum(weights.values())


def mean_of_columns(names: Iterable[str]) -> HeadlineFn:
    """A headline = unweighted mean of the given benchmark columns."""
    names = tuple(names)
    return lambda columns, _subscores: mean(columns.get(n) for n in names)


@dataclass(frozen=True)
class Headline:
    """A derived column: ``compute(benchmark_columns, all_subscores) -> value | None``."""

    name: str
    compute: HeadlineFn
    description: str = ""


@dataclass
class Profile:
    """A published table's layout: benchmark columns and headline columns, in display order."""

    name: str
    benchmarks: tuple[str, ...]
    headlines: list[Headline] = field(default_factory=list)
    description: str = ""

    def columns(self) -> list[str]:
        return [*self.benchmarks, *(h.name for h in self.headlines)]


PROFILES: Registry = Registry("aggregation profile")

FSC_BENCHMARKS = (
    "aro", "crepe", "eqben", "imagecode", "sugarcrepe", "svo_probes",
    "valse", "vl_checklist", "whatsup", "winoground", "spec",
)  # fmt: skip
VL_COMPO_BENCHMARKS = (
    "aro", "colorswap", "crepe", "eqben", "imagecode", "mmvp_vlm",
    "sugarcrepe", "svo_probes", "valse", "vl_checklist", "whatsup", "winoground",
)  # fmt: skip

PROFILES.register(
    "fsc",
    Profile(
        "fsc",
        FSC_BENCHMARKS,
        [Headline("Comp", mean_of_columns(FSC_BENCHMARKS), "mean of the 11 compositional benchmarks")],
        "FSC-CLIP paper / extended_results.csv",
    ),
)
PROFILES.register(
    "vl_compo",
    Profile(
        "vl_compo",
        VL_COMPO_BENCHMARKS,
        [Headline("comp_avg", mean_of_columns(VL_COMPO_BENCHMARKS), "mean of the 12 compositional benchmarks")],
        "vl_compo results.csv",
    ),
)

# Benchmarks 2025-2026 papers (READ-CLIP, CLIC, CS-CLIP, DeGLA) report beside SugarCrepe; their classes have
# kind "compositional_2025", which is also a --benchmarks group word (runner.GROUP_WORDS). The headlines average the
# four core columns; the other tasks of the same benchmarks (NegBench retrieval / synthetic / CheXpert, COLA
# single-object) and VisMin are further columns of the profile, outside the headlines (their data is often absent).
COMPOSITIONAL_2025 = ("sugarcrepe_pp", "bivlc", "cola", "negbench")
COMPOSITIONAL_2025_MORE = ("negbench_retrieval", "negbench_syn", "negbench_chexpert", "cola_single", "vismin")
FRONTIER_BENCHMARKS = ("sugarcrepe", "winoground", *COMPOSITIONAL_2025)
PROFILES.register(
    "frontier",
    Profile(
        "frontier",
        (*FRONTIER_BENCHMARKS, *COMPOSITIONAL_2025_MORE),
        [
            Headline("Comp25", mean_of_columns(COMPOSITIONAL_2025), "mean of sugarcrepe_pp, bivlc, cola, negbench"),
            Headline("Frontier", mean_of_columns(FRONTIER_BENCHMARKS), "mean of sugarcrepe, winoground and Comp25's 4"),
        ],
        "SugarCrepe and Winoground beside the compositional_2025 group (SugarCrepe++ ITT, BiVLC, COLA, NegBench; "
        "then NegBench's other tasks, COLA single-object and VisMin, outside the headlines)",
    ),
)


def _ensure_benchmarks_loaded() -> None:
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    BENCHMARKS.names()  # imports every benchmark module, so their profile/headline registrations have run


def get_profile(name: str) -> Profile:
    """The profile registered as ``name`` (after all benchmark modules had a chance to extend profiles)."""
    _ensure_benchmarks_loaded()
    return PROFILES.get(name)


def add_headline(profile: str, headline: Headline) -> None:
    """Append (or replace, by name) a headline column of a registered profile. Idempotent."""
    prof = PROFILES.get(profile)
    prof.headlines[:] = [h for h in prof.headlines if h.name != headline.name] + [headline]


def benchmark_score(name: str, scores: Mapping[str, float | None]) -> float | None:
    """A benchmark's column from full-name sub-scores (``None`` if a required sub-score is missing or ``None``).

    The rule lives in :meth:`fsc_clip.evaluation.base.Benchmark.column` (``required_sub_scores``).
    """
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    return BENCHMARKS.get(name).column(scores)


def compute_columns(profile: str | Profile, scores: Mapping[str, float | None]) -> Columns:
    """All columns of a profile (benchmark columns then headlines) from the full-name sub-scores."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    columns: Columns = {b: benchmark_score(b, scores) for b in prof.benchmarks}
    for h in prof.headlines:
        columns[h.name] = h.compute(dict(columns), scores)
    return columns


def load_scores(result_dir: str | Path) -> dict[str, float]:
    """Merge the ``scores`` of every result JSON (``<benchmark>.json``) in a directory."""
    merged: dict[str, float] = {}
    for path in sorted(Path(result_dir).glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "benchmark" in data and "scores" in data:
            merged.update(data["scores"])
    return merged
