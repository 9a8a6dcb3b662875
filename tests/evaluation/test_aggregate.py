"""Aggregation: recompute the published benchmark columns and comp_avg from the published sub-scores.

``data/vl_compo_published_rows.csv`` holds a few rows of vl_compo's ``individual_results.csv`` joined with
``results.csv`` (public numbers; columns ``col:<benchmark>`` are the published aggregate columns). Every row of the
full published tables, shipped as package data (``resources/published/vl_compo_*_full.csv``), is checked too.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fsc_clip.evaluation.aggregate import (
    FSC_BENCHMARKS,
    VL_COMPO_BENCHMARKS,
    Headline,
    Profile,
    add_headline,
    benchmark_score,
    compute_columns,
    get_profile,
    load_scores,
    mean,
)

DATA = Path(__file__).parent / "data" / "vl_compo_published_rows.csv"
PUBLISHED = Path(__file__).parents[2] / "src" / "fsc_clip" / "resources" / "published"


def _rows_from_fixture() -> list[tuple[dict[str, float], dict[str, float]]]:
    rows = []
    with DATA.open(newline="") as f:
        for r in csv.DictReader(f):
            cols = {k[4:]: float(v) for k, v in r.items() if k.startswith("col:")}
            subs = {k: float(v) for k, v in r.items() if "::" in k}
            rows.append((subs, cols))
    return rows


def _rows_from_published() -> list[tuple[dict[str, float], dict[str, float]]]:
    ind = list(csv.DictReader((PUBLISHED / "vl_compo_individual_results_full.csv").open(newline="")))
    res = {
        (r["arch"], r["pretrained"], r["family"]): r
        for r in csv.DictReader((PUBLISHED / "vl_compo_results_full.csv").open())
    }
    rows = []
    for r in ind:
        key = (r["arch"], r["pretrained"], r["family"])
        if key in res:
            subs = {k: float(v) for k, v in r.items() if "::" in k and v not in ("", None)}
            cols = {b: float(res[key][b]) for b in (*VL_COMPO_BENCHMARKS, "comp_avg")}
            rows.append((subs, cols))
    return rows


def _check(rows):
    assert rows
    for subs, cols in rows:
        got = compute_columns("vl_compo", subs)
        for b in (*VL_COMPO_BENCHMARKS, "comp_avg"):
            assert got[b] == pytest.approx(cols[b], abs=1e-6), b


def test_published_rows_fixture():
    rows = _rows_from_fixture()
    assert len(rows) >= 10
    _check(rows)


def test_every_published_row():
    rows = _rows_from_published()
    assert len(rows) == 201  # 202 rows; one row's family differs between the two published tables
    _check(rows)


def test_sugarcrepe_is_not_the_plain_mean():
    subs, _ = _rows_from_fixture()[0]
    plain = mean(subs[k] for k in subs if k.startswith("sugarcrepe::"))
    assert abs(benchmark_score("sugarcrepe", subs) - plain) > 1e-3


def test_fsc_profile_comp_is_mean_of_11_and_missing_is_none():
    subs, cols = _rows_from_fixture()[0]
    spec = {f"spec::{s}::{d}": 30.0 + i for i, (s, d) in enumerate(
        (s, d) for s in ("absolute_size", "relative_size", "absolute_spatial", "relative_spatial", "existence", "count")
        for d in ("i2t", "t2i"))}  # fmt: skip
    got = compute_columns("fsc", {**subs, **spec})
    assert got["spec"] == pytest.approx(35.5)
    assert len(FSC_BENCHMARKS) == 11 and "colorswap" not in FSC_BENCHMARKS
    want = sum([cols[b] for b in FSC_BENCHMARKS if b != "spec"] + [35.5]) / 11
    assert got["Comp"] == pytest.approx(want, abs=1e-9)
    partial = compute_columns("fsc", subs)  # no SPEC sub-scores
    assert partial["spec"] is None and partial["Comp"] is None


def test_profiles_are_extensible(tmp_path):
    from fsc_clip.evaluation.aggregate import PROFILES

    prof = Profile("test-extensible", ("winoground",))
    saved = PROFILES.snapshot()
    PROFILES.register("test-extensible", prof, override=True)
    try:
        add_headline("test-extensible", Headline("double", lambda cols, subs: 2 * cols["winoground"]))
        add_headline("test-extensible", Headline("double", lambda cols, subs: 3 * cols["winoground"]))  # replaces
        assert get_profile("test-extensible").columns() == ["winoground", "double"]
        assert compute_columns("test-extensible", {"winoground::group": 10.0})["double"] == 30.0
    finally:
        PROFILES.restore(saved)  # no registration leaks into other tests
    (tmp_path / "winoground.json").write_text('{"benchmark": "winoground", "scores": {"winoground::group": 1.5}}')
    (tmp_path / "summary.json").write_text('{"benchmarks": {}}')
    assert load_scores(tmp_path) == {"winoground::group": 1.5}
