"""Retrieval benchmarks: each loads a fixture in its native layout and equals a direct computation."""

from __future__ import annotations

import json

import pytest
import torch
from eval_fixtures import write_png

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.tasks.retrieval import retrieval_scores

RETRIEVAL = [n for n in BENCHMARKS.names() if BENCHMARKS.get(n).kind == "retrieval"]
SUBS = [f"{d}/R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)]


def _png(path, seed=0):
    write_png(path, seed)  # the shared fixture image writer


FULL_POOL = {"fraction": 1.0}  # coco_counterfactuals' default is the 30 % subset; harmless for the others
WORDS = ["dog", "cat", "red car", "tree", "a man riding", "two birds", "blue sky", "a small boat"]


def write_fixture(data_root, name):
    """Returns (n_images, n_captions, caption -> image index list)."""
    root = data_root / name
    if name in ("coco_karpathy", "flickr30k"):
        sub, ann = ("val2014", "coco_karpathy_test.json") if name == "coco_karpathy" else (
            "flickr30k-images", "flickr30k_test.json")  # fmt: skip
        recs, owner = [], []
        for i, n_caps in enumerate([5, 6, 5, 5]):  # COCO has some images with 6 captions
            _png(root / sub / f"img_{i}.jpg", i)
            caps = [f"{WORDS[(i + j) % 8]} number {i} {j}" for j in range(n_caps)]
            recs.append({"image": f"{sub}/img_{i}.jpg", "caption": caps})
            owner += [i] * n_caps
        (root / ann).write_text(json.dumps(recs))
        return 4, len(owner), owner
    if name == "coco_counterfactuals":
        lines, owner = [], []
        for e in range(3):
            for k in (0, 1):
                _png(root / "images" / f"{e}_{k}.jpg", 10 * e + k)
            caps = {"caption_0": f"a {WORDS[e]} on the left", "caption_1": f"a {WORDS[e]} on the right"}
            lines.append(json.dumps({"id": e, "image_0": f"{e}_0", "image_1": f"{e}_1", **caps}))
            owner += [2 * e, 2 * e + 1]
        (root / "examples.jsonl").write_text("\n".join(lines) + "\n")
        return 6, 6, owner
    raise AssertionError(f"no fixture writer for {name}")


def test_registered_retrieval_sets():
    assert set(RETRIEVAL) == {"coco_karpathy", "flickr30k", "coco_counterfactuals"}


@pytest.mark.parametrize("name", RETRIEVAL)
def test_pool_from_fixture(tmp_path, name):
    n_img, n_txt, owner = write_fixture(tmp_path, name)
    images, captions, got_owner = BENCHMARKS.get(name)(**FULL_POOL).load_pool(tmp_path)
    assert (len(images), len(captions)) == (n_img, n_txt)
    assert got_owner == owner and all(r.exists() for r in images)


@pytest.mark.parametrize("name", RETRIEVAL)
def test_run_equals_direct_computation(tiny_model, tmp_path, name):
    from fsc_clip.evaluation.embedder import CachedEmbedder
    from fsc_clip.models import encode

    n_img, n_txt, owner = write_fixture(tmp_path, name)
    bench = BENCHMARKS.get(name)(chunk_size=2, **FULL_POOL)
    out = bench.run(tmp_path, CachedEmbedder(tiny_model, progress=False))
    assert sorted(out.scores) == sorted(f"{name}::{s}" for s in SUBS)
    assert out.counts[f"{name}::i2t/R@1"] == n_img and out.counts[f"{name}::t2i/R@1"] == n_txt
    assert out.score == pytest.approx((out.scores[f"{name}::i2t/R@1"] + out.scores[f"{name}::t2i/R@1"]) / 2)

    images, captions, _ = bench.load_pool(tmp_path)
    with torch.no_grad():
        img = encode(tiny_model.model, images=torch.stack([tiny_model.preprocess_val(r.load()) for r in images])).image
        txt = encode(tiny_model.model, texts=tiny_model.tokenizer(captions)).text
    ref = retrieval_scores(img, txt, torch.tensor(owner), chunk_size=None)
    for sub in SUBS:
        assert out.scores[f"{name}::{sub}"] == pytest.approx(ref[sub], abs=1e-6)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"coco_karpathy_test\.json"):
        BENCHMARKS.get("coco_karpathy")().check(tmp_path)
    write_fixture(tmp_path, "coco_counterfactuals")
    (tmp_path / "coco_counterfactuals" / "images" / "1_1.jpg").unlink()
    with pytest.raises(DataNotFoundError, match="1_1"):
        BENCHMARKS.get("coco_counterfactuals")(**FULL_POOL).load_pool(tmp_path)


def test_limit_keeps_first_images_and_their_captions(tiny_model, tmp_path):
    from fsc_clip.evaluation.embedder import CachedEmbedder

    write_fixture(tmp_path, "flickr30k")
    out = BENCHMARKS.get("flickr30k")(limit=2).run(tmp_path, CachedEmbedder(tiny_model, progress=False))
    assert out.extra["n_images"] == 2 and out.extra["n_captions"] == 11
