"""Run (model x benchmark) evaluations: one shared embedding cache, one JSON per benchmark, a summary.

Example::

    from fsc_clip.models import load_model
    from fsc_clip.evaluation import evaluate
    lm = load_model("ViT-B-32", "openai")
    results = evaluate(lm, ["sugarcrepe", "winoground"], data_root="~/data", output_dir="results/b32")
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError, UserError
from fsc_clip.fileio import ensure_writable_dir, output_error, write_json, write_text

log = logging.getLogger(__name__)
GROUP_WORDS = ("all", "compositional", "compositional_2025", "zeroshot", "retrieval", "synthetic")


def resolve_benchmarks(spec: str | Iterable[str]) -> list[str]:
    """Expand ``"all"`` (every non-synthetic benchmark), a kind (``compositional``, ``zeroshot``, ``retrieval``,
    ``synthetic``) or names.

    Accepts a comma-separated string or a list; unknown names raise the registry's "did you mean" error.
    """
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    words = [w.strip() for w in (spec.split(",") if isinstance(spec, str) else spec) for w in w.split(",")]
    names: list[str] = []
    for word in filter(None, words):
        if word == "all":  # the paper's suite; the synthetic demo benchmarks only by their own word
            found = [n for n in BENCHMARKS.names() if BENCHMARKS.get(n).kind != "synthetic"]
        elif word in GROUP_WORDS:
            found = [n for n in BENCHMARKS.names() if BENCHMARKS.get(n).kind == word]
        else:
            BENCHMARKS.get(word)  # raises UnknownNameError with close matches
            found = [word]
        names.extend(n for n in found if n not in names)
    return names


def model_info(loaded_model: Any) -> dict[str, Any]:
    """The model part of a result JSON (enough to reload it)."""
    spec = loaded_model.spec
    info = spec.to_dict()
    info["label"] = getattr(spec, "label", info.get("name"))
    return info


_MODEL_KEYS = ("name", "pretrained", "quick_gelu", "lora")


def _same_model(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in _MODEL_KEYS)


def make_benchmark(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """An instance of the registered benchmark ``name`` with its constructor options."""
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    return BENCHMARKS.get(name)(**dict(options or {}))


def run_benchmark(
    name: str, embedder: Any, data_root: Path, options: Mapping[str, Any] | None = None, scores_path: Path | None = None
) -> dict:
    """Evaluate one benchmark with an embedder; returns the result dict without model info.

    The result carries 95 % bootstrap intervals (``ci``, ``ci_meta``; :mod:`fsc_clip.evaluation.stats`). With
    ``scores_path`` every item's outcomes and candidate scores are written there (NPZ) and the result names the file.
    """
    from fsc_clip.evaluation.blind import is_blind, run_blind
    from fsc_clip.evaluation.stats import benchmark_intervals, save_tables

    bench = make_benchmark(name, options)
    bench.check(data_root)
    t0 = time.perf_counter()
    # a text-only (blind) model ranks image-to-text candidates by caption alone; other tasks are N/A
    out = run_blind(bench, data_root, embedder) if is_blind(embedder) else bench.run(data_root, embedder)
    elapsed = time.perf_counter() - t0
    res = {
        "benchmark": name,
        "task": bench.task,
        "kind": bench.kind,
        "score": out.score,
        "scores": out.scores,
        "counts": out.counts,
        "options": dict(bench.options),
        "extra": out.extra,
        "time_s": round(elapsed, 3),
        **benchmark_intervals(bench, out.per_item),
    }
    if scores_path is not None and out.per_item:
        save_tables(scores_path, out.per_item, scores=out.scores)
        res["per_item_file"] = scores_path.name
    return res


def scores_path(result_path: Path) -> Path:
    """``<benchmark>.scores.npz`` beside ``<benchmark>.json``: the per-item outcomes of that result."""
    from fsc_clip.evaluation.stats import SCORES_SUFFIX

    return result_path.with_name(result_path.stem + SCORES_SUFFIX)


def read_result(path: Path) -> dict[str, Any] | None:
    """The result dict stored at ``path``, or ``None`` if the file is not a readable result JSON."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("benchmark"), str) and isinstance(data.get("scores"), dict)
    return data if ok else None


