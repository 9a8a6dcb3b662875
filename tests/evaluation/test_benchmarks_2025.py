"""The compositional_2025 benchmarks (SugarCrepe++, COLA, BiVLC, NegBench, VisMin) on fixtures in their released
layouts.

Each fixture is written by ``eval_fixtures.WRITERS_2025`` in the official layout; a :class:`HashEmbedder` gives every
image file and every text a fixed random unit vector; the expected scores are recomputed here per item, in float64
numpy, from the fixture files read by small independent parsers and the official rules (scpp
``VLMs/test_Variants_CLIP.py``, COLA ``scripts/eval.py: ColaMultiObjAcc`` / ``ColaSingleObjAP``, BiVLC
``CLIP_utils.evaluate_BiVLC``, NegBench ``mcq.py: evaluate_model`` / ``retrieval.py: evaluate_model``, VisMin
``vismin-bench/metric.py: compute_contrastive_accuracy``).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_fixtures import SCPP_SUBSETS, WRITERS_2025, write_fixture_2025

from fsc_clip.evaluation.base import ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError

DIM = 16


class HashEmbedder:
    """Every image file (by real path) and every text: a fixed random unit vector ``[DIM]`` seeded by its name.

    ``ties`` maps a text to another whose vector it reuses (an exact tie, to test the tie rule).
    """

    def __init__(self, ties: dict[str, str] | None = None) -> None:
        self.ties = ties or {}

    @staticmethod
    def vec(key: str) -> np.ndarray:
        v = np.random.default_rng(zlib.crc32(key.encode())).standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def image_vec(self, path: str | Path) -> np.ndarray:
        return self.vec("img:" + os.path.realpath(path))

    def text_vec(self, text: str) -> np.ndarray:
        return self.vec("txt:" + self.ties.get(text, text))

    def images(self, refs: Sequence[ImageRef], desc: str = "") -> torch.Tensor:
        return torch.from_numpy(np.stack([self.image_vec(r.path) for r in refs]))

    def texts(self, texts: Sequence[str], desc: str = "") -> torch.Tensor:
        return torch.from_numpy(np.stack([self.text_vec(t) for t in texts]))

    def prefetch(self, refs: Sequence[ImageRef] = (), texts: Sequence[str] = (), desc: str = "") -> None:
        return None


def s(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)))


def pct(hits: list[bool]) -> float:
    return 100.0 * sum(hits) / len(hits)


# ----- SugarCrepe++ ------------------------------------------------------------------------------------------------
def scpp_expected(root: Path, emb: HashEmbedder) -> dict[str, float]:
    out = {}
    for subset in SCPP_SUBSETS:
        itt, tot = [], []
        for rec in json.loads((root / "sugarcrepe_pp" / "data" / f"{subset}.json").read_text()):
            im = emb.image_vec(root / "sugarcrepe_pp" / "images" / rec["filename"])
            p1, p2, n = (emb.text_vec(rec[k]) for k in ("caption", "caption2", "negative_caption"))
            itt.append(s(im, p1) > s(im, n) and s(im, p2) > s(im, n))
            tot.append(s(p1, p2) > s(p1, n) and s(p1, p2) > s(p2, n))
        out[f"sugarcrepe_pp::ITT::{subset}"], out[f"sugarcrepe_pp::TOT::{subset}"] = pct(itt), pct(tot)
    return out


def test_sugarcrepe_pp_scores_equal_a_direct_per_item_computation(tmp_path: Path):
    counts = write_fixture_2025("sugarcrepe_pp", tmp_path, scale=4)
    emb = HashEmbedder()
    out = BENCHMARKS.get("sugarcrepe_pp")().run(tmp_path, emb)
    want = scpp_expected(tmp_path, emb)
    assert out.counts == counts
    assert list(out.scores) == [f"sugarcrepe_pp::{t}::{s}" for t in ("ITT", "TOT") for s in SCPP_SUBSETS]
    for k, v in want.items():
        assert out.scores[k] == pytest.approx(v, abs=1e-9), k
    assert any(0 < v < 100 for v in want.values()) and len(set(want.values())) > 2  # the fixture has teeth
    assert out.score == pytest.approx(np.mean([want[f"sugarcrepe_pp::ITT::{s}"] for s in SCPP_SUBSETS]), abs=1e-9)
    assert out.extra["n_items_published"]["replace_obj"] == 1652
    (table,) = out.per_item
    assert table.n_units == sum(counts.values()) and table.arrays["candidate_scores"].shape[1] == 3


def test_sugarcrepe_pp_a_tie_is_never_a_success(tmp_path: Path):
    """The release's record whose negative equals the caption (s(I,P1) == s(I,N)) fails ITT; so does a TOT tie."""
    write_fixture_2025("sugarcrepe_pp", tmp_path)
    rec = json.loads((tmp_path / "sugarcrepe_pp" / "data" / "swap_obj.json").read_text())[1]
    assert rec["negative_caption"] == rec["caption"]
    # P2 of record 0 of replace_att is made the same vector as its P1: TOT compares s(P1,P2)=1 with s(P1,N) < 1, but
    # P1 of record 0 of replace_obj tied with N makes s(P1,P2) == s(P2,N): a tie, so a failure
    ro = json.loads((tmp_path / "sugarcrepe_pp" / "data" / "replace_obj.json").read_text())[0]
    emb = HashEmbedder({ro["caption"]: ro["negative_caption"]})
    items = BENCHMARKS.get("sugarcrepe_pp")().load(tmp_path)
    from fsc_clip.evaluation.benchmarks.sugarcrepe_pp import triplet_outcomes

    itt, tot, _, _ = triplet_outcomes(items, emb)
    idx = {(it.subset, it.texts[0]): i for i, it in enumerate(items)}
    assert not itt[idx[("swap_obj", rec["caption"])]]
    assert not itt[idx[("replace_obj", ro["caption"])]] and not tot[idx[("replace_obj", ro["caption"])]]


