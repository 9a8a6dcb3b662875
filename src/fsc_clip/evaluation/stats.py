"""Bootstrap confidence intervals and paired comparisons, from per-item outcomes.

Every benchmark run keeps its per-item outcomes as one or more :class:`OutcomeTable` (``BenchmarkOutput.per_item``):
the booleans of every item (multiple choice ``correct``; group ``text`` / ``image`` / ``group``), the top-1
correctness of every zero-shot image, the competitor counts of every retrieval query. An interval is a seeded
percentile bootstrap over those units:

1. **Draws.** Units are resampled with replacement *within strata* (:attr:`OutcomeTable.strata`): item benchmarks
   stratify by ``(item type, subset, category)``, so every replicate keeps each sub-score's and each category's size
   as published; zero-shot tasks scored per class (mean-per-class, ROC-AUC) stratify by class; retrieval resamples
   images, each carrying all its captions (a cluster bootstrap: the captions of one image are not independent).
   The index matrix ``[n_resamples, n_units]`` comes from ``numpy.random.default_rng([seed, crc32(benchmark/part)])``,
   so it depends only on the seed, the benchmark and the strata, never on the model: two models evaluated on the
   same items get the *same* draws, which is what makes the paired bootstrap paired.
2. **Replicates.** Each replicate's sub-scores come from the benchmark's own scoring: item benchmarks call
   ``Benchmark.score(items, outcomes)`` once, with every outcome a row of ``n_resamples`` replicate values (the
   scorers accumulate with :func:`fsc_clip.evaluation.tasks.as_hit`, which adds arrays as it adds booleans), and
   the benchmark column is ``Benchmark.column(replicate sub-scores)``, the same aggregation as the point estimate
   (macro means, pooled means, group scores). Headline columns (Comp, ZS, ...) apply the profile's
   ``Headline.compute`` to the replicate columns of the benchmarks, each resampled within itself.
3. **Interval.** The percentile interval ``[q_(1-c)/2, q_(1+c)/2]`` of the replicates (``numpy.quantile``, linear
   interpolation). A paired difference ``B - A`` takes the same percentiles of ``rep_B - rep_A``, replicate by
   replicate; it is *significant* when its interval excludes 0.

Replicates are computed in blocks of at most :data:`MAX_CELLS` index entries (memory stays ~100 MB for any suite).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsc_clip.registry import Registry

log = logging.getLogger(__name__)

N_RESAMPLES = 1000
SEED = 0
CONFIDENCE = 0.95
MAX_CELLS = 8_000_000  # index entries per block of replicates ([block, n_units] int64: 64 MB)
SCORES_SUFFIX = ".scores.npz"  # beside <benchmark>.json: <benchmark>.scores.npz
FORMAT_VERSION = 1

Replicates = dict[str, "np.ndarray | None"]  # full sub-score name -> [R] percent (None: no score)


@dataclass(frozen=True)
class BootstrapConfig:
    """How intervals are computed (recorded in every result as ``ci_meta``)."""

    n_resamples: int = N_RESAMPLES
    seed: int = SEED
    confidence: float = CONFIDENCE

    def meta(self) -> dict[str, Any]:
        return {
            "method": "percentile bootstrap over items, stratified (see fsc_clip.evaluation.stats)",
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "confidence": self.confidence,
        }


@dataclass
class OutcomeTable:
    """Per-unit outcomes of (one part of) a benchmark and what is needed to score any resample of them.

    Attributes:
        kind: The rescorer (:data:`RESCORERS`): ``items``, ``zeroshot`` or ``retrieval``.
        strata: ``[n_units]`` int: units are resampled within equal values.
        arrays: Named arrays (outcomes, labels, candidate scores); see each rescorer for the names.
        meta: JSON-able settings of the rescorer (metric, sub-score names, ...).
        name: Part name, unique within the benchmark (several parts: e.g. one per synthetic zero-shot task).
        candidate_scores: Names in ``arrays`` that are only written with ``--save-scores`` (similarities, probs).
    """

    kind: str
    strata: np.ndarray
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = "main"
    candidate_scores: tuple[str, ...] = ()

    @property
    def n_units(self) -> int:
        return len(self.strata)

    def signature(self) -> str:
        """Hex digest of the units' strata: equal for two runs on the same items (a precondition for pairing)."""
        digest = zlib.crc32(np.ascontiguousarray(self.strata, dtype=np.int64).tobytes())
        return f"{self.kind}:{self.n_units}:{digest:08x}"