def _set_aside(path: Path, why: str) -> Path:
    """Keep a result that is about to be replaced next to it, under a name no reader globs (``*.json``)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    kept = path.with_name(f"{path.name}.{why}-{stamp}")
    try:
        os.replace(path, kept)
    except OSError as exc:
        raise output_error(kept, exc, "move aside") from exc
    return kept


@dataclass
class _Identity:
    """What a result must match to be reused: the model spec and the two fingerprints."""

    model: dict[str, Any]
    weights: dict[str, Any]


def _foreign(previous: Mapping[str, Any], me: _Identity) -> str | None:
    """Why ``previous`` belongs to other weights (``None``: same model, or unknown because it has no fingerprint)."""
    from fsc_clip.evaluation.fingerprint import mismatch

    model = previous.get("model") or {}
    if not _same_model(model, me.model):
        shown = {k: model.get(k) for k in _MODEL_KEYS}
        return f"it holds results of another model ({model.get('label') or shown})"
    recorded = previous.get("weights_fingerprint")
    comparable = isinstance(recorded, Mapping) and recorded.get("method") == me.weights["method"]
    if comparable and (why := mismatch(recorded, me.weights)):
        return f"it holds results of other weights of {model.get('label')}: {why}"
    return None


def check_output_folder(out_dir: Path, names: Iterable[str], me: _Identity, overwrite: bool) -> None:
    """Refuse, before any work, a folder holding results of another model or other weights.

    A result of other weights for a benchmark being recomputed with ``overwrite`` is fine (it gets replaced); any
    other foreign result would end up next to ours and mix two models in one run folder (``fsc-clip report``
    reads a folder as one run).

    Raises:
        UserError: naming the foreign files and what to do.
    """
    from fsc_clip.evaluation.fingerprint import mismatch

    foreign = []
    for path in sorted(out_dir.glob("*.json")):
        previous = read_result(path)
        if previous is None:
            continue  # summary.json, unrelated or unreadable files (an unreadable result is recomputed)
        if why := _foreign(previous, me):
            if not (overwrite and previous["benchmark"] in names):
                foreign.append(f"{path} ({why})")
            continue
        unsure = mismatch(previous.get("weights_fingerprint"), me.weights)
        if unsure and previous["benchmark"] not in names:
            log.warning("%s: cannot tell whether it belongs to these weights (%s); evaluate that benchmark again "
                        "with --overwrite to be sure", path, unsure)  # fmt: skip
    if foreign:
        raise UserError(
            f"output folder {out_dir} already holds results of other weights; a folder is one run, so they cannot "
            f"be mixed. Use another --output (or move them away; --overwrite replaces only the benchmarks being "
            f"evaluated): " + "; ".join(foreign)
        )


def _reusable(path: Path, me: _Identity, data_fp: Mapping[str, Any]) -> dict[str, Any] | None:
    """The existing result at ``path`` if it was computed from these weights and these benchmark files.

    A result that cannot be verified (unreadable, no fingerprint, other benchmark files) is set aside (renamed
    ``<benchmark>.json.<reason>-<time>``, never deleted) and recomputed, with a warning saying why.
    """
    from fsc_clip.evaluation.fingerprint import mismatch

    previous = read_result(path)
    if previous is None:
        reason, why = "unreadable", "it is not a readable result JSON"
    elif weights_why := mismatch(previous.get("weights_fingerprint"), me.weights):
        reason, why = "unverified", f"its weights cannot be verified: {weights_why}"
    elif data_why := mismatch(previous.get("data_fingerprint"), data_fp):
        reason, why = "stale", f"the benchmark files changed since: {data_why}"
    else:
        return previous
    kept = _set_aside(path, reason)
    log.warning("%s: recomputing, %s; the old result is kept as %s", path, why, kept.name)
    return None


def evaluate(
    loaded_model: Any,
    benchmarks: str | Iterable[str],
    data_root: str | Path,
    output_dir: str | Path | None = None,
    *,
    batch_size: int = 64,
    device: str = "cpu",
    workers: int = 0,
    overwrite: bool = False,
    skip_missing: bool = False,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
    embedder: Any = None,
    save_scores: bool = False,
    dist: Any = None,
    cache_dir: str | Path | None = None,
) -> dict[str, dict]:
    """Evaluate a loaded model on benchmarks; write ``<output_dir>/<benchmark>.json`` for each.

    Each result JSON records ``weights_fingerprint`` and ``data_fingerprint``
    (:mod:`fsc_clip.evaluation.fingerprint`). An existing result is reused only when both match; one of another
    model or other weights is refused (see :func:`check_output_folder`), one whose benchmark files changed (or
    that has no fingerprint) is set aside and recomputed.

    Args:
        loaded_model: From :func:`fsc_clip.models.load_model` (model already on ``device``); ``None`` for a
            text-only baseline, given as ``embedder=BlindModel(...)`` (:mod:`fsc_clip.evaluation.blind`).
        benchmarks: Names, or ``all`` / ``compositional`` / ``zeroshot`` / ``retrieval`` / ``synthetic``.
        data_root: Folder holding one sub-folder per benchmark (see ``fsc-clip list benchmarks``).
        output_dir: Where result JSONs go (``None``: do not write).
        batch_size: Images / texts per forward pass.
        device: Torch device of the model.
        workers: DataLoader workers for image decoding.
        overwrite: Recompute results whose JSON already exists (otherwise verified ones are loaded and skipped).
        skip_missing: Skip (with a warning) benchmarks whose data is missing instead of raising.
        options: Per-benchmark constructor options, e.g. ``{"aro": {"seed": 1}}``.
        progress: Show progress bars.
        embedder: Reuse an existing :class:`CachedEmbedder` (e.g. across calls on the same model).
        save_scores: Also write every item's outcomes and candidate scores to ``<benchmark>.scores.npz`` (what
            ``fsc-clip report --baseline`` pairs on; :func:`fsc_clip.evaluation.stats.save_tables`).
        dist: A :class:`fsc_clip.training.distributed.DistInfo` of a ``torchrun`` job: the encoding is sharded
            across ranks, every rank scores with the full embedding table, only rank 0 checks and writes
            ``output_dir`` (its decisions are broadcast, so every rank runs the same benchmarks).
        cache_dir: Persist embeddings there (:class:`CachedEmbedder`), so other runs of these weights reuse them.

    Returns:
        ``{benchmark: result dict}`` with at least ``benchmark, model, score, scores, counts``; skipped
        missing-data benchmarks are absent (their error is logged).

    Raises:
        DataNotFoundError: a benchmark's data is missing (unless ``skip_missing``).
        UserError: the output folder holds results of another model or other weights.
        OutputError: the output folder cannot be written.
    """
    from fsc_clip.evaluation.embedder import CachedEmbedder
    from fsc_clip.evaluation.fingerprint import benchmark_folders, data_fingerprint, weights_fingerprint

    names = resolve_benchmarks(benchmarks)
    data_root = Path(data_root).expanduser()
    writer = dist is None or dist.is_main  # the one process that checks and writes output_dir
    out_dir = Path(output_dir).expanduser() if output_dir is not None and writer else None
    blind = loaded_model is None  # a text-only scorer (fsc_clip.evaluation.blind.BlindModel) passed as embedder
    if blind and not hasattr(embedder, "fingerprint"):
        raise UserError("evaluate(None, ...) needs a text-only scorer as embedder (blind.BlindModel)")
    me = _Identity(embedder.model_info() if blind else model_info(loaded_model), {})
    refusal = None
    if out_dir is not None:
        try:
            ensure_writable_dir(out_dir, "output folder")
            me.weights = embedder.fingerprint() if blind else weights_fingerprint(loaded_model)
            check_output_folder(out_dir, names, me, overwrite)
        except UserError as err:
            refusal = err
    _raise_on_every_rank(refusal, dist)
    if embedder is None:
        embedder = CachedEmbedder(
            loaded_model, device=device, batch_size=batch_size, workers=workers, progress=progress and writer,
            dist=dist, cache_dir=cache_dir,
        )  # fmt: skip
    results: dict[str, dict] = {}
    for name in names:
        opts = (options or {}).get(name)
        path = out_dir / f"{name}.json" if out_dir is not None else None
        data_fp = data_fingerprint(benchmark_folders(make_benchmark(name, opts), data_root)) if path else {}
        previous = _reusable(path, me, data_fp) if path is not None and path.exists() and not overwrite else None
        if dist is not None and dist.distributed:
            from fsc_clip.training.distributed import broadcast_object

            previous = broadcast_object(previous, dist)  # type: ignore[assignment]  # every rank skips or runs it
        if previous is not None:
            log.info("%s: result exists at %s for these weights and data, skipping (--overwrite recomputes)",
                     name, path)  # fmt: skip
            results[name] = previous
            if path is not None and save_scores and not scores_path(path).is_file():
                log.warning("%s: --save-scores: the reused result has no per-item scores file; add --overwrite to "
                            "recompute it and write %s", name, scores_path(path).name)  # fmt: skip
            continue
        try:
            res = run_benchmark(name, embedder, data_root, opts, scores_path(path) if save_scores and path else None)
        except DataNotFoundError as err:
            if not skip_missing:
                raise
            log.warning("skipping %s: %s", name, err)
            continue
        results[name] = _stamp(res, me, data_fp, data_root)
        if path is not None:
            write_json(path, res)  # atomic: an interrupted run never leaves a half-written result
    return results


def _raise_on_every_rank(err: UserError | None, dist: Any) -> None:
    """Raise rank 0's refusal on every rank (a rank raising alone would leave the others in a collective)."""
    if dist is not None and dist.distributed:
        from fsc_clip.training.distributed import broadcast_object

        message = broadcast_object(None if err is None else str(err), dist)
        if err is None and message is not None:
            raise UserError(str(message))
    if err is not None:
        raise err