def test_sugarcrepe_pp_schema_error_names_file_record_and_field(tmp_path: Path):
    write_fixture_2025("sugarcrepe_pp", tmp_path)
    path = tmp_path / "sugarcrepe_pp" / "data" / "replace_rel.json"
    recs = json.loads(path.read_text())
    del recs[1]["caption2"]
    path.write_text(json.dumps(recs))
    with pytest.raises(SchemaError, match=r"replace_rel\.json: record 1 has no field 'caption2'"):
        BENCHMARKS.get("sugarcrepe_pp")().load(tmp_path)


# ----- COLA --------------------------------------------------------------------------------------------------------
def test_cola_scores_equal_a_direct_per_item_computation(tmp_path: Path):
    counts = write_fixture_2025("cola", tmp_path, scale=6)
    emb = HashEmbedder()
    out = BENCHMARKS.get("cola")().run(tmp_path, emb)
    assert out.counts == counts and set(out.scores) == {"cola::text", "cola::image", "cola::group"}
    hits: dict[str, list[bool]] = {"text": [], "image": [], "group": []}
    for url0, c0, url1, c1 in json.loads((tmp_path / "cola" / "data" / "COLA_multiobjects_matching_benchmark.json")
                                         .read_text()):  # fmt: skip
        i0, i1 = (emb.image_vec(tmp_path / "cola" / "images" / u.rsplit("/", 1)[1]) for u in (url0, url1))
        t0, t1 = emb.text_vec(c0), emb.text_vec(c1)
        preds = np.array([[s(i0, t0), s(i0, t1)], [s(i1, t0), s(i1, t1)]])  # [image, caption] as scripts/eval.py
        image_correct = preds[0, 0] > preds[1, 0] and preds[1, 1] > preds[0, 1]  # ColaMultiObjAcc
        text_correct = preds[0, 0] > preds[0, 1] and preds[1, 1] > preds[1, 0]
        hits["image"].append(image_correct)
        hits["text"].append(text_correct)
        hits["group"].append(image_correct and text_correct)
    for m, h in hits.items():
        assert out.scores[f"cola::{m}"] == pytest.approx(pct(h), abs=1e-9), m
    assert 0 < out.scores["cola::image"] < 100 and out.score == out.scores["cola::image"]
    assert out.extra["n_items_published"] == 210