Rescorer = Callable[[Any, OutcomeTable, np.ndarray], Replicates]
RESCORERS: Registry = Registry("per-item rescorer")  # name -> Rescorer


# ----- draws ------------------------------------------------------------------------------------------------
def strata_codes(keys: Sequence[Any]) -> np.ndarray:
    """Stratum index ``[n]`` of each unit from any hashable keys (first-appearance order)."""
    codes: dict[Any, int] = {}
    return np.fromiter((codes.setdefault(k, len(codes)) for k in keys), dtype=np.int64, count=len(keys))


def _rng(cfg: BootstrapConfig, benchmark: str, part: str) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, zlib.crc32(f"{benchmark}/{part}".encode())])


def draw_blocks(strata: np.ndarray, cfg: BootstrapConfig, benchmark: str, part: str = "main") -> Iterator[np.ndarray]:
    """Resampled unit indices, in blocks ``[r, n_units]`` (``sum r = n_resamples``), resampling within strata.

    Column ``j`` of every block holds a unit of the same stratum as unit ``j``, so anything that depends on a unit's
    position only through its stratum (subset, category, class) is unchanged in every replicate.
    """
    n = len(strata)
    rng = _rng(cfg, benchmark, part)
    order = np.argsort(strata, kind="stable")  # units grouped by stratum
    _, first, sizes = np.unique(strata[order], return_index=True, return_counts=True)
    which = np.searchsorted(strata[order][first], strata)  # [n] stratum rank of each unit
    start, size = first[which], sizes[which].astype(np.float64)  # [n] where its stratum begins in `order`, its size
    sorted_already = bool(np.array_equal(order, np.arange(n)))  # items usually come grouped: skip a gather
    block = max(1, min(cfg.n_resamples, MAX_CELLS // max(n, 1)))
    for begin in range(0, cfg.n_resamples, block):
        r = min(block, cfg.n_resamples - begin)
        # element-wise, no scatter: column j draws uniformly among the units of its own stratum
        pick = (rng.random((r, n)) * size).astype(np.int64)  # [r, n] in [0, size_j)
        idx = pick + start if sorted_already else order[pick + start]
        yield idx


def replicates(bench: Any, tables: Sequence[OutcomeTable], cfg: BootstrapConfig) -> Replicates:
    """Sub-score replicates ``{full name: [n_resamples]}`` of a benchmark from its outcome tables."""
    out: dict[str, list] = {}
    for table in tables:
        for idx in draw_blocks(table.strata, cfg, bench.name, table.name):
            for key, value in RESCORERS.get(table.kind)(bench, table, idx).items():
                out.setdefault(key, []).append(value)
    return {k: None if any(v is None for v in vs) else np.concatenate(vs).astype(np.float64) for k, vs in out.items()}


def column_replicates(bench: Any, reps: Mapping[str, np.ndarray | None]) -> np.ndarray | None:
    """The benchmark column of every replicate: ``Benchmark.column`` applied to the replicate sub-scores."""
    value = bench.column(dict(reps))
    return None if value is None else np.asarray(value, dtype=np.float64)


def interval(reps: np.ndarray | None, confidence: float = CONFIDENCE) -> list[float] | None:
    """Percentile interval ``[lo, hi]`` of replicates (``None`` if there are none or any is NaN)."""
    if reps is None or np.ndim(reps) != 1 or len(reps) == 0 or np.isnan(reps).any():
        return None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def benchmark_intervals(bench: Any, tables: Sequence[OutcomeTable], cfg: BootstrapConfig | None = None) -> dict:
    """``{"ci": {sub: [lo, hi], ..., <benchmark>: [lo, hi]}, "ci_meta": {...}}`` for a result JSON."""
    cfg = cfg or BootstrapConfig()
    if not tables:
        return {"ci": {}, "ci_meta": {**cfg.meta(), "missing": "no per-item outcomes"}}
    reps = replicates(bench, tables, cfg)
    ci = {k: interval(v, cfg.confidence) for k, v in reps.items()}
    ci[bench.name] = interval(column_replicates(bench, reps), cfg.confidence)
    meta = {**cfg.meta(), "units": {t.name: {"kind": t.kind, "n": t.n_units, "strata": len(np.unique(t.strata))}
                                    for t in tables}}  # fmt: skip
    return {"ci": ci, "ci_meta": meta}


# ----- rescorers --------------------------------------------------------------------------------------------
ITEM_TYPES = ("image_to_text", "text_to_image", "group")
OUTCOME_KEYS = ("correct", "text", "image", "group")


def items_table(
    items: Sequence[Any], outcomes: Mapping[str, Sequence], sims: Sequence | None = None, by_category: bool = True
) -> OutcomeTable:
    """The outcome table of item-based benchmarks (what ``Benchmark.score`` reads: type, subset, category, outcomes).

    Args:
        items: The benchmark's items.
        outcomes: ``score_items`` output: per key a list aligned with ``items`` (``None`` where not applicable).
        sims: Optional per-item candidate similarities (``[N]`` for multiple choice, ``[2, 2]`` for group items),
            kept as ``candidate_scores`` (NaN-padded to the widest item).
        by_category: Stratify by ``item.category`` too. Needed (and only then used) when the benchmark's ``score``
            reads the category (macro means over categories: each replicate must keep every category's size);
            the default pooled ``score`` does not, and its items are resampled within their subset.
    """
    from fsc_clip.evaluation.items import GroupItem, TextToImageItem

    types = np.array([2 if isinstance(it, GroupItem) else 1 if isinstance(it, TextToImageItem) else 0 for it in items],
                     dtype=np.int8)  # fmt: skip
    subset = np.array([it.subset for it in items], dtype=str)
    category = np.array([it.category for it in items], dtype=str)
    labels = np.array([getattr(it, "label", -1) for it in items], dtype=np.int64)  # -1: group items (no label)
    arrays: dict[str, np.ndarray] = {"item_type": types, "subset": subset, "category": category, "label": labels}
    for key in OUTCOME_KEYS:
        vals = outcomes.get(key)
        if vals is not None and any(v is not None for v in vals):
            arrays[key] = np.array([bool(v) for v in vals], dtype=bool)  # None (not applicable) -> False, never read
    cand: tuple[str, ...] = ()
    if sims is not None and len(sims):
        flat = [np.asarray(s, dtype=np.float32).reshape(-1) for s in sims]
        width = max(len(f) for f in flat)
        pad = np.full((len(flat), width), np.nan, dtype=np.float32)
        for i, f in enumerate(flat):
            pad[i, : len(f)] = f
        arrays["candidate_scores"], cand = pad, ("candidate_scores",)
    cats = category.tolist() if by_category else [""] * len(items)
    strata = strata_codes(list(zip(types.tolist(), subset.tolist(), cats)))
    return OutcomeTable("items", strata, arrays, candidate_scores=cand)


def _stub_items(table: OutcomeTable) -> list[Any]:
    """Items carrying only what scorers read (type, subset, category); built once per table."""
    cached = table.meta.get("_stubs")
    if cached is not None:
        return cached
    from fsc_clip.evaluation.items import GroupItem, ImageRef, ImageToTextItem, TextToImageItem

    ref = ImageRef(Path("(per-item outcomes: no image)"))
    make = (
        lambda s, c: ImageToTextItem(ref, [], 0, s, c),
        lambda s, c: TextToImageItem("", [], 0, s, c),
        lambda s, c: GroupItem((ref, ref), ("", ""), s, c),
    )
    t, s, c = table.arrays["item_type"].tolist(), table.arrays["subset"].tolist(), table.arrays["category"].tolist()
    stubs = [make[ti](si, ci) for ti, si, ci in zip(t, s, c)]
    table.meta["_stubs"] = stubs  # not JSON: dropped by save_tables
    return stubs


@RESCORERS.register("items")
def rescore_items(bench: Any, table: OutcomeTable, idx: np.ndarray) -> Replicates:
    """``bench.score`` on resampled outcomes: every outcome becomes a row ``[r]`` of replicate values."""
    outcomes = {k: table.arrays[k][idx.T] for k in OUTCOME_KEYS if k in table.arrays}  # [n, r] each
    scores, _counts = bench.score(_stub_items(table), outcomes)
    return {k: None if v is None else np.asarray(v, dtype=np.float64) for k, v in scores.items()}


def zeroshot_table(key: str, metric: str, correct: np.ndarray, target: np.ndarray, probs: np.ndarray) -> OutcomeTable:
    """Outcome table of a zero-shot task: per image its strict top-1 correctness, target(s) and probabilities.

    Args:
        key: Full sub-score name (``elevator::<task>``).
        metric: ELEVATER metric name.
        correct: ``[N]`` bool, strict top-1 (``tasks.zeroshot._strict_top1``).
        target: ``[N]`` class index, or ``[N, C]`` multi-hot for multi-label tasks.
        probs: ``[N, C]`` probabilities (the candidate scores).
    """
    per_class = metric in ("mean-per-class", "roc_auc") and target.ndim == 1
    strata = target.astype(np.int64) if per_class else np.zeros(len(correct), dtype=np.int64)
    arrays = {"correct": correct.astype(bool), "target": target, "candidate_scores": probs}
    # mAP / ROC-AUC need the probabilities to be rescored: they are outcomes there, not only candidate scores
    needs_probs = metric not in ("accuracy", "mean-per-class")
    return OutcomeTable("zeroshot", strata, arrays, {"key": key, "metric": metric},
                        candidate_scores=() if needs_probs else ("candidate_scores",))  # fmt: skip


@RESCORERS.register("zeroshot")
def rescore_zeroshot(_bench: Any, table: OutcomeTable, idx: np.ndarray) -> Replicates:
    """Accuracy / mean-per-class from per-image correctness; other metrics by the task's own ``compute_metric``."""
    metric, a = table.meta["metric"], table.arrays
    if metric == "accuracy":
        value = 100.0 * a["correct"][idx].mean(axis=1)
    elif metric == "mean-per-class":
        # strata are the classes and draws stay in their stratum: column j is always of class target[j]
        labels = a["target"].astype(np.int64)
        _, inverse, sizes = np.unique(labels, return_inverse=True, return_counts=True)
        weight = 1.0 / (len(sizes) * sizes[inverse])  # [n]: mean over classes of the class mean, as a weighted sum
        value = 100.0 * (a["correct"][idx].astype(np.float64) @ weight)
    elif metric == "11point_mAP":
        value = 100.0 * eleven_point_map_resampled(a["candidate_scores"], a["target"], idx)
    else:
        import torch

        from fsc_clip.evaluation.tasks.zeroshot import compute_metric

        probs, target = torch.from_numpy(np.asarray(a["candidate_scores"])), torch.from_numpy(np.asarray(a["target"]))
        value = np.array([100.0 * compute_metric(metric, probs[row], target[row]) for row in torch.from_numpy(idx)])
    return {table.meta["key"]: value}


def eleven_point_map_resampled(scores: np.ndarray, targets: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """:func:`fsc_clip.evaluation.tasks.zeroshot.eleven_point_map` of every resample at once.

    A resample is the original images with multiplicities ``w`` (how often each was drawn), so its precision /
    recall curve is the original curve (images sorted by score once) with every count weighted by ``w``: at the end
    of each run of equal scores, ``tp = cumsum(w * y)``, ``fp = cumsum(w * (1 - y))``. A run drawn zero times only
    repeats the previous point (or, before any drawn image, gives the point (0, 0), which never raises a maximum);
    a class without drawn positives gets 1/11, as in the unweighted metric. Checked against the metric on
    materialised resamples in ``tests/evaluation/test_stats.py``.

    Args:
        scores: ``[N, C]`` class scores.
        targets: ``[N, C]`` multi-hot.
        idx: ``[R, N]`` resampled image indices.

    Returns:
        ``[R]`` mean over classes of the 11-point interpolated AP (a fraction).
    """
    import torch

    r, n = idx.shape
    weights = np.bincount((idx + n * np.arange(r)[:, None]).ravel(), minlength=r * n).reshape(r, n).astype(np.int32)
    levels = torch.linspace(0.0, 1.0, 11, dtype=torch.float64).numpy()[1:]  # level 0 is always 1 (end point)
    total = np.zeros(r)
    for c in range(scores.shape[1]):
        s = np.asarray(scores[:, c], dtype=np.float64)
        order = np.argsort(-s, kind="stable")
        pos = np.flatnonzero(np.asarray(targets[order, c]) > 0)  # sorted positions of the positives
        ends = np.flatnonzero(np.append(s[order][1:] != s[order][:-1], True))  # last index of each run of ties
        w = weights[:, order]  # [R, N] int32 (exact counts)
        drawn = np.cumsum(w, axis=1, dtype=np.int32)[:, ends].astype(np.float64)  # [R, P] tp + fp
        hits = np.zeros_like(w)
        hits[:, pos] = w[:, pos]
        tp = np.cumsum(hits, axis=1, dtype=np.int32)[:, ends].astype(np.float64)  # [R, P]
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(drawn > 0, tp / drawn, 0.0)
            recall = tp / tp[:, -1:]  # non-decreasing along the points; NaN rows: no positive drawn
        best_after = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # [R, P] max precision from k on
        best_after = np.concatenate([best_after, np.zeros((r, 1))], axis=1)  # k == P: no point reaches the level
        recall = np.nan_to_num(recall, nan=0.0)  # rows without a drawn positive are set to 1/11 below
        first = np.stack([np.searchsorted(row, levels, side="left") for row in recall])  # [R, 10]: recall >= t
        interp = np.take_along_axis(best_after, first, axis=1)  # [R, 10]
        ap = (1.0 + interp.sum(axis=1)) / 11.0
        total += np.where(tp[:, -1] > 0, ap, 1.0 / 11.0)
    return total / scores.shape[1]


def retrieval_table(
    prefix: str, i2t: np.ndarray, t2i: np.ndarray, owner: np.ndarray, ks: Sequence[int]
) -> OutcomeTable:
    """Outcome table of image-text retrieval: units are images (each carries its captions' T2I outcomes).

    Args:
        prefix: Benchmark name (sub-scores ``<prefix>::i2t/R@k``, ``<prefix>::t2i/R@k``).
        i2t: ``[N_img]`` competitors ahead of each image's best caption.
        t2i: ``[N_txt]`` competitors ahead of each caption's image.
        owner: ``[N_txt]`` image index of each caption.
        ks: Recall cut-offs.
    """
    arrays = {"i2t_competitors": i2t.astype(np.int64), "t2i_competitors": t2i.astype(np.int64),
              "owner": owner.astype(np.int64)}  # fmt: skip
    return OutcomeTable("retrieval", np.zeros(len(i2t), dtype=np.int64), arrays, {"prefix": prefix, "ks": list(ks)})


@RESCORERS.register("retrieval")
def rescore_retrieval(_bench: Any, table: OutcomeTable, idx: np.ndarray) -> Replicates:
    """R@k (``recall_at_k``: fewer than k competitors ahead) over resampled images and their captions."""
    a, prefix = table.arrays, table.meta["prefix"]
    n_img = len(a["i2t_competitors"])
    n_cap = np.bincount(a["owner"], minlength=n_img)[idx].sum(axis=1)  # [r] captions in each replicate
    out: Replicates = {}
    for k in table.meta["ks"]:
        out[f"{prefix}::i2t/R@{k}"] = 100.0 * (a["i2t_competitors"] < k)[idx].mean(axis=1)
        hits = np.bincount(a["owner"], weights=a["t2i_competitors"] < k, minlength=n_img)  # [N_img] per image
        out[f"{prefix}::t2i/R@{k}"] = 100.0 * hits[idx].sum(axis=1) / np.maximum(n_cap, 1)
    return out


# ----- headlines and paired differences ---------------------------------------------------------------------
def headline_replicates(profile: Any, columns: Mapping[str, np.ndarray | None], subs: Mapping) -> dict:
    """Each headline's ``compute`` applied to replicate columns / sub-scores (``None`` where an input is missing)."""
    out: dict[str, np.ndarray | None] = {}
    cols = {b: columns.get(b) for b in profile.benchmarks}
    for h in profile.headlines:
        try:
            value = h.compute(dict(cols), subs)
        except (KeyError, TypeError):
            value = None
        out[h.name] = None if value is None else np.asarray(value, dtype=np.float64)
        cols[h.name] = out[h.name]
    return out


@dataclass
class RunReplicates:
    """Replicates of one run (per benchmark: sub-scores and column), from its saved per-item outcomes."""

    subs: dict[str, np.ndarray | None] = field(default_factory=dict)
    columns: dict[str, np.ndarray | None] = field(default_factory=dict)
    signatures: dict[str, list[str]] = field(default_factory=dict)

    def all_columns(self, profile: Any) -> dict[str, np.ndarray | None]:
        """Benchmark and headline columns of ``profile``."""
        cols = {b: self.columns.get(b) for b in profile.benchmarks}
        return {**cols, **headline_replicates(profile, cols, self.subs)}


def run_replicates(results: Mapping[str, Mapping[str, Any]], result_dir: Path, cfg: BootstrapConfig) -> RunReplicates:
    """Replicates of every benchmark of a run folder that has saved per-item outcomes (``<benchmark>.scores.npz``)."""
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    run = RunReplicates()
    for name, res in results.items():
        path = Path(result_dir) / f"{name}{SCORES_SUFFIX}"
        if name not in BENCHMARKS or not path.is_file():
            continue
        if not matches_result(path, res):
            log.warning("%s: per-item scores do not match %s.json (an older run?); no interval from it", path, name)
            continue
        bench = BENCHMARKS.get(name)(**dict(res.get("options") or {}))
        tables = load_tables(path)
        reps = replicates(bench, tables, cfg)
        run.subs.update(reps)
        run.columns[name] = column_replicates(bench, reps)
        run.signatures[name] = [t.signature() for t in tables]
    return run


def paired_difference(a: np.ndarray | None, b: np.ndarray | None, confidence: float = CONFIDENCE) -> dict | None:
    """``B - A`` per replicate (same draws): ``{"ci": [lo, hi], "significant": interval excludes 0}``."""
    if a is None or b is None or a.shape != b.shape:
        return None
    ci = interval(b - a, confidence)
    if ci is None:
        return None
    return {"ci": ci, "significant": bool(ci[0] > 0 or ci[1] < 0)}


def paired_columns(base: RunReplicates, other: RunReplicates, profile: Any, confidence: float = CONFIDENCE) -> dict:
    """Per column of ``profile``: the paired interval of ``other - base``, or ``None`` with a reason string.

    Benchmarks whose items differ (another data version or ``limit``) are not paired; a headline is paired only if
    every benchmark it reads is.
    """
    unpaired = {b for b in profile.benchmarks if base.signatures.get(b) != other.signatures.get(b)}
    a_cols = {b: (None if b in unpaired else v) for b, v in base.all_columns(profile).items()}
    b_cols = {b: (None if b in unpaired else v) for b, v in other.all_columns(profile).items()}
    if unpaired:  # recompute headlines without the unpaired benchmarks' replicates (they become None)
        strip = lambda run: RunReplicates(  # noqa: E731
            {k: v for k, v in run.subs.items() if k.split("::")[0] not in unpaired},
            {b: v for b, v in run.columns.items() if b not in unpaired},
        )
        a_cols.update(headline_replicates(profile, {b: a_cols[b] for b in profile.benchmarks}, strip(base).subs))
        b_cols.update(headline_replicates(profile, {b: b_cols[b] for b in profile.benchmarks}, strip(other).subs))
    return {c: paired_difference(a_cols.get(c), b_cols.get(c), confidence) for c in profile.columns()}


# ----- saving -----------------------------------------------------------------------------------------------
def save_tables(path: str | Path, tables: Sequence[OutcomeTable], scores: Mapping[str, Any] | None = None) -> Path:
    """Write the outcome tables (with candidate scores) to an NPZ, atomically; no pickled objects.

    Layout: ``<part>/strata`` and ``<part>/<array>`` per table, and ``__header__`` (a JSON string: format version,
    per table its kind, meta and array names, and the result's ``scores``, which a reader compares with the result
    JSON to make sure the file belongs to it).
    """
    from fsc_clip.fileio import write_with

    arrays: dict[str, np.ndarray] = {}
    header: dict[str, Any] = {"format": FORMAT_VERSION, "tables": [], "scores": dict(scores or {})}
    for t in tables:
        arrays[f"{t.name}/strata"] = t.strata
        for k, v in t.arrays.items():
            arrays[f"{t.name}/{k}"] = np.asarray(v)
        meta = {k: v for k, v in t.meta.items() if not k.startswith("_")}
        header["tables"].append({"name": t.name, "kind": t.kind, "meta": meta, "arrays": sorted(t.arrays),
                                 "candidate_scores": list(t.candidate_scores)})  # fmt: skip
    arrays["__header__"] = np.array(json.dumps(header))
    write_with(path, lambda fh: np.savez_compressed(fh, **arrays))  # type: ignore[arg-type]  # numpy stub: **kwds
    return Path(path)


def load_header(path: str | Path) -> dict[str, Any]:
    """The JSON header of a per-item scores file (raises UserError like :func:`load_tables`)."""
    from fsc_clip.errors import UserError

    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data["__header__"]))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable per-item scores file ({type(exc).__name__}: {exc}).") from exc


def matches_result(path: str | Path, result: Mapping[str, Any]) -> bool:
    """Whether the per-item file at ``path`` holds the outcomes of ``result`` (same sub-scores, to 1e-9)."""
    saved, now = load_header(path).get("scores", {}), result.get("scores", {})
    if set(saved) != set(now):
        return False
    return all((a is None and b is None) or (a is not None and b is not None and abs(a - b) <= 1e-9)
               for a, b in ((saved[k], now[k]) for k in now))  # fmt: skip


def load_tables(path: str | Path) -> list[OutcomeTable]:
    """Read the outcome tables written by :func:`save_tables`.

    Raises:
        UserError: the file is not a readable per-item scores file (names it and what to do).
    """
    from fsc_clip.errors import UserError

    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["__header__"]))
            tables = []
            for t in header["tables"]:
                arrays = {k: data[f"{t['name']}/{k}"] for k in t["arrays"]}
                tables.append(OutcomeTable(t["kind"], data[f"{t['name']}/strata"], arrays, dict(t["meta"]), t["name"],
                                           tuple(t.get("candidate_scores", ()))))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{path}: not a readable per-item scores file ({type(exc).__name__}: {exc}); re-run `fsc-clip eval "
            f"--save-scores --overwrite` for that benchmark, or delete the file."
        ) from exc
    return tables


# ----- report -----------------------------------------------------------------------------------------------
def run_intervals(
    profile: Any, records: Mapping[str, Mapping[str, Any]], result_dir: str | Path, cfg: BootstrapConfig | None = None
) -> tuple[dict[str, list[float] | None], RunReplicates]:
    """Intervals of every column of ``profile`` for one run folder, and its replicates (for paired comparisons).

    From the saved per-item outcomes where present; a benchmark column without them falls back to the interval in
    its result JSON (``ci``); a headline needs the outcomes of every benchmark it reads, else it has no interval.
    """
    cfg = cfg or BootstrapConfig()
    reps = run_replicates(records, Path(result_dir), cfg)
    ci = {c: interval(v, cfg.confidence) for c, v in reps.all_columns(profile).items()}
    for b in profile.benchmarks:
        if ci.get(b) is None and b in records:
            saved = (records[b].get("ci") or {}).get(b)
            ci[b] = [float(saved[0]), float(saved[1])] if isinstance(saved, list) and len(saved) == 2 else None
    return ci, reps


def half_width(ci: Sequence[float] | None) -> float | None:
    """Half the width of an interval (what tables show as ``±``)."""
    return None if ci is None else (ci[1] - ci[0]) / 2.0
