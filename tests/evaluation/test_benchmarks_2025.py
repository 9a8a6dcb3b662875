"""The compositional_2025 benchmarks (SugarCrepe++, COLA, BiVLC, NegBench) on fixtures in their released layouts.

Each fixture is written by ``eval_fixtures.WRITERS_2025`` in the official layout; a :class:`HashEmbedder` gives every
image file and every text a fixed random unit vector; the expected scores are recomputed here per item, in float64
numpy, from the fixture files read by small independent parsers and the official rules (scpp
``VLMs/test_Variants_CLIP.py``, COLA ``scripts/eval.py: ColaMultiObjAcc``, BiVLC ``CLIP_utils.evaluate_BiVLC``,
NegBench ``mcq.py: evaluate_model``).
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
from eval_fixtures import SCPP_SUBSETS, write_fixture_2025

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
def test_negbench_scores_equal_a_direct_per_item_computation(tmp_path: Path):
    import csv

    counts = write_fixture_2025("negbench", tmp_path, scale=4)
    emb = HashEmbedder()
    out = BENCHMARKS.get("negbench")().run(tmp_path, emb)
    assert out.counts == counts
    assert list(out.scores) == [f"negbench::{d}::{s}" for d in ("COCO", "VOC2007")
                                for s in ("total", "positive", "negative", "hybrid")]  # fmt: skip
    hits: dict[str, list[bool]] = {}
    for ds, name in (("COCO", "COCO_val"), ("VOC2007", "VOC2007")):
        with (tmp_path / "negbench" / "data" / "images" / f"{name}_mcq_llama3.1_rephrased.csv").open() as f:
            for row in csv.DictReader(f):
                raw = row["image_path"]
                path = raw if os.path.isfile(raw) else tmp_path / "negbench" / raw.lstrip("/")
                im = emb.image_vec(path)
                logits = [s(im, emb.text_vec(row[f"caption_{k}"])) for k in range(4)]  # mcq.py: image . caption
                label = int(row["correct_answer"])
                ok = all(logits[label] > v for k, v in enumerate(logits) if k != label)  # argmax, ties fail
                for sub in ("total", row["correct_answer_template"]):
                    hits.setdefault(f"negbench::{ds}::{sub}", []).append(ok)
    for k, h in hits.items():
        assert out.scores[k] == pytest.approx(pct(h), abs=1e-9), k
    assert any(0 < v < 100 for v in out.scores.values())
    want = (pct(hits["negbench::COCO::total"]) + pct(hits["negbench::VOC2007::total"])) / 2
    assert out.score == pytest.approx(want, abs=1e-9)


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


# ----- group and profile -------------------------------------------------------------------------------------------
def test_compositional_2025_group_and_frontier_profile():
    from fsc_clip.evaluation.aggregate import COMPOSITIONAL_2025, compute_columns, get_profile
    from fsc_clip.evaluation.runner import resolve_benchmarks

    assert sorted(resolve_benchmarks("compositional_2025")) == sorted(COMPOSITIONAL_2025)
    assert not set(COMPOSITIONAL_2025) & set(resolve_benchmarks("compositional"))  # the paper's suite is unchanged
    assert set(COMPOSITIONAL_2025) <= set(resolve_benchmarks("all"))
    prof = get_profile("frontier")
    assert prof.columns()[-2:] == ["Comp25", "Frontier"]
    scores = {"cola::text": 10.0, "cola::image": 30.0, "cola::group": 5.0, "bivlc::group": 20.0,
              "negbench::COCO::total": 50.0, "negbench::VOC2007::total": 70.0,
              **{f"sugarcrepe_pp::ITT::{s}": 40.0 + i for i, s in enumerate(SCPP_SUBSETS)}}  # fmt: skip
    cols = compute_columns("frontier", scores)
    assert cols["cola"] == 30.0 and cols["sugarcrepe_pp"] == 42.0 and cols["bivlc"] == 20.0
    assert cols["negbench"] == 60.0
    assert cols["Comp25"] == pytest.approx((30.0 + 42.0 + 20.0 + 60.0) / 4)
    assert cols["Frontier"] is None  # None rule: no SugarCrepe / Winoground result
    del scores["sugarcrepe_pp::ITT::swap_obj"]
    assert compute_columns("frontier", scores)["sugarcrepe_pp"] is None


# ----- the real embedder and the runner ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sugarcrepe_pp", "cola", "bivlc", "negbench"])
def test_runs_through_the_runner_with_a_real_model(name: str, tmp_path: Path, tiny_model):
    """The runner's path (check, run, result JSON with intervals) with the real cached embedder of a tiny model."""
    if name == "bivlc":
        pytest.importorskip("pyarrow")
    from fsc_clip.evaluation.embedder import CachedEmbedder
    from fsc_clip.evaluation.runner import run_benchmark

    counts = write_fixture_2025(name, tmp_path)
    res = run_benchmark(name, CachedEmbedder(tiny_model, batch_size=16, progress=False), tmp_path)
    assert res["counts"] == counts and res["score"] is not None
    assert all(v is None or 0.0 <= v <= 100.0 for v in res["scores"].values())