def test_cola_rejects_a_malformed_record(tmp_path: Path):
    write_fixture_2025("cola", tmp_path)
    path = tmp_path / "cola" / "data" / "COLA_multiobjects_matching_benchmark.json"
    recs = json.loads(path.read_text())
    recs[2] = recs[2][:3]
    path.write_text(json.dumps(recs))
    with pytest.raises(SchemaError, match="record 2 is not"):
        BENCHMARKS.get("cola")().load(tmp_path)


# ----- BiVLC -------------------------------------------------------------------------------------------------------
def test_bivlc_scores_equal_a_direct_per_item_computation(tmp_path: Path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    counts = write_fixture_2025("bivlc", tmp_path, scale=5)
    emb = HashEmbedder()
    bench = BENCHMARKS.get("bivlc")()
    out = bench.run(tmp_path, emb)
    assert out.counts == counts
    hits: dict[str, list[bool]] = {}
    for shard in sorted((tmp_path / "bivlc" / "data").glob("test-*.parquet")):
        for i, row in enumerate(pq.read_table(shard).to_pylist()):
            stem = tmp_path / "bivlc" / "images" / shard.name.split(".")[0]
            pos, neg = stem / f"{i}_pos.jpg", stem / f"{i}_neg.png"  # decoded from the parquet bytes
            assert pos.read_bytes() == row["image"]["bytes"] and neg.read_bytes() == row["negative_image"]["bytes"]
            i0, i1 = emb.image_vec(pos), emb.image_vec(neg)
            c0, c1 = emb.text_vec(row["caption"]), emb.text_vec(row["negative_caption"])
            ipos, ineg = s(c0, i0) > s(c1, i0), s(c1, i1) > s(c0, i1)  # evaluate_BiVLC
            tpos, tneg = s(c0, i0) > s(c0, i1), s(c1, i1) > s(c1, i0)
            res = {"I2T": ipos and ineg, "T2I": tpos and tneg}
            res["group"] = res["I2T"] and res["T2I"]
            for m, ok in res.items():
                for key in (m, f"{row['type']}::{m}"):
                    hits.setdefault(f"bivlc::{key}", []).append(ok)
    assert set(out.scores) == set(hits)
    for k, h in hits.items():
        assert out.scores[k] == pytest.approx(pct(h), abs=1e-9), k
    assert out.score == out.scores["bivlc::group"]
    assert any(0 < v < 100 for v in out.scores.values())
    assert out.extra["n_items_published"] == 2933  # the fixture is not the release: the difference is recorded
    mtime = (tmp_path / "bivlc" / "images" / "test-00000-of-00002" / "0_pos.jpg").stat().st_mtime_ns
    bench.load(tmp_path)  # decoded images are reused, not rewritten (their cache keys stay valid)
    assert (tmp_path / "bivlc" / "images" / "test-00000-of-00002" / "0_pos.jpg").stat().st_mtime_ns == mtime


def test_bivlc_missing_column_is_a_schema_error(tmp_path: Path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    write_fixture_2025("bivlc", tmp_path)
    path = tmp_path / "bivlc" / "data" / "test-00001-of-00002.parquet"
    pq.write_table(pq.read_table(path).drop(["negative_image"]), path)
    with pytest.raises(SchemaError, match=r"test-00001-of-00002\.parquet has no column\(s\) \['negative_image'\]"):
        BENCHMARKS.get("bivlc")().load(tmp_path)


# ----- NegBench ----------------------------------------------------------------------------------------------------
NEGBENCH_MCQ = {  # benchmark -> (part, CSV under negbench/data/images/, captions per item)
    "negbench": [("COCO", "COCO_val_mcq_llama3.1_rephrased.csv", 4),
                 ("VOC2007", "VOC2007_mcq_llama3.1_rephrased.csv", 4)],
    "negbench_syn": [("synthetic", "synthetic_mcq_llama3.1_rephrased.csv", 4)],
    "negbench_chexpert": [("binary_mcq", "chexpert_binary_mcq.csv", 2),
                          ("binary_mcq_control", "chexpert_binary_mcq_control.csv", 2)],
}  # fmt: skip
NEGBENCH_COLUMN = {
    "negbench": lambda h: (pct(h["negbench::COCO::total"]) + pct(h["negbench::VOC2007::total"])) / 2,
    "negbench_syn": lambda h: pct(h["negbench_syn::synthetic::total"]),
    "negbench_chexpert": lambda h: pct(h["negbench_chexpert::binary_mcq::total"]),
}


@pytest.mark.parametrize("name", list(NEGBENCH_MCQ))
def test_negbench_mcq_scores_equal_a_direct_per_item_computation(name: str, tmp_path: Path):
    import csv

    counts = write_fixture_2025(name, tmp_path, scale=4)
    emb = HashEmbedder()
    out = BENCHMARKS.get(name)().run(tmp_path, emb)
    assert out.counts == counts
    templates = ("total", "positive", "negative", "hybrid")
    assert list(out.scores) == [f"{name}::{p}::{s}" for p, _, n in NEGBENCH_MCQ[name]
                                for s in (templates if n == 4 else ("total",))]  # fmt: skip
    hits: dict[str, list[bool]] = {}
    for part, file, n in NEGBENCH_MCQ[name]:
        with (tmp_path / "negbench" / "data" / "images" / file).open() as f:
            for row in csv.DictReader(f):
                raw = row["image_path"]
                path = raw if os.path.isfile(raw) else tmp_path / "negbench" / raw.lstrip("/")
                im = emb.image_vec(path)
                logits = [s(im, emb.text_vec(row[f"caption_{k}"])) for k in range(n)]  # mcq.py: image . caption
                label = int(row["correct_answer"])
                ok = all(logits[label] > v for k, v in enumerate(logits) if k != label)  # argmax, ties fail
                for sub in ("total", row.get("correct_answer_template")):
                    if sub:
                        hits.setdefault(f"{name}::{part}::{sub}", []).append(ok)
    assert set(hits) == set(out.scores)
    for k, h in hits.items():
        assert out.scores[k] == pytest.approx(pct(h), abs=1e-9), k
    assert any(0 < v < 100 for v in out.scores.values())
    assert out.score == pytest.approx(NEGBENCH_COLUMN[name](hits), abs=1e-9)


def test_negbench_records_the_published_counts():
    """The released CSVs' sizes are the denominators of results/mcq/1_baseline_breakdown.csv: every published
    accuracy times its count is a whole number of questions, for every model (so a fixture records the difference)."""
    from fsc_clip.evaluation.benchmarks.negbench import N_ITEMS_PUBLISHED

    published = {  # 1_baseline_breakdown.csv, CLIP-OpenAI and NegCLIP rows; 1_baseline_total.csv
        ("COCO", "positive"): (0.6914370078740157, 0.5162401574803149),
        ("COCO", "negative"): (0.06844919786096257, 0.16149732620320856),
        ("COCO", "hybrid"): (0.39314115308151093, 0.17147117296222664),
        ("COCO", "total"): (0.39296584376056815, 0.28677713899222185),
        ("VOC2007", "positive"): (0.8255131964809385, 0.7536656891495601),
        ("VOC2007", "negative"): (0.033474776049033476, 0.05704856199905705),
        ("VOC2007", "hybrid"): (0.5897666068222621, 0.4035008976660682),
        ("VOC2007", "total"): (0.38719936394355, 0.3049095607235142),
    }
    for (ds, sub), accs in published.items():
        n = N_ITEMS_PUBLISHED[ds][sub]
        assert all(abs(a * n - round(a * n)) < 1e-6 for a in accs), (ds, sub)
    for c in N_ITEMS_PUBLISHED.values():
        assert c["total"] == c["positive"] + c["negative"] + c["hybrid"]


def test_negbench_bad_correct_answer_is_a_schema_error(tmp_path: Path):
    write_fixture_2025("negbench", tmp_path)
    path = tmp_path / "negbench" / "data" / "images" / "VOC2007_mcq_llama3.1_rephrased.csv"
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[-2] = "4"
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError, match=r"VOC2007_mcq_llama3\.1_rephrased\.csv: row 2 has correct_answer '4'"):
        BENCHMARKS.get("negbench")().load(tmp_path)


def negbench_retrieval_expected(root: Path, emb: HashEmbedder) -> dict[str, float]:
    """retrieval.py per query in float64: T2I hit at k iff fewer than k other images score >= the own image; I2T hit
    iff fewer than k other images' captions score >= the image's best own caption (ties count against)."""
    import ast
    import csv

    from fsc_clip.evaluation.benchmarks.negbench_retrieval import PARTS

    out = {}
    for part, file in PARTS.items():
        with (root / "negbench" / "data" / "images" / file).open() as f:
            rows = list(csv.DictReader(f))
        imgs = np.stack([emb.image_vec(root / "negbench" / r["filepath"].lstrip("/")) for r in rows]).astype(float)
        caps = [(c, i) for i, r in enumerate(rows) for c in ast.literal_eval(r["captions"])]
        sims = np.stack([emb.text_vec(c) for c, _ in caps]).astype(float) @ imgs.T  # [N_txt, N_img]
        t2i = [int(np.sum(np.delete(sims[t], o) >= sims[t, o])) for t, (_, o) in enumerate(caps)]
        i2t = []
        for i in range(len(rows)):
            own = [t for t, (_, o) in enumerate(caps) if o == i]
            i2t.append(sum(1 for t, (_, o) in enumerate(caps) if o != i and sims[t, i] >= sims[own, i].max()))
        for k in (1, 5):
            out[f"negbench_retrieval::{part}::t2i/R@{k}"] = pct([r < k for r in t2i])
            out[f"negbench_retrieval::{part}::i2t/R@{k}"] = pct([r < k for r in i2t])
    return out


def test_negbench_retrieval_scores_equal_a_direct_per_query_computation(tmp_path: Path):
    counts = write_fixture_2025("negbench_retrieval", tmp_path, scale=3)
    emb = HashEmbedder()
    out = BENCHMARKS.get("negbench_retrieval")().run(tmp_path, emb)
    want = negbench_retrieval_expected(tmp_path, emb)
    assert out.counts == counts and list(out.scores)[:2] == ["negbench_retrieval::COCO::t2i/R@1",
                                                              "negbench_retrieval::COCO::t2i/R@5"]  # fmt: skip
    for k, v in want.items():
        assert out.scores[k] == pytest.approx(v, abs=1e-4), k  # recall is averaged in float32
    assert any(0 < v < 100 for v in want.values()) and len(set(want.values())) > 2
    assert out.score == out.scores["negbench_retrieval::COCO-negated::t2i/R@5"]
    assert [t.name for t in out.per_item] == ["COCO", "COCO-negated"]


def test_negbench_retrieval_bad_captions_cell_and_duplicate_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    import csv

    write_fixture_2025("negbench_retrieval", tmp_path)
    path = tmp_path / "negbench" / "data" / "images" / "COCO_val_retrieval.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    rows[1]["filepath"] = rows[0]["filepath"]  # a path listed twice: two pool entries, recorded
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = BENCHMARKS.get("negbench_retrieval")().run(tmp_path, HashEmbedder())
    assert out.extra["COCO"]["duplicate_image_rows"] == 1 and "repeat a path" in caplog.text
    assert out.counts["negbench_retrieval::COCO::i2t/R@1"] == len(rows)
    rows[2]["captions"] = "a dog on a sofa"  # not a list literal
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(SchemaError, match=r"COCO_val_retrieval\.csv: row 2 has captions 'a dog on a sofa'"):
        BENCHMARKS.get("negbench_retrieval")().run(tmp_path, HashEmbedder())


# ----- COLA single-object ------------------------------------------------------------------------------------------
def naive_ap(scores: Sequence[float], labels: Sequence[int]) -> float:
    """AP from its definition: at each distinct threshold t (descending), precision and recall of {score >= t}."""
    thresholds = sorted(set(scores), reverse=True)
    n_pos = sum(labels)
    ap, prev_recall = 0.0, 0.0
    for t in thresholds:
        picked = [y for v, y in zip(scores, labels) if v >= t]
        recall = sum(picked) / n_pos
        ap += (recall - prev_recall) * sum(picked) / len(picked)
        prev_recall = recall
    return ap


def test_average_precision_matches_its_definition_with_ties():
    from fsc_clip.evaluation.benchmarks.cola import average_precision

    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)  # one threshold
    assert average_precision(np.array([0.5, 0.5, 0.9]), np.array([1, 0, 0])) == pytest.approx(1 / 3)
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 30))
        sc = rng.integers(0, 6, size=n).astype(float)  # many ties
        lab = rng.integers(0, 2, size=n)
        lab[0] = 1
        assert average_precision(sc, lab) == pytest.approx(naive_ap(sc.tolist(), lab.tolist()), abs=1e-12)


