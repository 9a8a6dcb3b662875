"""Text-only (blind) baselines: order invariance, per-item scores vs a direct computation, same-word marking, the
report's far-above-chance flag through the CLI, and a user's plug-in scorer."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import numpy as np
import pytest
from eval_fixtures import _dump, _Images, write_fixture, write_sugarcrepe

from fsc_clip.cli.main import main
from fsc_clip.evaluation.benchmarks.sugarcrepe import SUBSETS
from fsc_clip.evaluation.blind import BagOfWordsScorer, BigramScorer, BlindModel, same_words_items
from fsc_clip.evaluation.items import ImageRef, ImageToTextItem, TextToImageItem
from fsc_clip.evaluation.runner import evaluate

N = 10  # items per subset


def _write_pool(root, pairs_by_subset):
    """SugarCrepe's real layout (data/<subset>.json, val2017/) with the given (caption, negative) pairs."""
    write_sugarcrepe(root, _Images(0))  # images and every subset file; the subsets given are overwritten
    for subset, pairs in pairs_by_subset.items():
        recs = {str(k): {"filename": f"{k % 3:012d}.jpg", "caption": c, "negative_caption": n}
                for k, (c, n) in enumerate(pairs)}  # fmt: skip
        _dump(root / "sugarcrepe" / "data" / f"{subset}.json", recs)


def _fixture(root):
    """replace_obj: the right caption is always the shorter one (a blind model is right on every item);
    replace_att: shorter on half the items (at chance); the other subsets: swapped words (same multiset)."""
    pairs = {
        "replace_obj": [(f"a dog {k}", f"a dog {k} holding a red kite") for k in range(N)],
        "replace_att": [(f"a cat {k}", f"a cat {k} on a blue sofa") if k % 2 else (f"a cat {k} on a blue sofa",
                                                                                   f"a cat {k}") for k in range(N)],
    }  # fmt: skip
    for s in SUBSETS[2:]:
        pairs[s] = [(f"the man {k} left of the horse", f"the horse {k} left of the man") for k in range(N)]
    _write_pool(root, pairs)
    return pairs


def test_bow_is_exactly_order_invariant():
    pool = ["A dog, on the grass.", "the grass is green", "a red kite over the dog", "two dogs and one cat"] * 3
    bow = BagOfWordsScorer()
    bow.fit(pool)
    rng = random.Random(0)
    text = "the dog on a red kite over green grass and one cat , too"
    base = bow.score([text])[0]
    toks = text.split()
    for _ in range(50):
        rng.shuffle(toks)
        assert bow.score([" ".join(toks)])[0].hex() == base.hex()  # bit-identical
    assert bow.score(["The DOG!"])[0] == bow.score(["dog the"])[0]  # case and punctuation do not count
    bigram = BigramScorer()
    bigram.fit(pool)
    assert bigram.score(["a dog on the grass"])[0] > bigram.score(["grass the on dog a"])[0]  # order-sensitive


def test_same_words_counts():
    img = ImageRef(__file__)
    items = [
        ImageToTextItem(img, ["A dog, on the grass.", "the grass on a dog"], 0, "swap"),  # same multiset
        ImageToTextItem(img, ["a dog on the grass", "a dog on the dog grass"], 0, "swap"),  # one word more
        ImageToTextItem(img, ["a cat near a man", "a man near a cat", "a cat near the man"], 0, "swap"),  # 1 of 2
        ImageToTextItem(img, ["a man near a man", "a man near a cat"], 1, "swap"),  # label 1: different words
        ImageToTextItem(img, ["red car", "car red"], 1, ""),  # label 1, same words
        TextToImageItem("a dog", [img, img], 0, "t2i"),  # one text: never counted
    ]
    assert same_words_items("b", items) == {"b::swap": 2, "b::accuracy": 1}


def _direct_bow(pairs):
    """Independent float64 computation: pool counts over every candidate, add-one smoothed log-frequencies."""
    pool = [t for subset_pairs in pairs.values() for pair in subset_pairs for t in pair]
    counts = Counter(w.strip(",.").lower() for t in pool for w in t.split())
    total, vocab = sum(counts.values()), len(counts)

    def score(t):
        return sum(math.log((counts[w] + 1) / (total + vocab + 1)) for w in t.lower().split())

    return {s: 100.0 * sum(score(c) > score(n) for c, n in ps) / len(ps) for s, ps in pairs.items()}, score


def test_blind_bow_equals_direct_computation(tmp_path):
    pairs = _fixture(tmp_path / "data")
    res = evaluate(None, "sugarcrepe", tmp_path / "data", tmp_path / "out", embedder=BlindModel("bow"),
                   progress=False, save_scores=True)["sugarcrepe"]  # fmt: skip
    expected, score = _direct_bow(pairs)
    assert {k.split("::")[1]: v for k, v in res["scores"].items()} == expected
    assert expected["replace_obj"] == 100.0 and expected["replace_att"] == 50.0 and expected["swap_obj"] == 0.0
    saved = json.loads((tmp_path / "out" / "sugarcrepe.json").read_text())
    assert saved["model"]["blind"] == "bow" and saved["model"]["label"] == "blind:bow"
    blind = saved["extra"]["blind"]
    assert blind["chance"] == {f"sugarcrepe::{s}": 50.0 for s in SUBSETS}
    assert blind["same_words_items"] == {f"sugarcrepe::{s}": 0 if s in SUBSETS[:2] else N for s in SUBSETS}
    assert blind["not_applicable"] == []
    with np.load(tmp_path / "out" / "sugarcrepe.scores.npz") as npz:  # per-item caption scores (float32 on disk)
        sims = [row for key in npz.files if key.endswith("candidate_scores") for row in npz[key]]
    flat = [(c, n) for s in SUBSETS for c, n in pairs[s]]
    assert len(sims) == len(flat)
    for row, (c, n) in zip(sims, flat):
        np.testing.assert_allclose(row[:2], [score(c), score(n)], rtol=1e-6)


