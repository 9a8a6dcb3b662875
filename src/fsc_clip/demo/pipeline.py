"""``fsc-clip demo``: the whole method end to end on the embedded synthetic world, every stage cached.

Stages (each skipped when its outputs exist for the same settings, so an interrupted demo resumes):

1. ``world``: render the synthetic world (training TSV + five test sets in their real formats).
2. ``pretrain``: train a tiny CLIP from scratch with the CLIP loss on the training split (the "pre-trained
   model" every method starts from) with the real trainer.
3. ``negatives``: precompute hard negatives for the fine-tuning split with the real negatives pipeline
   (the NegCLIP swaps come with the TSV, as in COCO's ``train_neg_clip.tsv``).
4. ``finetune``: fine-tune copies of it with CLIP, NegCLIP and FSC-CLIP (full and LoRA).
5. ``evaluate``: evaluate the base and every fine-tuned model on the synthetic benchmarks with the real runner.
6. ``report``: the holistic report (profile ``synthetic``) as CSV / Markdown / HTML / PNG.

Output layout::

    <output>/world/            the synthetic world (the data root of the synthetic benchmarks)
    <output>/finetune/         fine-tuning split TSV + precomputed negatives JSONL
    <output>/runs/<model>/     trainer run directories (base = the pre-trained model)
    <output>/eval/<model>/     one result JSON per benchmark
    <output>/report/           summary.csv, subscores.csv, report.md, report.html, plots/*.png
    <output>/timings.json      wall time per stage of the last invocation
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fsc_clip.config import to_dict
from fsc_clip.demo.config import DemoConfig, MethodConfig, StageConfig

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


class _Demo:
    """One invocation: config, folders, logging and the stage bookkeeping."""

    def __init__(self, cfg: DemoConfig, output: Path, progress: bool, log: Callable[[str], None]) -> None:
        self.cfg, self.out, self.progress, self.log = cfg, output, progress, log
        self.world = output / "world"
        self.result = DemoResult(output=output, report_files={})

    def stage(self, name: str, fn: Callable[[], Any]) -> Any:
        self.log(f"\n=== demo stage: {name} ===")
        t0 = time.perf_counter()
        value = fn()
        self.result.timings[name] = round(time.perf_counter() - t0, 1)
        self.log(f"=== {name}: {self.result.timings[name]:.1f} s ===")
        return value


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


def _train_config(d: _Demo, name: str, stage: StageConfig, data: dict[str, Any], method: MethodConfig, pretrained):
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
        "seed": d.cfg.seed,
        "output": str(d.out / "runs"),
        "name": name,
        "device": "cpu",
        "resume": "auto",
    }
    return from_dict(TrainConfig, raw)


def _train(d: _Demo, name: str, tc: Any) -> Path:
    """Run (or resume, or reuse) one training run; a run with other settings under the same name is replaced."""
    from fsc_clip.training import train

    run_dir = d.out / "runs" / name
    settings = to_dict(tc)
    settings.pop("logging", None)  # progress bars do not change the result
    fingerprint = json.dumps(settings, sort_keys=True, default=str)
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
    stamp.write_text(fingerprint)
    t0 = time.perf_counter()
    train(tc)
    done.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
    return run_dir


def _stage_pretrain(d: _Demo) -> Path:
    cfg = d.cfg
    data = {"train_data": str(d.world / "train" / "train_neg_clip.tsv"), "negatives": None, "_rows": cfg.world.n_train}
    method = MethodConfig(name=BASE, loss={"loss_name": "clip"})
    return _train(d, BASE, _train_config(d, BASE, cfg.pretrain, data, method, None))


def _finetune_split(d: _Demo) -> Path:
    """The first ``finetune_rows`` rows of the training TSV (images stay in the world folder)."""
    src = d.world / "train" / "train_neg_clip.tsv"
    dst = d.out / "finetune" / "finetune_neg_clip.tsv"
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8") as f:
        lines = [next(f) for _ in range(d.cfg.finetune_rows + 1)]
    text = "".join(lines)
    if not dst.exists() or dst.read_text(encoding="utf-8") != text:
        dst.write_text(text, encoding="utf-8")
    return dst


def _online_types(d: _Demo) -> list[str]:
    """Negative types the methods need beyond the TSV's own NegCLIP swaps."""
    from fsc_clip.negatives import style_types

    types: list[str] = []
    for m in d.cfg.methods:
        for t in style_types(m.negatives) if m.negatives else []:
            if t != "negclip" and t not in types:
                types.append(t)
    return types