def cola_single_expected(root: Path, emb: HashEmbedder) -> dict[str, float]:
    """ColaSingleObjAP per file, from the JSON read here and the naive AP."""
    out = {}
    for part in ("GQA", "CLEVR", "PACO"):
        data = json.loads((root / "cola" / "data" / f"COLA_singleobjects_benchmark_{part}.json").read_text())
        names, rows = (data["labels"], data["data"]) if isinstance(data, dict) else data
        folder = {"GQA": root / "cola" / "images", "CLEVR": root / "cola", "PACO": root / "cola" / "images"}[part]
        aps = []
        for c, name in enumerate(names):
            t = emb.text_vec(name)
            hard = [r for r in rows if r[-1][c] == 1]
            if not any(r[-2][c] for r in rows) or not hard:
                continue
            files = [folder / (r[0].rsplit("/", 1)[1] if part != "CLEVR" else r[0]) for r in hard]
            aps.append(naive_ap([s(emb.image_vec(f), t) for f in files], [r[-2][c] for r in hard]))
        out[f"cola_single::{part}::mAP"] = 100.0 * sum(aps) / len(aps)
    return out


def test_cola_single_scores_equal_a_direct_computation(tmp_path: Path):
    counts = write_fixture_2025("cola_single", tmp_path, scale=3)
    emb = HashEmbedder()
    out = BENCHMARKS.get("cola_single")().run(tmp_path, emb)
    want = cola_single_expected(tmp_path, emb)
    assert out.counts == counts
    for k, v in want.items():
        assert out.scores[k] == pytest.approx(v, abs=1e-9), k
    assert all(0 < v < 100 for v in want.values()) and len(set(want.values())) == 3
    assert out.score == pytest.approx(sum(want.values()) / 3, abs=1e-9)
    assert out.extra["GQA"]["classes_skipped"] == {"no_image": 1, "no_hard": 1, "no_positive": 0}
    assert out.extra["n_labels_published"] == 320


