"""``fsc-clip demo``: presets, and the quick demo end to end through the CLI (slow), then resumed from its cache."""

from __future__ import annotations

import csv

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


def test_format_table_marks_missing_values():
    text = format_table([{"model": "base", "Comp": 50.0, "ZS": None}], ("Comp", "ZS"))
    lines = text.splitlines()
    assert lines[0].split() == ["model", "Comp", "ZS"]
    assert lines[2].split() == ["base", "50.00", "-"]


@pytest.mark.slow
def test_quick_demo_end_to_end_then_cached(tmp_path, capsys):
    from fsc_clip.cli.main import main
    from fsc_clip.demo import run_demo

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    report = out / "report"
    for name in ("summary.csv", "subscores.csv", "report.md", "report.html", "plots/comp_vs_zs.png"):
        assert (report / name).is_file(), name
    assert str(report / "report.html") in printed[-2]
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
