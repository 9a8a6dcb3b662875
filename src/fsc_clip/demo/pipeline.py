"""``fsc-clip demo``: the whole method end to end on the embedded synthetic world, every stage cached.

Stages (each skipped when its outputs exist for the same settings, so an interrupted demo resumes):

1. ``world``: render the synthetic world (training TSV + world-grammar negatives + five test sets in their real
   formats).
2. ``pretrain``: train a tiny CLIP from scratch with the CLIP loss on the training split (the "pre-trained
   model" every method starts from) with the real trainer. The finished base is shared between demo folders through
   ``$FSC_CLIP_CACHE_DIR/demo`` (:func:`base_cache_dir`); ``from_scratch`` re-trains it.
3. ``negatives``: one JSONL of precomputed negatives for the fine-tuning split: the world's own replacements plus the
   types the world does not provide (``ngram_shuffle_2``), precomputed by the real negatives pipeline. The NegCLIP
   swaps come with the TSV, as in COCO's ``train_neg_clip.tsv`` (see :data:`WORLD_TYPES`).
4. ``finetune``: fine-tune copies of it with CLIP, NegCLIP and FSC-CLIP (full and LoRA), one recipe for all (and
   ``seeds`` seeds each).
5. ``evaluate``: evaluate the base and every fine-tuned model on the synthetic benchmarks with the real runner,
   keeping per-item outcomes (``<benchmark>.scores.npz``) for the paired bootstrap intervals.
6. ``report``: the holistic report (profile ``synthetic``, baseline ``base``) as CSV / Markdown / HTML / PNG.

Output layout::

    <output>/world/            the synthetic world (the data root of the synthetic benchmarks)
    <output>/finetune/         fine-tuning split TSV + precomputed negatives JSONL
    <output>/runs/<model>/     trainer run directories (base = the pre-trained model)
    <output>/eval/<model>/     one result JSON (+ per-item outcomes NPZ) per benchmark
    <output>/report/           summary.csv, subscores.csv, report.md, report.html, plots/*.png
    <output>/timings.json      every invocation: wall seconds per stage, CPU seconds, load, what was reused
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from fsc_clip.config import to_dict
from fsc_clip.demo.config import DemoConfig, MethodConfig, StageConfig
from fsc_clip.fileio import ensure_writable_dir, write_json, write_text

BASE = "base"
BENCHMARKS = (
    "synthetic_sugarcrepe",
    "synthetic_winoground",
    "synthetic_aro",
    "synthetic_zeroshot",
    "synthetic_retrieval",
)
PROFILE = "synthetic"
TABLE_COLUMNS = ("Comp", "ZS", "I2T", "T2I", "synthetic_sugarcrepe", "synthetic_winoground", "synthetic_aro")


@dataclass
class DemoResult:
    """What a demo run produced.

    Attributes:
        output: The demo folder.
        report_files: ``{kind: path}`` from the report writer (``summary_csv``, ``markdown``, ``html``, plots).
        timings: Wall seconds per stage of this invocation (cached stages take ~0).
        cached: Stages (or runs) that were reused from an earlier invocation.
        rows: One dict per model: ``model`` plus the report columns.
    """

    output: Path
    report_files: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


STAGES = ("world", "pretrain", "negatives", "finetune", "evaluate", "report")


def _stage_weights(cfg: DemoConfig) -> dict[str, float]:
    """Rough relative cost of each stage (sample-steps; measured ratios on a 2-core CPU) for the ETA."""
    w = cfg.world
    images = w.n_train + 7 * w.n_sugarcrepe + 2 * w.n_winoground + 2 * w.n_aro + 3 * w.n_zeroshot + w.n_retrieval
    finetune = sum(cfg.finetune.steps * cfg.finetune.batch_size * (2.5 if m.negatives else 1.0) for m in cfg.methods)
    return {
        "world": 0.6 * images,
        "pretrain": cfg.pretrain.steps * cfg.pretrain.batch_size,
        "negatives": 0.3 * _finetune_rows(cfg),
        "finetune": finetune,
        "evaluate": (1 + len(cfg.methods)) * 0.5 * (images - w.n_train),
        "report": 2000.0,
    }


class _Demo:
    """One invocation: config, folders, logging and the stage bookkeeping (one overall progress line per stage)."""

    def __init__(self, cfg: DemoConfig, output: Path, progress: bool, log: Callable[[str], None]) -> None:
        self.cfg, self.out, self.progress, self.log = cfg, output, progress, log
        self.world = output / "world"
        self.result = DemoResult(output=output, report_files={})
        self.t0 = time.perf_counter()
        self.weights = _stage_weights(cfg)
        self.done_weight = 0.0  # work of the stages finished so far (cached ones count as done, at no time)
        self.skipped_weight = 0.0

    def progress_line(self, name: str) -> str:
        """``[demo 4/6 finetune] elapsed 1m02s, ETA ~2m10s`` (ETA from the elapsed time per unit of work done)."""
        elapsed = time.perf_counter() - self.t0
        worked = self.done_weight - self.skipped_weight
        left = sum(self.weights.values()) - self.done_weight
        eta = f"ETA ~{_mmss(elapsed / worked * left)}" if worked > 0 and elapsed > 1 else "ETA: after the first stage"
        return f"[demo {STAGES.index(name) + 1}/{len(STAGES)} {name}] elapsed {_mmss(elapsed)}, {eta}"

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        self.log(f"\n=== {self.progress_line(name)} ===")
        cached_before = len(self.result.cached)
        t0 = time.perf_counter()
        value = fn()
        self.result.timings[name] = round(time.perf_counter() - t0, 1)
        self.done_weight += self.weights[name]
        if self.result.timings[name] < 1.0 and len(self.result.cached) > cached_before:
            self.skipped_weight += self.weights[name]  # reused: says nothing about the speed of this machine
        self.log(f"=== {name}: {self.result.timings[name]:.1f} s ===")
        return value


def _mmss(seconds: float) -> str:
    m, sec = divmod(round(seconds), 60)
    return f"{m}m{sec:02d}s"


# ----------------------------------------------------------------------------------------------- stages


def _stage_world(d: _Demo) -> None:
    from fsc_clip.data.synthetic import generate_world, read_manifest

    before = read_manifest(d.world)
    manifest = generate_world(d.cfg.world, d.world, progress=d.progress)
    if before == manifest:
        d.result.cached.append("world")
        d.log(f"world: reusing {d.world}")
    else:
        d.log(f"world: wrote {d.world} ({manifest['counts']['train']} training pairs)")


def _train_config(
    d: _Demo,
    name: str,
    stage: StageConfig,
    data: dict[str, Any],
    method: MethodConfig,
    pretrained,
    seed: int | None = None,
):
    from fsc_clip.config import from_dict
    from fsc_clip.training import TrainConfig

    steps_per_epoch = max(1, data.pop("_rows") // stage.batch_size)
    raw = {
        "model": {"name": d.cfg.model, "pretrained": pretrained, "lora_rank": method.lora_rank, "augment": False},
        "data": data,
        "loss": dict(method.loss),
        "optim": {
            "lr": stage.lr * method.lr_mult,
            "wd": stage.wd,
            "warmup": stage.warmup,
            "schedule": "cosine",
            "epochs": math.ceil(stage.steps / steps_per_epoch),
            "batch_size": stage.batch_size,
            "precision": "fp32",
            "max_steps": stage.steps,
        },
        "logging": {"every_n_steps": 10, "progress": d.progress, "tensorboard": False},
        "checkpoint": {"every_n_epochs": 0, "every_n_steps": 100, "keep_last_epochs": 1},
        "seed": d.cfg.seed if seed is None else seed,
        "output": str(d.out / "runs"),
        "name": name,
        "device": "cpu",
        "resume": "auto",
    }
    return from_dict(TrainConfig, raw)


def _fingerprint(tc: Any) -> str:
    settings = to_dict(tc)
    settings.pop("logging", None)  # progress bars do not change the result
    return json.dumps(settings, sort_keys=True, default=str)


def _train(d: _Demo, name: str, tc: Any) -> Path:
    """Run (or resume, or reuse) one training run; a run with other settings under the same name is replaced."""
    from fsc_clip.training import train

    run_dir = d.out / "runs" / name
    fingerprint = _fingerprint(tc)
    stamp = run_dir / "demo_settings.json"
    done = run_dir / "demo_done.json"
    if stamp.exists() and stamp.read_text() != fingerprint:
        d.log(f"{name}: settings changed, retraining")
        shutil.rmtree(run_dir)
    if done.exists() and (run_dir / "checkpoints" / "latest.pt").exists():
        d.result.cached.append(name)
        d.log(f"{name}: reusing {run_dir}")
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text(stamp, fingerprint)
    t0 = time.perf_counter()
    train(tc)
    write_text(done, json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    return run_dir


def base_cache_dir(cfg: DemoConfig) -> Path:
    """Shared cache of pre-trained bases: ``$FSC_CLIP_CACHE_DIR/demo/base-<key>`` (``~/.cache/fsc_clip``).

    The key covers everything the base depends on (model, seed, world config and version, pre-training stage) and
    no paths, so every demo folder on the machine shares one base per setting.
    """
    from fsc_clip.data.synthetic.world import WORLD_VERSION
    from fsc_clip.models.zoo import cache_root

    key = json.dumps(
        {"model": cfg.model, "seed": cfg.seed, "world": to_dict(cfg.world), "world_version": WORLD_VERSION,
         "pretrain": to_dict(cfg.pretrain)}, sort_keys=True,
    )  # fmt: skip
    return cache_root() / "demo" / f"base-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _stage_pretrain(d: _Demo, from_scratch: bool = False) -> Path:
    """Pre-train the base, or reuse this folder's, or copy the shared cached one (unless ``from_scratch``)."""
    cfg = d.cfg
    data = {"train_data": str(d.world / "train" / "train_neg_clip.tsv"), "negatives": None, "_rows": cfg.world.n_train}
    method = MethodConfig(name=BASE, loss={"loss_name": "clip"})
    tc = _train_config(d, BASE, cfg.pretrain, data, method, None)
    run_dir, shared = d.out / "runs" / BASE, base_cache_dir(cfg)
    if from_scratch and run_dir.exists():
        shutil.rmtree(run_dir)
    elif not (run_dir / "demo_done.json").exists() and (shared / "demo_done.json").exists():
        shutil.copytree(shared, run_dir, dirs_exist_ok=True)
        write_text(run_dir / "demo_settings.json", _fingerprint(tc))  # this folder's paths
        d.result.cached.append("base:shared")
        d.log(f"{BASE}: using the cached pre-trained base {shared} (--from-scratch re-trains it)")
    run_dir = _train(d, BASE, tc)
    if BASE not in d.result.cached or not (shared / "demo_done.json").exists():
        _publish(run_dir, shared)  # trained now, or this folder's base is not in the shared cache yet
    return run_dir


