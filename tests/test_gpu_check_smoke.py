"""``benchmarks/gpu_check.sh`` in its reduced CPU version (the smoke test CI runs), and its report's arithmetic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_check_report  # noqa: E402


@pytest.mark.slow
def test_gpu_check_cpu_version_runs_every_part(tmp_path: Path):
    env = {**os.environ, "FSC_GPU_CHECK_CPU": "1", "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "cpu"
    assert [r["method"] for r in summary["train_step"]] == ["clip", "negclip", "fsc-clip"]
    for row in summary["train_step"]:
        assert row["step_ms"] > 0 and row["samples_per_s"] > 0 and row["estimate_mb"] > 0
        assert row["estimate_label"].startswith("fsc-tiny B=8")
        assert row["estimate_over_measured"] is None  # CPU RSS is not max_memory_allocated: no ratio
    (run,) = summary["eval"]
    assert run["model"] == "fsc-tiny" and run["items"] > 0 and run["images_per_s"] > 0
    assert "CPU smoke run" in (tmp_path / "summary.md").read_text()


def _write(out: Path, kind: str) -> None:
    train = [
        {"method": m, "step_ms": 100.0 + i, "samples_per_s": 2560.0, "peak_mb": 1000.0 * (i + 1), "peak_mb_kind": kind,
         "device": "cuda:0", "precision": "amp_bf16"}
        for i, m in enumerate(gpu_check_report.LOSSES)
    ]  # fmt: skip
    (out / "train_step.json").write_text(json.dumps(train))
    for loss in gpu_check_report.LOSSES:
        (out / f"memory_{loss}.json").write_text(json.dumps([{"label": f"ViT-B-32 {loss}", "total_mb": 1500.0}]))
    runs = [{"model": "ViT-B-32", "items": 10, "seconds": 2.0, "items_per_s": 5.0, "images_per_s": 4.0}]
    (out / "eval.json").write_text(json.dumps({"runs": runs}))


def test_report_compares_estimate_with_cuda_peak_only(tmp_path: Path, capsys):
    _write(tmp_path, "cuda max_memory_allocated")
    assert gpu_check_report.main([str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "summary.json").read_text())["train_step"]
    assert [r["estimate_over_measured"] for r in rows] == [1.5, 0.75, 0.5]  # 1500 / (1000, 2000, 3000)
    assert "| fsc-clip | 102.0 | 2560.0 | 3000.0 | 1500.0 | 0.5 |" in capsys.readouterr().out
    _write(tmp_path, "peak RSS above pre-step RSS")
    gpu_check_report.main([str(tmp_path), "--mode", "cpu"])
    assert all(
        r["estimate_over_measured"] is None for r in json.loads((tmp_path / "summary.json").read_text())["train_step"]
    )


def test_report_names_a_missing_part(tmp_path: Path):
    with pytest.raises(SystemExit, match=r"train_step\.json"):
        gpu_check_report.main([str(tmp_path)])
