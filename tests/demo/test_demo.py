"""``fsc-clip demo``: presets, and the quick demo end to end through the CLI (slow), then resumed from its cache."""

from __future__ import annotations

import csv
import json

import pytest

from fsc_clip.config import ConfigError
from fsc_clip.demo import demo_config, format_table


def test_presets_and_overrides():
    full, quick = demo_config(), demo_config(quick=True, seed=3, overrides=["finetune.steps=5"])
    assert quick.world.n_train < full.world.n_train and quick.pretrain.steps < full.pretrain.steps
    assert quick.seed == quick.world.seed == 3 and quick.finetune.steps == 5
    assert [m.name for m in full.methods] == ["clip-ft", "negclip", "fsc-clip", "fsc-clip-lora"]
    assert full.methods[3].lora_rank > 0 and full.methods[2].loss["loss_name"] == "fsc-clip"
    with pytest.raises(ConfigError):
        demo_config(overrides=["pretrain.steps=0"])


def test_format_table_marks_missing_values_and_shows_paired_intervals():
    text = format_table([{"model": "base", "Comp": 50.0, "ZS": None}], ("Comp", "ZS"))
    lines = text.splitlines()
    assert lines[0].split() == ["model", "Comp", "ZS"]
    assert lines[2].split() == ["base", "50.00", "-"]
    rows = [
        {"model": "base", "Comp": 50.0, "ci": {"Comp": [48.0, 52.0]}},
        {"model": "negclip", "Comp": 61.5, "ci": {"Comp": [59.0, 64.0]},
         "paired": {"Comp": {"ci": [9.0, 14.0], "significant": True}}},
    ]  # fmt: skip
    lines = format_table(rows, ("Comp",)).splitlines()
    assert lines[2].split() == ["base", "50.0", "±2.0"]
    assert lines[3].split() == ["negclip", "61.5", "±2.5"]
    assert lines[4].split() == ["Δ", "base", "+11.5", "[+9.0,+14.0]*"]


def test_quick_preset_says_smoke_test():
    from fsc_clip.cli.demo import SMOKE_TEST

    assert "smoke test" in SMOKE_TEST


@pytest.mark.slow
def test_quick_demo_end_to_end_then_cached(tmp_path, capsys, monkeypatch):
    from fsc_clip.cli.main import main
    from fsc_clip.demo import run_demo
    from fsc_clip.demo.pipeline import base_cache_dir

    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert "smoke test" in printed[0] and "smoke test" in "\n".join(printed[-6:])
    assert (base_cache_dir(demo_config(quick=True)) / "demo_done.json").is_file()  # the base is shared
    report = out / "report"
    for name in ("summary.csv", "subscores.csv", "report.md", "report.html", "plots/comp_vs_zs.png"):
        assert (report / name).is_file(), name
    assert str(report / "report.html") in printed[-2]
    assert (out / "eval" / "negclip" / "synthetic_aro.scores.npz").is_file()  # per-item outcomes: paired intervals
    first = json.loads((out / "timings.json").read_text())
    with (report / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["base", "clip-ft", "negclip", "fsc-clip", "fsc-clip-lora"]
    assert [r["model"] for r in rows] == [f"fsc-demo/{r['run']}" for r in rows]
    for r in rows:
        for col in ("Comp", "ZS", "I2T", "T2I"):
            assert 0.0 <= float(r[col]) <= 100.0, (r["run"], col)

    again = run_demo(demo_config(quick=True), out, progress=False, log=lambda _msg: None)
    expected = {"world", "base", "negatives", "clip-ft", "negclip", "fsc-clip", "fsc-clip-lora"}
    assert expected | {f"eval:{r['run']}" for r in rows} <= set(again.cached)
    assert [r["model"] for r in again.rows] == [r["run"] for r in rows]
    timings = json.loads((out / "timings.json").read_text())
    assert timings["invocations"][0] == first["invocations"][0]  # the cached re-run keeps the run that did the work
    assert len(timings["invocations"]) == 2 and timings["last_full_run"] == first["invocations"][0]
    assert timings["invocations"][1]["timings_s"]["finetune"] < 1.0

    other = tmp_path / "other"  # another folder reuses the shared base instead of pre-training again
    third = run_demo(demo_config(quick=True), other, progress=False, log=lambda _msg: None)
    assert "base:shared" in third.cached and "clip-ft" not in third.cached


def test_seed_runs_are_named_and_summarised_as_mean_and_std():
    from fsc_clip.demo.pipeline import format_seed_table, run_name, seed_summary

    assert [run_name("negclip", k, 3 + k) for k in range(3)] == ["negclip", "negclip@seed4", "negclip@seed5"]
    rows = [
        {"model": "base", "Comp": 40.0},
        {"model": "negclip", "Comp": 50.0},
        {"model": "negclip@seed1", "Comp": 54.0},
        {"model": "negclip@seed2", "Comp": None},
    ]
    summary = seed_summary(rows, ("Comp",))
    assert summary[0] == {"model": "base", "n": 1, "Comp": (40.0, 0.0)}
    assert summary[1]["n"] == 3 and summary[1]["Comp"] == (52.0, pytest.approx(2.0**1.5))  # stdev([50, 54]) = 2.83
    assert "52.0 ± 2.8" in format_seed_table(summary, ("Comp",))
    with pytest.raises(ConfigError):
        demo_config(overrides=["seeds=0"])