def _stamp(res: dict[str, Any], me: _Identity, data_fp: Mapping[str, Any], data_root: Path) -> dict[str, Any]:
    from fsc_clip import __version__

    res["model"] = me.model
    if me.weights:
        res["weights_fingerprint"] = me.weights
        res["data_fingerprint"] = dict(data_fp)
    res["data_root"] = str(data_root)
    res["fsc_clip_version"] = __version__
    res["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return res


def summarize(results: Mapping[str, Mapping[str, Any]], profiles: Iterable[str] = ("fsc", "vl_compo")) -> dict:
    """Benchmark scores plus every profile's columns (``None`` where inputs are missing)."""
    from fsc_clip.evaluation.aggregate import compute_columns

    scores: dict[str, float] = {}
    for res in results.values():
        scores.update(res["scores"])
    return {
        "benchmarks": {name: res["score"] for name, res in results.items()},
        "profiles": {p: compute_columns(p, scores) for p in profiles},
    }


def write_summary(summary: Mapping[str, Any], output_dir: str | Path, model_label: str = "") -> list[Path]:
    """Write ``summary.json`` and ``summary.md`` (a table per profile) into ``output_dir``."""
    out = Path(output_dir)
    write_json(out / "summary.json", {"model": model_label, **summary})
    lines = [f"# Evaluation summary: {model_label}", "", "| benchmark | score |", "|---|---|"]
    lines += [f"| {n} | {_fmt(v)} |" for n, v in summary["benchmarks"].items()]
    for prof, cols in summary["profiles"].items():
        lines += ["", f"## profile `{prof}`", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines.append("| " + " | ".join(_fmt(v) for v in cols.values()) + " |")
    write_text(out / "summary.md", "\n".join(lines) + "\n")
    return [out / "summary.json", out / "summary.md"]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