def test_cola_single_bootstrap_rescores_resampled_images_exactly():
    """The interval's rescorer: the identity draw gives the score; any draw equals AP on the duplicated images."""
    from fsc_clip.evaluation.benchmarks.cola import class_ap_table, class_aps, rescore_class_ap

    rng = np.random.default_rng(1)
    n, c = 40, 7
    sims = rng.integers(0, 8, size=(n, c)).astype(float) / 8  # many ties
    labels = rng.integers(0, 2, size=(n, c))
    hard = rng.integers(0, 2, size=(n, c))
    hard[:, 0], labels[:, 1] = 0, 0  # class 0: no hard image, class 1: no positive (both skipped)
    table = class_ap_table("cola_single::GQA::mAP", "GQA", sims, labels, hard)
    aps, _ = class_aps(sims, labels, hard)
    draws = np.vstack([np.arange(n), rng.integers(0, n, size=(5, n))])
    got = rescore_class_ap(None, table, draws)["cola_single::GQA::mAP"]
    assert got[0] == pytest.approx(100.0 * np.mean(aps), abs=1e-9)
    for row, draw in zip(got[1:], draws[1:]):
        aps_d, _ = class_aps(sims[draw], labels[draw], hard[draw])  # the duplicated rows, scored from scratch
        assert row == pytest.approx(100.0 * np.mean(aps_d), abs=1e-9)