def test_blind_other_tasks_are_not_applicable(tmp_path):
    write_fixture("winoground", tmp_path / "data")
    write_fixture("imagecode", tmp_path / "data")
    results = evaluate(None, "winoground,imagecode", tmp_path / "data", tmp_path / "out", embedder=BlindModel("bow"),
                       progress=False)  # fmt: skip
    for name in ("winoground", "imagecode"):
        res = results[name]
        assert res["score"] is None and all(v is None for v in res["scores"].values())
        assert res["extra"]["blind"]["status"] == "not_applicable"
        assert sorted(res["extra"]["blind"]["not_applicable"]) == sorted(res["scores"])
    # Winoground's captions are the same words in another order: every item is marked
    assert results["winoground"]["extra"]["blind"]["same_words_items"] == {"winoground": 3}


def test_report_flags_far_above_chance_through_cli(tmp_path, capsys):
    _fixture(tmp_path / "data")
    write_fixture("winoground", tmp_path / "data")
    out, rep = tmp_path / "blind-bow", tmp_path / "report"
    argv = ["eval", "--blind", "bow", "--benchmarks", "sugarcrepe,winoground", "--data-root", str(tmp_path / "data"),
            "--output", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert main(["report", str(out), "--output", str(rep)]) == 0
    md = (rep / "report.md").read_text()
    assert "Text-only (blind) baselines vs chance" in md
    lines = {line.split(" | ")[1]: line for line in md.splitlines() if line.startswith("| blind-bow | ")}
    assert "FAR ABOVE CHANCE" in lines["sugarcrepe::replace_obj"]
    assert "+50.00" in lines["sugarcrepe::replace_obj"]
    assert "FAR ABOVE CHANCE" not in lines["sugarcrepe::replace_att"]  # 50 % = chance
    assert "FAR ABOVE CHANCE" not in lines["sugarcrepe::swap_obj"]  # 0 %: ties on same-word items fail
    assert lines["sugarcrepe::swap_obj"].split(" | ")[6] == f"{N} / {N}"  # same-word items / items
    assert "FAR ABOVE CHANCE" not in lines["sugarcrepe"]  # column: REPLACE/SWAP/ADD mean is near chance
    assert lines["winoground"].split(" | ")[2] == "N/A" and lines["winoground"].split(" | ")[6] == "3"


def test_plugin_scorer(tmp_path, monkeypatch):
    """A user's scorer: any importable ``module:function`` taking a list of strings, returning one float each."""
    (tmp_path / "my_lm.py").write_text(
        "def prefer_short(texts):\n    return [-float(len(t)) for t in texts]\n\ndef broken(texts):\n    return [0.0]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pairs = _fixture(tmp_path / "data")
    res = evaluate(None, "sugarcrepe", tmp_path / "data", tmp_path / "out", embedder=BlindModel("my_lm:prefer_short"),
                   progress=False)["sugarcrepe"]  # fmt: skip
    direct = {s: 100.0 * sum(len(c) < len(n) for c, n in ps) / len(ps) for s, ps in pairs.items()}
    assert {k.split("::")[1]: v for k, v in res["scores"].items()} == direct
    assert res["model"]["blind"] == "my_lm:prefer_short"
    argv = ["eval", "--benchmarks", "sugarcrepe", "--data-root", str(tmp_path / "data"), "--no-progress"]
    assert main([*argv, "--blind", "my_lm:broken", "--output", str(tmp_path / "o2")]) == 2  # wrong length
    assert main([*argv, "--blind", "my_lm:missing", "--output", str(tmp_path / "o3")]) == 2
    assert main([*argv, "--blind", "bow", "--model", "ViT-B-32", "--output", str(tmp_path / "o4")]) == 2
    with pytest.raises(Exception, match="Unknown blind scorer"):
        BlindModel("bwo")


def test_blind_results_are_reused_and_not_mixed(tmp_path, caplog):
    """A blind run is a model like any other: its results are reused when unchanged and never mixed with another's."""
    _fixture(tmp_path / "data")
    argv = ["eval", "--benchmarks", "sugarcrepe", "--data-root", str(tmp_path / "data"), "--no-progress",
            "--output", str(tmp_path / "out")]  # fmt: skip
    assert main([*argv, "--blind", "bow"]) == 0
    first = (tmp_path / "out" / "sugarcrepe.json").read_text()
    with caplog.at_level("INFO"):
        assert main([*argv, "--blind", "bow"]) == 0
    assert "result exists" in caplog.text and (tmp_path / "out" / "sugarcrepe.json").read_text() == first
    assert main([*argv, "--blind", "bigram"]) == 2  # another scorer's results in the folder: refused
