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
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError, UserError

log = logging.getLogger(__name__)
GROUP_WORDS = ("all", "compositional", "zeroshot", "retrieval", "synthetic")


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


def _same_model(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("name", "pretrained", "quick_gelu", "lora")
    return all(a.get(k) == b.get(k) for k in keys)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)  # atomic: an interrupted run never leaves a half-written result


def run_benchmark(name: str, embedder: Any, data_root: Path, options: Mapping[str, Any] | None = None) -> dict:
    """Evaluate one benchmark with an embedder; returns the result dict without model info."""
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    cls = BENCHMARKS.get(name)
    bench = cls(**dict(options or {}))
    bench.check(data_root)
    t0 = time.perf_counter()
    out = bench.run(data_root, embedder)
    return {
        "benchmark": name,
        "task": cls.task,
        "kind": cls.kind,
        "score": out.score,
        "scores": out.scores,
        "counts": out.counts,
        "options": dict(bench.options),
        "extra": out.extra,
        "time_s": round(time.perf_counter() - t0, 3),
    }


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
) -> dict[str, dict]:
    """Evaluate a loaded model on benchmarks; write ``<output_dir>/<benchmark>.json`` for each.

    Args:
        loaded_model: From :func:`fsc_clip.models.load_model` (model already on ``device``).
        benchmarks: Names, or ``all`` / ``compositional`` / ``zeroshot`` / ``retrieval`` / ``synthetic``.
        data_root: Folder holding one sub-folder per benchmark (see ``fsc-clip list benchmarks``).
        output_dir: Where result JSONs go (``None``: do not write).
        batch_size: Images / texts per forward pass.
        device: Torch device of the model.
        workers: DataLoader workers for image decoding.
        overwrite: Recompute results whose JSON already exists (otherwise they are loaded and skipped).
        skip_missing: Skip (with a warning) benchmarks whose data is missing instead of raising.
        options: Per-benchmark constructor options, e.g. ``{"aro": {"seed": 1}}``.
        progress: Show progress bars.
        embedder: Reuse an existing :class:`CachedEmbedder` (e.g. across calls on the same model).

    Returns:
        ``{benchmark: result dict}`` with at least ``benchmark, model, score, scores, counts``; skipped
        missing-data benchmarks are absent (their error is logged).

    Raises:
        DataNotFoundError: a benchmark's data is missing (unless ``skip_missing``).
        UserError: an existing result JSON belongs to another model (use ``overwrite``).
    """
    from fsc_clip import __version__
    from fsc_clip.evaluation.embedder import CachedEmbedder

    names = resolve_benchmarks(benchmarks)
    data_root = Path(data_root).expanduser()
    out_dir = Path(output_dir).expanduser() if output_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    minfo = model_info(loaded_model)
    if embedder is None:
        embedder = CachedEmbedder(
            loaded_model, device=device, batch_size=batch_size, workers=workers, progress=progress
        )
    results: dict[str, dict] = {}
    for name in names:
        path = out_dir / f"{name}.json" if out_dir is not None else None
        if path is not None and path.exists() and not overwrite:
            previous = json.loads(path.read_text())
            if not _same_model(previous.get("model", {}), minfo):
                raise UserError(
                    f"{path} holds results of another model ({previous.get('model', {}).get('label')}); "
                    "use a different --output or --overwrite."
                )
            log.info("%s: result exists at %s, skipping (use --overwrite to recompute)", name, path)
            results[name] = previous
            continue
        try:
            res = run_benchmark(name, embedder, data_root, (options or {}).get(name))
        except DataNotFoundError as err:
            if not skip_missing:
                raise
            log.warning("skipping %s: %s", name, err)
            continue
        res["model"] = minfo
        res["data_root"] = str(data_root)
        res["fsc_clip_version"] = __version__
        res["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        results[name] = res
        if path is not None:
            _write_json(path, res)
    return results


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
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "summary.json", {"model": model_label, **summary})
    lines = [f"# Evaluation summary: {model_label}", "", "| benchmark | score |", "|---|---|"]
    lines += [f"| {n} | {_fmt(v)} |" for n, v in summary["benchmarks"].items()]
    for prof, cols in summary["profiles"].items():
        lines += ["", f"## profile `{prof}`", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines.append("| " + " | ".join(_fmt(v) for v in cols.values()) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return [out / "summary.json", out / "summary.md"]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