def test_cola_single_missing_part_and_bad_row(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    write_fixture_2025("cola_single", tmp_path)
    (tmp_path / "cola" / "data" / "COLA_singleobjects_benchmark_CLEVR.json").unlink()
    out = BENCHMARKS.get("cola_single")().run(tmp_path, HashEmbedder())
    assert out.scores["cola_single::CLEVR::mAP"] is None and out.score is None and "CLEVR.json" in caplog.text
    assert out.scores["cola_single::GQA::mAP"] is not None
    path = tmp_path / "cola" / "data" / "COLA_singleobjects_benchmark_PACO.json"
    data = json.loads(path.read_text())
    data["data"][3][-1] = data["data"][3][-1][:-1]  # hard_list one short
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match=r"PACO\.json: data\[3\] hard_list is not a list of 6 0/1 values"):
        BENCHMARKS.get("cola_single")().run(tmp_path, HashEmbedder())


# ----- VisMin ------------------------------------------------------------------------------------------------------
def test_vismin_scores_equal_a_direct_per_item_computation(tmp_path: Path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa

    counts = write_fixture_2025("vismin", tmp_path, scale=3)
    emb = HashEmbedder()
    bench = BENCHMARKS.get("vismin")()
    out = bench.run(tmp_path, emb)
    assert out.counts == counts
    hits: dict[str, list[bool]] = {}
    for shard in sorted((tmp_path / "vismin" / "data" / "test").glob("data-*.arrow")):
        with pa.OSFile(str(shard)) as f:
            rows = pa.ipc.open_stream(f).read_all().to_pylist()
        for i, row in enumerate(rows):
            stem = tmp_path / "vismin" / "images" / shard.name.split(".")[0]
            i0, i1 = (stem / f"{i}_{k}.jpg" for k in (0, 1))  # decoded from the Arrow bytes
            assert i0.read_bytes() == row["image_0"]["bytes"] and i1.read_bytes() == row["image_1"]["bytes"]
            v = {(t, k): s(emb.text_vec(row[f"text_{t}"]), emb.image_vec(p))
                 for t in (0, 1) for k, p in ((0, i0), (1, i1))}  # fmt: skip
            text = v[0, 0] > v[1, 0] and v[1, 1] > v[0, 1]  # metric.py: compute_contrastive_accuracy
            image = v[0, 0] > v[0, 1] and v[1, 1] > v[1, 0]
            for m, ok in (("text", text), ("image", image), ("group", text and image)):
                hits.setdefault(f"vismin::{row['category']}::{m}", []).append(ok)
    assert set(out.scores) == set(hits)
    for k, h in hits.items():
        assert out.scores[k] == pytest.approx(pct(h), abs=1e-9), k
    want = sum(pct(hits[f"vismin::{c}::group"]) for c in ("object", "attribute", "counting", "relation")) / 4
    assert out.score == pytest.approx(want, abs=1e-9) and any(0 < v < 100 for v in out.scores.values())
    assert out.extra["n_items_published"]["relation"] == 622


def test_vismin_reads_the_arrow_file_format_and_rejects_an_unknown_category(tmp_path: Path):
    pytest.importorskip("pyarrow")
    import pyarrow as pa

    write_fixture_2025("vismin", tmp_path)
    items = BENCHMARKS.get("vismin")().load(tmp_path)
    path = tmp_path / "vismin" / "data" / "test" / "data-00001-of-00003.arrow"
    with pa.OSFile(str(path)) as f:
        table = pa.ipc.open_stream(f).read_all()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:  # random-access format
        writer.write_table(table)
    assert [(it.texts, it.subset) for it in BENCHMARKS.get("vismin")().load(tmp_path)] == [
        (it.texts, it.subset) for it in items
    ]
    rows = table.to_pylist()
    rows[1]["category"] = "count"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(pa.Table.from_pylist(rows, schema=table.schema))
    with pytest.raises(SchemaError, match=r"data-00001-of-00003\.arrow: row 1 has category 'count'"):
        BENCHMARKS.get("vismin")().load(tmp_path)


# ----- group and profile -------------------------------------------------------------------------------------------
def test_compositional_2025_group_and_frontier_profile():
    from fsc_clip.evaluation.aggregate import COMPOSITIONAL_2025, COMPOSITIONAL_2025_MORE, compute_columns, get_profile
    from fsc_clip.evaluation.runner import resolve_benchmarks

    group = resolve_benchmarks("compositional_2025")
    assert sorted(group) == sorted(COMPOSITIONAL_2025 + COMPOSITIONAL_2025_MORE) == sorted(WRITERS_2025)
    assert not set(group) & set(resolve_benchmarks("compositional"))  # the paper's suite is unchanged
    assert set(group) <= set(resolve_benchmarks("all"))
    prof = get_profile("frontier")
    assert prof.columns()[-2:] == ["Comp25", "Frontier"] and set(COMPOSITIONAL_2025_MORE) <= set(prof.columns())
    scores = {"cola::text": 10.0, "cola::image": 30.0, "cola::group": 5.0, "bivlc::group": 20.0,
              "negbench::COCO::total": 50.0, "negbench::VOC2007::total": 70.0,
              **{f"sugarcrepe_pp::ITT::{s}": 40.0 + i for i, s in enumerate(SCPP_SUBSETS)}}  # fmt: skip
    cols = compute_columns("frontier", scores)
    assert cols["cola"] == 30.0 and cols["sugarcrepe_pp"] == 42.0 and cols["bivlc"] == 20.0
    assert cols["negbench"] == 60.0
    assert all(cols[b] is None for b in COMPOSITIONAL_2025_MORE)  # absent: None, and the headlines do not need them
    assert cols["Comp25"] == pytest.approx((30.0 + 42.0 + 20.0 + 60.0) / 4)
    assert cols["Frontier"] is None  # None rule: no SugarCrepe / Winoground result
    scores["negbench_retrieval::COCO-negated::t2i/R@5"] = 12.0
    scores.update(
        {f"vismin::{c}::group": 10.0 * i for i, c in enumerate(("object", "attribute", "counting", "relation"))}
    )
    cols = compute_columns("frontier", scores)
    assert cols["negbench_retrieval"] == 12.0 and cols["vismin"] == 15.0
    assert cols["Comp25"] == pytest.approx((30.0 + 42.0 + 20.0 + 60.0) / 4)
    del scores["sugarcrepe_pp::ITT::swap_obj"]
    assert compute_columns("frontier", scores)["sugarcrepe_pp"] is None


# ----- the real embedder and the runner ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(WRITERS_2025))
def test_runs_through_the_runner_with_a_real_model(name: str, tmp_path: Path, tiny_model):
    """The runner's path (check, run, result JSON with intervals) with the real cached embedder of a tiny model."""
    if name in ("bivlc", "vismin"):
        pytest.importorskip("pyarrow")
    from fsc_clip.evaluation.embedder import CachedEmbedder
    from fsc_clip.evaluation.runner import run_benchmark

    # cola_single at scale 3: with a few images per class, some resamples draw no positive of any class (mAP undefined)
    counts = write_fixture_2025(name, tmp_path, **({"scale": 3} if name == "cola_single" else {}))
    res = run_benchmark(name, CachedEmbedder(tiny_model, batch_size=16, progress=False), tmp_path)
    assert res["counts"] == counts and res["score"] is not None
    assert all(v is None or 0.0 <= v <= 100.0 for v in res["scores"].values())
    # every benchmark carries a 95 % interval for its column and for every scored sub-score
    assert res["ci"][name] is not None and res["ci_meta"]["n_resamples"] > 0
    for key, value in res["scores"].items():
        if value is not None:
            lo, hi = res["ci"][key]
            assert lo - 1e-6 <= value <= hi + 1e-6 or (hi - lo) > 0, key