def _publish(run_dir: Path, shared: Path) -> None:
    """Copy a finished base into the shared cache (latest checkpoint only; atomic by rename)."""
    tmp = shared.with_name(f"{shared.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(run_dir, tmp, ignore=lambda _dir, names: [n for n in names if n.startswith("step_")])
    shutil.rmtree(shared, ignore_errors=True)
    tmp.rename(shared)


def _finetune_rows(cfg: DemoConfig) -> int:
    return min(cfg.finetune_rows or cfg.world.n_train, cfg.world.n_train)


def _finetune_split(d: _Demo) -> Path:
    """The first ``finetune_rows`` rows of the training TSV (0: all of them; images stay in the world folder)."""
    src = d.world / "train" / "train_neg_clip.tsv"
    dst = d.out / "finetune" / "finetune_neg_clip.tsv"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8") as f:
        lines = list(f)[: _finetune_rows(d.cfg) + 1]
    text = "".join(lines)
    if not dst.exists() or dst.read_text(encoding="utf-8") != text:
        write_text(dst, text)
    return dst


WORLD_TYPES = ("negclip", "replace")
"""Negative types the world itself provides, in its own grammar and vocabulary: ``negclip`` = the TSV's swap column
(attribute / object swaps, relation flips), ``replace`` = ``train/negatives_world.jsonl`` (attribute, object and
relation replacements). WordNet's replacements would bring words this world does not have ("an orange site"),
which are trivially false; the world's are as hard as its test negatives."""


def _online_types(d: _Demo) -> list[str]:
    """Negative types the methods need beyond what the world provides (precomputed by the real pipeline)."""
    from fsc_clip.negatives import style_types

    types: list[str] = []
    for m in d.cfg.methods:
        for t in style_types(m.negatives) if m.negatives else []:
            if t not in WORLD_TYPES and t not in types:
                types.append(t)
    return types


def _stage_negatives(d: _Demo) -> Path | None:
    """One JSONL for the loader: the world's replacements + the remaining types precomputed by ``fsc-clip
    negatives``' pipeline (e.g. ``ngram_shuffle_2``, which only reorders the caption's own words)."""
    from fsc_clip.data.synthetic.world import LAYOUT
    from fsc_clip.negatives.precompute import PrecomputeConfig, precompute

    split = _finetune_split(d)
    if not any(m.negatives for m in d.cfg.methods):
        return None
    world_jsonl = d.world / LAYOUT["train_negatives"]
    types = _online_types(d)
    key = hashlib.sha256(world_jsonl.read_bytes() + split.read_bytes())
    key.update(f"{types}|{d.cfg.negatives_per_type}|{d.cfg.seed}".encode())
    merged = split.parent / f"negatives_world+{'_'.join(types) or 'none'}_{key.hexdigest()[:12]}.jsonl"
    if merged.exists():
        d.result.cached.append("negatives")
        d.log(f"negatives: reusing {merged}")
        return merged
    parts = [world_jsonl.read_text(encoding="utf-8")]
    if types:
        online = split.parent / f"negatives_{'_'.join(types)}_k{d.cfg.negatives_per_type}.jsonl"
        pc = PrecomputeConfig(
            input=str(split),
            output=str(online),
            caption_column="title",
            style=",".join(types),
            per_type=d.cfg.negatives_per_type,
            seed=d.cfg.seed,
            workers=1,
            progress=d.progress,
        )
        d.log(f"negatives: {precompute(pc)} -> {online}")
        parts.append(online.read_text(encoding="utf-8"))
    write_text(merged, "".join(parts))
    return merged


def _stage_finetune(d: _Demo, base: Path, negatives: Path | None) -> dict[str, Path]:
    split = d.out / "finetune" / "finetune_neg_clip.tsv"
    runs = {}
    for m in d.cfg.methods:
        for seed in range(d.cfg.seed, d.cfg.seed + d.cfg.seeds):
            name = run_name(m.name, seed - d.cfg.seed, seed)
            data = {"train_data": str(split), "image_root": str(d.world / "train"), "negatives": m.negatives,
                    "precomputed_negatives": str(negatives) if (m.negatives and negatives) else None,
                    "_rows": _finetune_rows(d.cfg)}  # fmt: skip
            d.log(f"--- fine-tuning {name} (loss {m.loss.get('loss_name')}, negatives {m.negatives}, "
                  f"{'LoRA r=' + str(m.lora_rank) if m.lora_rank else 'full'}, seed {seed}) ---")  # fmt: skip
            runs[name] = _train(d, name, _train_config(d, name, d.cfg.finetune, data, m, str(base), seed))
    return runs


SEED_TAG = "@seed"


def run_name(method: str, k: int, seed: int) -> str:
    """``negclip`` for the first seed (so a one-seed demo keeps its names), ``negclip@seed1`` etc. after it."""
    return method if k == 0 else f"{method}{SEED_TAG}{seed}"


def seed_summary(rows: list[dict[str, Any]], columns: tuple[str, ...] = TABLE_COLUMNS) -> list[dict[str, Any]]:
    """Per method over its seed runs: ``{"model", "n", col: (mean, std)}`` (std with ddof=1; 0 for one seed).

    This is the spread over fine-tuning seeds (same world, same test items); the item intervals of each run are the
    other source of uncertainty (the paper's Table 8 reports both).
    """
    import statistics

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["model"].split(SEED_TAG)[0], []).append(r)
    out = []
    for method, runs in groups.items():
        rec: dict[str, Any] = {"model": method, "n": len(runs)}
        for c in columns:
            vals = [r[c] for r in runs if r.get(c) is not None]
            rec[c] = (statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0) if vals else None
        out.append(rec)
    return out