def _stage_negatives(d: _Demo) -> Path | None:
    from fsc_clip.negatives.precompute import PrecomputeConfig, precompute

    split = _finetune_split(d)
    types = _online_types(d)
    if not types:
        return None
    out = split.parent / f"negatives_{'_'.join(types)}_k{d.cfg.negatives_per_type}_s{d.cfg.seed}.jsonl"
    n_captions = len({row["title"] for row in csv.DictReader(split.open(encoding="utf-8"), delimiter="\t")})
    if out.exists() and sum(1 for _ in out.open(encoding="utf-8")) >= n_captions:
        d.result.cached.append("negatives")
        d.log(f"negatives: reusing {out}")
        return out
    pc = PrecomputeConfig(
        input=str(split),
        output=str(out),
        caption_column="title",
        style=",".join(types),
        per_type=d.cfg.negatives_per_type,
        seed=d.cfg.seed,
        workers=1,
        progress=d.progress,
    )
    counts = precompute(pc)
    d.log(f"negatives: {counts} -> {out}")
    return out


def _stage_finetune(d: _Demo, base: Path, negatives: Path | None) -> dict[str, Path]:
    split = d.out / "finetune" / "finetune_neg_clip.tsv"
    runs = {}
    for m in d.cfg.methods:
        data = {"train_data": str(split), "image_root": str(d.world / "train"), "negatives": m.negatives,
                "precomputed_negatives": str(negatives) if (m.negatives and negatives) else None,
                "_rows": d.cfg.finetune_rows}  # fmt: skip
        d.log(f"--- fine-tuning {m.name} (loss {m.loss.get('loss_name')}, negatives {m.negatives}, "
              f"{'LoRA r=' + str(m.lora_rank) if m.lora_rank else 'full'}) ---")  # fmt: skip
        runs[m.name] = _train(d, m.name, _train_config(d, m.name, d.cfg.finetune, data, m, str(base)))
    return runs


@lru_cache(maxsize=1)
def _named_spec_class() -> type:
    """A ``ModelSpec`` whose label is the demo's row name (the lead's label is ``<arch>/latest.pt`` for runs)."""
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
        if stamp.exists() and all((out / f"{b}.json").exists() for b in BENCHMARKS):
            d.result.cached.append(f"eval:{name}")
            d.log(f"evaluate {name}: reusing {out}")
        else:
            d.log(f"--- evaluating {name} ---")
            out.mkdir(parents=True, exist_ok=True)
            stamp.write_text(expected)
            lm = load_model(d.cfg.model, str(run_dir))
            lm.spec = _named_spec_class()(**lm.spec.to_dict(), display=f"{d.cfg.model}/{name}")
            evaluate(lm, list(BENCHMARKS), d.world, out, batch_size=d.cfg.eval_batch_size, progress=d.progress)
        dirs[name] = out
    return dirs


def _stage_report(d: _Demo, eval_dirs: dict[str, Path]) -> None:
    from fsc_clip.evaluation.report import build_report, write_report

    report = build_report(list(eval_dirs.values()), profile=PROFILE, baseline=BASE)
    d.result.report_files = write_report(report, d.out / "report")
    d.result.rows = [{"model": r.name, **{c: r.columns.get(c) for c in report.columns}} for r in report.rows]


# ----------------------------------------------------------------------------------------------- entry point


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """A plain-text table of the headline and compositional columns (``-`` for missing values)."""
    short = {c: c.replace("synthetic_", "") for c in columns}
    width = max([len("model"), *(len(r["model"]) for r in rows)])
    head = f"{'model':<{width}}  " + "  ".join(f"{short[c]:>11}" for c in columns)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = ("-" if r.get(c) is None else f"{r[c]:.2f}" for c in columns)
        lines.append(f"{r['model']:<{width}}  " + "  ".join(f"{v:>11}" for v in cells))
    return "\n".join(lines)


def run_demo(
    cfg: DemoConfig, output: str | Path, progress: bool = True, log: Callable[[str], None] = print
) -> DemoResult:
    """Run (or resume) the whole demo under ``output``; see the module docstring for the stages and layout.

    Args:
        cfg: What to generate, train and compare (``fsc_clip.demo.demo_config`` gives the presets).
        output: Demo folder; reused stages are skipped.
        progress: Show progress bars.
        log: Where stage messages go.

    Returns:
        The :class:`DemoResult` (report paths, per-stage timings, the table rows).
    """
    import yaml

    out = Path(output).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo_config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
    d = _Demo(cfg, out, progress, log)
    t0 = time.perf_counter()
    d.stage("world", lambda: _stage_world(d))
    base = d.stage("pretrain", lambda: _stage_pretrain(d))
    negatives = d.stage("negatives", lambda: _stage_negatives(d))
    runs = d.stage("finetune", lambda: _stage_finetune(d, base, negatives))
    eval_dirs = d.stage("evaluate", lambda: _stage_evaluate(d, {BASE: base, **runs}))
    d.stage("report", lambda: _stage_report(d, eval_dirs))
    d.result.timings["total"] = round(time.perf_counter() - t0, 1)
    timings = {"timings_s": d.result.timings, "cached": d.result.cached}
    (out / "timings.json").write_text(json.dumps(timings, indent=1) + "\n", encoding="utf-8")
    return d.result
