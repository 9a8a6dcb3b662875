"""``fsc-clip reproduce``: ours vs published per column, differences and the 0.5 pt flag."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fsc_clip.cli.main import main
from fsc_clip.models.zoo import get_entry
from fsc_clip.models.zoo.reproduce import compare, format_lines, normalise, ours_from_summary

PUBLISHED = Path(__file__).resolve().parents[2] / "src" / "fsc_clip" / "resources" / "published"


def _row(table: str, **match: str) -> dict[str, str]:
    with open(PUBLISHED / table, encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if all(r[k] == v for k, v in match.items())]
    assert len(rows) == 1
    return rows[0]


def test_normalise():
    assert [normalise(c) for c in ("I2T Ret", "Comp", "svo_probes", "T2I")] == ["i2t", "comp", "svo_probes", "t2i"]


def test_compare_against_both_published_rows():
    entry = get_entry("fsc-clip-coco-vit-b-32")
    ext = _row("fsc_clip_extended_results.csv", CLIP="fsc-clip", Pretrained_Finetined="openai_coco", Arch="ViT-B-32")
    summary = {
        "benchmarks": {"aro": float(ext["aro"]) + 0.3, "sugarcrepe": None},
        "profiles": {"fsc": {"Comp": 55.2}, "extra": {"I2T": 66.0}},
    }
    diffs = {(d.table, d.column): d for d in compare(entry, ours_from_summary(summary))}
    aro = diffs[("fsc_clip_extended_results.csv", "aro")]
    assert aro.diff == pytest.approx(0.3) and not aro.flagged
    assert diffs[("fsc_clip_paper_table1.csv", "aro")].diff == pytest.approx(float(ext["aro"]) + 0.3 - 85.1)
    assert diffs[("fsc_clip_paper_table1.csv", "Comp")].diff == pytest.approx(1.0)
    assert diffs[("fsc_clip_paper_table1.csv", "Comp")].flagged
    assert diffs[("fsc_clip_extended_results.csv", "I2T Ret")].diff == pytest.approx(66.0 - float(ext["I2T Ret"]))
    assert not any(c == "sugarcrepe" for _t, c in diffs)  # ours missing: not compared
    lines = format_lines(entry, list(diffs.values()))
    assert sum("<-- off" in line for line in lines) == 2 and "2 column(s) off" in lines[-1]


def test_vl_compo_row_uses_its_own_columns():
    diffs = compare(get_entry("dac-sam"), {"comp_avg": 49.8, "whatsup": 42.0})
    tables = {(d.table, d.column) for d in diffs}
    assert ("vl_compo_results_full.csv", "comp_avg") in tables and ("fsc_clip_paper_table1.csv", "whatsup") in tables


def test_reproduce_without_weights_fails_fast(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    code = main(
        ["reproduce", "negclip", "--data-root", str(tmp_path), "--output", str(tmp_path / "o"), "--device", "cpu"]
    )
    assert code == 2 and "negclip.pth" in capsys.readouterr().err