def format_seed_table(summary: list[dict[str, Any]], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """``mean ± std (n seeds)`` per method and column."""
    width = max([len("model"), *(len(r["model"]) for r in summary)])
    head = f"{'model':<{width}}  {'n':>2}  " + "  ".join(f"{c.replace('synthetic_', ''):>13}" for c in columns)
    lines = [head, "-" * len(head)]
    for r in summary:
        cells = ("-" if r[c] is None else f"{r[c][0]:.1f} ± {r[c][1]:.1f}" for c in columns)
        lines.append(f"{r['model']:<{width}}  {r['n']:>2}  " + "  ".join(f"{v:>13}" for v in cells))
    return "\n".join(lines)


@lru_cache(maxsize=1)
def _named_spec_class() -> type:
    """A ``ModelSpec`` whose label is the demo's row name (by default a run's is ``<arch>/latest.pt``)."""
    from fsc_clip.models.factory import ModelSpec

    @dataclass
    class NamedSpec(ModelSpec):
        """The loaded model's spec with the demo's row name as its label (the result JSONs' ``model.label``)."""

        display: str = ""

        @property
        def label(self) -> str:
            return self.display

    return NamedSpec


def _checkpoint_stamp(run_dir: Path) -> str:
    st = (run_dir / "checkpoints" / "latest.pt").stat()
    return hashlib.sha256(f"{run_dir.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _stage_evaluate(d: _Demo, models: dict[str, Path]) -> dict[str, Path]:
    from fsc_clip.evaluation.runner import evaluate
    from fsc_clip.models import load_model

    dirs = {}
    for name, run_dir in models.items():
        out = d.out / "eval" / name
        stamp, expected = out / "checkpoint_stamp.txt", _checkpoint_stamp(run_dir)
        if out.exists() and (not stamp.exists() or stamp.read_text() != expected):
            shutil.rmtree(out)  # results of an older checkpoint
        done = all((out / f"{b}.json").exists() and (out / f"{b}.scores.npz").exists() for b in BENCHMARKS)
        if stamp.exists() and done:
            d.result.cached.append(f"eval:{name}")
            d.log(f"evaluate {name}: reusing {out}")
        else:
            d.log(f"--- evaluating {name} ---")
            out.mkdir(parents=True, exist_ok=True)
            write_text(stamp, expected)
            lm = load_model(d.cfg.model, str(run_dir))
            lm.spec = _named_spec_class()(**lm.spec.to_dict(), display=f"{d.cfg.model}/{name}")
            evaluate(lm, list(BENCHMARKS), d.world, out, batch_size=d.cfg.eval_batch_size, progress=d.progress,
                     save_scores=True)  # per-item outcomes: the report's paired intervals vs the base  # fmt: skip
        dirs[name] = out
    return dirs


def _stage_report(d: _Demo, eval_dirs: dict[str, Path]) -> None:
    from fsc_clip.evaluation.report import build_report, write_report

    report = build_report(list(eval_dirs.values()), profile=PROFILE, baseline=BASE)
    d.result.report_files = write_report(report, d.out / "report")
    d.result.rows = [
        {"model": r.name, **{c: r.columns.get(c) for c in report.columns},
         "ci": {c: r.ci.get(c) for c in report.columns}, "paired": {c: r.paired.get(c) for c in report.columns}}
        for r in report.rows
    ]  # fmt: skip


# ----------------------------------------------------------------------------------------------- entry point


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """A plain-text table of the headline and compositional columns (``-`` for missing values).

    Rows with intervals show ``value ±half-width`` (95 % bootstrap over items); rows with a paired comparison to the
    base get a second line: ``+d [lo, hi]`` (paired 95 % interval; ``*`` when it excludes 0).
    """
    short = {c: c.replace("synthetic_", "") for c in columns}
    width = max([len("model"), *(len(r["model"]) + 2 for r in rows)])
    cell, base = 20, next((r for r in rows if r["model"] == BASE), None)
    head = f"{'model':<{width}}  " + "  ".join(f"{short[c]:>{cell}}" for c in columns)
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['model']:<{width}}  " + "  ".join(f"{_value_cell(r, c):>{cell}}" for c in columns))
        if any((r.get("paired") or {}).get(c) for c in columns):
            deltas = (_delta_cell(r, base, c) for c in columns)
            lines.append(f"{'  Δ base':<{width}}  " + "  ".join(f"{v:>{cell}}" for v in deltas))
    return "\n".join(lines)


def _value_cell(row: dict[str, Any], col: str) -> str:
    value, ci = row.get(col), (row.get("ci") or {}).get(col)
    if value is None:
        return "-"
    return f"{value:.1f} ±{(ci[1] - ci[0]) / 2:.1f}" if ci else f"{value:.2f}"


def _delta_cell(row: dict[str, Any], base: dict[str, Any] | None, col: str) -> str:
    p = (row.get("paired") or {}).get(col)
    if not p or base is None or row.get(col) is None or base.get(col) is None:
        return ""
    lo, hi = p["ci"]
    return f"{row[col] - base[col]:+.1f} [{lo:+.1f},{hi:+.1f}]{'*' if p['significant'] else ' '}"


def run_demo(
    cfg: DemoConfig,
    output: str | Path,
    progress: bool = True,
    log: Callable[[str], None] = print,
    from_scratch: bool = False,
) -> DemoResult:
    """Run (or resume) the whole demo under ``output``; see the module docstring for the stages and layout.

    Args:
        cfg: What to generate, train and compare (``fsc_clip.demo.demo_config`` gives the presets).
        output: Demo folder; reused stages are skipped.
        progress: Show progress bars.
        log: Where stage messages go.
        from_scratch: Re-train the pre-trained base even if this folder or the shared cache has one.

    Returns:
        The :class:`DemoResult` (report paths, per-stage timings, the table rows).
    """
    import yaml

    out = Path(output).expanduser().resolve()
    ensure_writable_dir(out, "demo output folder")  # before any work
    write_text(out / "demo_config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    d = _Demo(cfg, out, progress, log)
    started, cpu0 = datetime.now(timezone.utc), time.process_time()
    d.stage("world", lambda: _stage_world(d))
    base = d.stage("pretrain", lambda: _stage_pretrain(d, from_scratch))
    negatives = d.stage("negatives", lambda: _stage_negatives(d))
    runs = d.stage("finetune", lambda: _stage_finetune(d, base, negatives))
    eval_dirs = d.stage("evaluate", lambda: _stage_evaluate(d, {BASE: base, **runs}))
    d.stage("report", lambda: _stage_report(d, eval_dirs))
    d.result.timings["total"] = round(time.perf_counter() - d.t0, 1)
    _append_timings(d, started, time.process_time() - cpu0)
    return d.result


def _append_timings(d: _Demo, started: datetime, cpu_s: float) -> None:
    """Add this invocation to ``timings.json``'s history; a cached re-run never hides the run that did the work."""
    path = d.out / "timings.json"
    try:
        history = json.loads(path.read_text(encoding="utf-8")).get("invocations", [])
    except (OSError, ValueError, AttributeError):
        history = []  # no file yet, or the single-invocation layout of older versions
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    history.append({
        "started": started.isoformat(timespec="seconds"),
        "timings_s": d.result.timings,
        "cpu_s": round(cpu_s, 1),  # this process's user + sys time (torch threads included)
        "load_avg_1_5_15": [round(x, 2) for x in load] if load else None,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or None,
        "cached": d.result.cached,
    })  # fmt: skip
    worked = [h for h in history if set(h["timings_s"]) - {"total"} and not _all_cached(h)]
    write_json(path, {"invocations": history, "last_full_run": worked[-1] if worked else None}, indent=1)


def _all_cached(entry: dict[str, Any]) -> bool:
    return all(v < 1.0 for k, v in entry["timings_s"].items() if k not in ("total", "report"))
