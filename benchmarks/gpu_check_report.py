"""Table of a ``benchmarks/gpu_check.sh`` run: train step, memory estimate vs measured, eval throughput.

Usage:
    python benchmarks/gpu_check_report.py OUT_DIR [--mode gpu|cpu]

Reads ``train_step.json``, ``memory_<loss>.json`` and ``eval.json`` from ``OUT_DIR`` and writes ``summary.json``
and ``summary.md`` there. The estimate is compared with the measurement only on CUDA, where both mean the same
thing (``torch.cuda.max_memory_allocated`` over a step, parameters and optimizer state included); on the CPU the
train-step benchmark measures the peak RSS *above* the pre-step RSS, so the ratio is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LOSSES = ("clip", "negclip", "fsc-clip")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        sys.exit(f"gpu_check_report: cannot read {path} ({err}); did that part of gpu_check.sh run?")


def train_rows(out: Path) -> list[dict[str, Any]]:
    """One row per method: measured step time, throughput and peak, beside the estimated peak."""
    measured = {r["method"]: r for r in _read(out / "train_step.json") if "step_ms" in r}
    rows = []
    for loss in LOSSES:
        rec, est = measured.get(loss), _read(out / f"memory_{loss}.json")[0]
        row = {"method": loss, "estimate_mb": est["total_mb"], "estimate_label": est["label"]}
        if rec is not None:
            like_for_like = rec["peak_mb_kind"] == "cuda max_memory_allocated"
            row.update(step_ms=round(rec["step_ms"], 1), samples_per_s=round(rec["samples_per_s"], 1),
                       measured_mb=round(rec["peak_mb"], 1), measured_kind=rec["peak_mb_kind"],
                       estimate_over_measured=round(est["total_mb"] / rec["peak_mb"], 3) if like_for_like else None,
                       device=rec.get("device"), precision=rec.get("precision"))  # fmt: skip
        rows.append(row)
    return rows


def eval_rows(out: Path) -> list[dict[str, Any]]:
    keys = ("model", "items", "seconds", "items_per_s", "images_per_s", "device", "precision", "batch_size")
    return [{k: run.get(k) for k in keys} for run in _read(out / "eval.json")["runs"]]


def markdown(mode: str, train: list[dict[str, Any]], evals: list[dict[str, Any]]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else str(v)

    lines = [f"# gpu_check ({mode})", ""]
    if mode != "gpu":
        lines += ["CPU smoke run (no CUDA device): the numbers below say nothing about a GPU.", ""]
    cols = ["method", "step_ms", "samples_per_s", "measured_mb", "estimate_mb", "estimate_over_measured"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in train]
    cols = ["model", "items", "seconds", "items_per_s", "images_per_s", "precision"]
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in evals]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder gpu_check.sh wrote")
    parser.add_argument("--mode", default="gpu", choices=["gpu", "cpu"])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from fsc_clip.fileio import write_json, write_text

    train, evals = train_rows(args.out), eval_rows(args.out)
    write_json(args.out / "summary.json", {"mode": args.mode, "train_step": train, "eval": evals})
    text = markdown(args.mode, train, evals)
    write_text(args.out / "summary.md", text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
