"""Bootstrap intervals and paired comparisons (fsc_clip.evaluation.stats) against independent computations."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from eval_fixtures import write_fixture

from fsc_clip.cli.main import main
from fsc_clip.evaluation.base import Benchmark, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks.aro import ARO, excluded_relations
from fsc_clip.evaluation.stats import (
    RESCORERS,
    BootstrapConfig,
    RunReplicates,
    benchmark_intervals,
    draw_blocks,
    interval,
    items_table,
    load_tables,
    paired_columns,
    paired_difference,
    replicates,
    retrieval_table,
    zeroshot_table,
)
from fsc_clip.evaluation.tasks.multiple_choice import multiple_choice_correct
from fsc_clip.evaluation.tasks.retrieval import competitors, retrieval_scores
from fsc_clip.evaluation.tasks.zeroshot import _strict_top1, compute_metric

REF = ImageRef("unused.jpg")


class _OneSubset(Benchmark):
    """A plain pooled-accuracy benchmark (the base class's own score() and aggregate())."""

    name = "toy"
    sub_scores = ("acc",)


def _mc_items(correct, subset="acc", category=""):
    return [ImageToTextItem(REF, ["pos", "neg", "neg2"], 0, subset, category) for _ in correct]


def test_percentile_interval_covers_the_true_accuracy_at_the_stated_rate():
    """400 seeded repetitions: n=200 items drawn from a population of accuracy 0.7, scored from a hand-made
    similarity matrix by the real multiple-choice scorer; the 95 % interval must cover 70.0 about 95 % of the time.

    Tolerance: the coverage estimate from 400 repetitions has binomial SE sqrt(.95*.05/400) = 1.09 points; we accept
    3 SE (3.3 points) plus 1 point for the known small-sample undercoverage of the percentile bootstrap of a
    proportion at n=200, i.e. |coverage - 95 %| <= 4.3 points.
    """
    rng = np.random.default_rng(123)
    n, p, reps, hits = 200, 0.7, 400, 0
    bench = _OneSubset()
    cfg = BootstrapConfig(n_resamples=1000, seed=7)
    for _ in range(reps):
        right = rng.random(n) < p
        sims = rng.random((n, 3)) * 0.5  # [n, 3] candidate scores; the positive (0) wins exactly when `right`
        sims[:, 0] = np.where(right, 0.9, 0.1)
        correct = multiple_choice_correct(torch.from_numpy(sims), torch.zeros(n, dtype=torch.long)).tolist()
        table = items_table(_mc_items(correct), {"correct": correct})
        lo, hi = benchmark_intervals(bench, [table], cfg)["ci"]["toy::acc"]
        hits += lo <= 100 * p <= hi
    coverage = hits / reps
    assert abs(coverage - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / reps) + 0.01, coverage


def test_draws_stay_in_their_stratum_and_are_seeded():
    strata = np.array([2, 0, 2, 1, 1, 0, 2, 2, 5])
    cfg = BootstrapConfig(n_resamples=3000, seed=3)
    blocks = list(draw_blocks(strata, cfg, "bench"))
    idx = np.concatenate(blocks)
    assert idx.shape == (3000, 9) and (strata[idx] == strata[None, :]).all()
    # uniform within a stratum: unit 0's column picks each of the 4 units of stratum 2 about 750 times
    counts = np.bincount(idx[:, 0], minlength=9)[strata == 2]
    assert counts.sum() == 3000 and (abs(counts - 750) < 5 * math.sqrt(3000 * 0.25 * 0.75)).all()
    again = np.concatenate(list(draw_blocks(strata, cfg, "bench")))
    other = np.concatenate(list(draw_blocks(strata, BootstrapConfig(3000, seed=4), "bench")))
    assert (again == idx).all() and not (other == idx).all()


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    rng = np.random.default_rng(0)
    correct = (rng.random(300) < 0.6).tolist()
    items = _mc_items(correct, category="")
    a = replicates(_OneSubset(), [items_table(items, {"correct": correct})], BootstrapConfig())
    b = replicates(_OneSubset(), [items_table(items, {"correct": list(correct)})], BootstrapConfig())
    diff = paired_difference(a["toy::acc"], b["toy::acc"])
    assert diff == {"ci": [0.0, 0.0], "significant": False}
    # and a real difference on the same items is paired: one extra correct item out of 300 -> exactly +1/3 point
    flipped = list(correct)
    flipped[correct.index(False)] = True
    c = replicates(_OneSubset(), [items_table(items, {"correct": flipped})], BootstrapConfig())
    d = c["toy::acc"] - a["toy::acc"]
    assert d.min() >= 0 and d.max() > 0 and abs(100 * (sum(flipped) - sum(correct)) / 300 - 1 / 3) < 1e-12


def test_aro_column_interval_matches_a_naive_float64_loop():
    """ARO: macro over relations (excluded ones dropped), macro over attributes (>= 25 items), pooled Order parts;
    column = mean of the 4. A plain loop over the same draws must give the same percentile interval."""
    excluded = sorted(excluded_relations())[0]
    rng = np.random.default_rng(5)
    spec = [("VG_Relation", "on", 9), ("VG_Relation", "eating", 4), ("VG_Relation", excluded, 3),
            ("VG_Attribute", "red_blue", 25), ("VG_Attribute", "big_small", 24), ("COCO_Order", "", 7),
            ("Flickr30k_Order", "", 6)]  # fmt: skip
    items, correct = [], []
    for subset, cat, n in spec:
        for _ in range(n):
            items.append(ImageToTextItem(REF, ["p", "n"], 0, subset, cat))
            correct.append(bool(rng.random() < 0.6))
    cfg = BootstrapConfig(n_resamples=500, seed=11)
    table = items_table(items, {"correct": correct})
    got = benchmark_intervals(ARO(), [table], cfg)["ci"]

    idx = np.concatenate(list(draw_blocks(table.strata, cfg, "aro")))  # the same draws, then plain Python
    columns, relation = [], []
    for row in idx:
        acc: dict[tuple[str, str], list[float]] = {}
        for j, it in enumerate(items):
            cell = acc.setdefault((it.subset, it.category), [0.0, 0.0])
            cell[0] += float(correct[row[j]])
            cell[1] += 1.0
        rel = [h / n for (s, c), (h, n) in acc.items() if s == "VG_Relation" and c != excluded]
        att = [h / n for (s, c), (h, n) in acc.items() if s == "VG_Attribute" and n >= 25]
        coco, flickr = acc[("COCO_Order", "")], acc[("Flickr30k_Order", "")]
        subs = [100 * sum(rel) / len(rel), 100 * sum(att) / len(att), 100 * coco[0] / coco[1],
                100 * flickr[0] / flickr[1]]  # fmt: skip
        relation.append(subs[0])
        columns.append(sum(subs) / 4)
    assert got["aro"] == pytest.approx(list(np.quantile(columns, [0.025, 0.975])), abs=1e-9)
    assert got["aro::VG_Relation"] == pytest.approx(list(np.quantile(relation, [0.025, 0.975])), abs=1e-9)


def test_zeroshot_and_retrieval_rescorers_reproduce_the_benchmark_metrics():
    gen = torch.Generator().manual_seed(0)
    identity = lambda n: np.arange(n)[None]  # noqa: E731
    probs = torch.rand(60, 4, generator=gen).softmax(dim=1)
    labels = torch.arange(60) % 4
    for metric in ("accuracy", "mean-per-class"):
        table = zeroshot_table(
            "elevator::x", metric, _strict_top1(probs, labels).numpy(), labels.numpy(), probs.numpy()
        )
        got = RESCORERS.get("zeroshot")(None, table, identity(60))["elevator::x"][0]
        assert got == pytest.approx(100 * compute_metric(metric, probs, labels), abs=1e-4)  # top-1 averages in fp32
    binary = labels % 2
    table = zeroshot_table("elevator::y", "roc_auc", _strict_top1(probs[:, :2], binary).numpy(), binary.numpy(),
                           probs[:, :2].numpy())  # fmt: skip
    got = RESCORERS.get("zeroshot")(None, table, identity(60))["elevator::y"][0]
    assert got == pytest.approx(100 * compute_metric("roc_auc", probs[:, :2], binary), abs=1e-9)

    # 11-point mAP (multi-label): the vectorised weighted form equals the metric on materialised resamples, with
    # tied scores, a class without positives and a rare class that some resamples miss
    rng = np.random.default_rng(1)
    scores = np.round(rng.random((80, 5)), 1).astype(np.float32)  # [80, 5] many ties
    multi = (rng.random((80, 5)) < 0.2).astype(np.int64)
    multi[:, 3], multi[:, 4] = 0, (np.arange(80) < 2).astype(np.int64)
    idx = rng.integers(0, 80, (40, 80))
    table = zeroshot_table("elevator::voc", "11point_mAP", np.zeros(80, bool), multi, scores)
    got = RESCORERS.get("zeroshot")(None, table, idx)["elevator::voc"]
    want = [100 * compute_metric("11point_mAP", torch.from_numpy(scores[i]), torch.from_numpy(multi[i])) for i in idx]
    assert got == pytest.approx(want, abs=1e-9)

    img = torch.nn.functional.normalize(torch.randn(12, 8, generator=gen), dim=1)
    txt = torch.nn.functional.normalize(torch.randn(30, 8, generator=gen), dim=1)
    owner = torch.arange(30) % 12
    i2t, t2i = competitors(img, txt, owner)
    table = retrieval_table("ret", i2t.numpy(), t2i.numpy(), owner.numpy(), (1, 5, 10))
    got = RESCORERS.get("retrieval")(None, table, identity(12))
    for key, value in retrieval_scores(img, txt, owner).items():
        assert got[f"ret::{key}"][0] == pytest.approx(value, abs=1e-4)  # recall_at_k averages in fp32


def test_headline_pairing_skips_benchmarks_scored_on_other_items():
    from fsc_clip.evaluation.aggregate import Headline, Profile, mean_of_columns

    prof = Profile("t", ("b1", "b2"), [Headline("H", mean_of_columns(("b1", "b2")))])
    r = np.linspace(0, 1, 100)
    base = RunReplicates({}, {"b1": r, "b2": r}, {"b1": ["s1"], "b2": ["s2"]})
    other = RunReplicates({}, {"b1": r + 1, "b2": r + 2}, {"b1": ["s1"], "b2": ["other items"]})
    out = paired_columns(base, other, prof)
    assert out["b1"]["ci"] == pytest.approx([1.0, 1.0]) and out["b1"]["significant"]
    assert out["b2"] is None and out["H"] is None  # never a paired headline over unpaired parts
    assert interval(None) is None and interval(np.array([np.nan])) is None


# ----- through the CLI --------------------------------------------------------------------------------------------
BENCHES = "winoground,sugarcrepe,aro"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two random fsc-tiny models evaluated with --save-scores on fixtures, and one run without per-item scores."""
    root = tmp_path_factory.mktemp("statsdata")
    for name in BENCHES.split(","):
        write_fixture(name, root, scale=3)
    out = tmp_path_factory.mktemp("runs")
    for run, seed in (("base", 0), ("other", 1)):
        argv = ["eval", "--model", "fsc-tiny", "--random-init", "--seed", str(seed), "--benchmarks", BENCHES,
                "--data-root", str(root), "--output", str(out / run), "--no-progress", "--save-scores"]  # fmt: skip
        assert main(argv) == 0
    shutil.copytree(out / "other", out / "old")
    for f in (out / "old").glob("*.scores.npz"):
        f.unlink()  # an older result folder: no per-item outcomes
    return out


def test_save_scores_round_trips_and_results_carry_intervals(two_runs):
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    for name in BENCHES.split(","):
        res = json.loads((two_runs / "base" / f"{name}.json").read_text())
        assert res["per_item_file"] == f"{name}.scores.npz"
        assert res["ci_meta"]["n_resamples"] == 1000 and res["ci_meta"]["seed"] == 0
        assert res["ci_meta"]["confidence"] == 0.95
        assert set(res["scores"]) | {name} == set(res["ci"])
        if name == "sugarcrepe":  # default pooled score(): resampled within subsets, not within categories
            assert res["ci_meta"]["units"]["main"]["strata"] == sum(1 for c in res["counts"].values() if c)
        for key, ci in res["ci"].items():
            value = res["score"] if key == name else res["scores"][key]
            assert ci is None or ci[0] - 1e-9 <= value <= ci[1] + 1e-9, key
        tables = load_tables(two_runs / "base" / f"{name}.scores.npz")
        bench = BENCHMARKS.get(name)(**res["options"])
        (table,) = tables
        n = table.n_units
        again = RESCORERS.get("items")(bench, table, np.arange(n)[None])
        assert {k: float(v[0]) for k, v in again.items()} == pytest.approx(res["scores"], abs=1e-9)
        # the saved candidate scores reproduce the saved outcomes (strict > tie rule of the task scorers)
        sims = table.arrays["candidate_scores"]
        if "correct" in table.arrays:
            width = (~np.isnan(sims)).sum(axis=1)
            rows = [s[:w] for s, w in zip(sims, width)]
            labels = table.arrays["label"].tolist()
            redo = [bool(r[k] > np.max(np.delete(r, k), initial=-np.inf)) for r, k in zip(rows, labels)]
            assert redo == table.arrays["correct"].tolist()
        else:
            s = sims.reshape(-1, 2, 2)
            text = (s[:, 0, 0] > s[:, 1, 0]) & (s[:, 1, 1] > s[:, 0, 1])
            assert text.tolist() == table.arrays["text"].tolist()


def test_report_shows_intervals_and_paired_differences(two_runs, tmp_path, capsys):
    out = tmp_path / "rep"
    dirs = [str(two_runs / r) for r in ("base", "other", "old")]
    assert main(["report", *dirs, "--profile", "fsc", "--baseline", "base", "--output", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert " ± " in md and "## Paired comparison vs base" in md
    paired = md.split("## Paired comparison vs base")[1].split("## ")[0]
    other_line = next(line for line in paired.splitlines() if line.startswith("| other"))
    old_line = next(line for line in paired.splitlines() if line.startswith("| old"))
    assert "[" in other_line and "(no interval)" in old_line  # old: no per-item outcomes, so no interval
    import csv

    rows = {r["run"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["base"]["ci_lo_winoground"] != "" and rows["old"]["ci_lo_winoground"] != ""  # from the JSON's ci

    # paired with itself: every difference is +0.00 [+0.00, +0.00], never marked
    shutil.copytree(two_runs / "base", tmp_path / "same")
    out2 = tmp_path / "rep2"
    assert main(["report", str(two_runs / "base"), str(tmp_path / "same"), "--baseline", "base", "--output",
                 str(out2)]) == 0  # fmt: skip
    paired = (out2 / "report.md").read_text().split("## Paired comparison vs base")[1].split("## ")[0]
    same_line = next(line for line in paired.splitlines() if line.startswith("| same"))
    cells = [c.strip() for c in same_line.strip("|").split("|")[1:]]
    assert any(c == "+0.00 [+0.00, +0.00]" for c in cells) and not any(c.endswith("*") for c in cells)
