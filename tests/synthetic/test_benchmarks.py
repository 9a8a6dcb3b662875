"""The synthetic world read by the real loaders: the training data loader, the real benchmark adapters through the
runner, and the ``synthetic`` aggregation profile; scores are checked against a direct computation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsc_clip.data.synthetic import WorldConfig, generate_world
from fsc_clip.evaluation.benchmarks.synthetic import COMP_BENCHMARKS

SMALL = dict(n_train=40, n_sugarcrepe=6, n_winoground=5, n_aro=8, n_zeroshot=9, n_retrieval=6, supersample=2)
NAMES = ("synthetic_sugarcrepe", "synthetic_winoground", "synthetic_aro", "synthetic_zeroshot", "synthetic_retrieval")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_world")
    generate_world(WorldConfig(seed=5, **SMALL), root)
    return root


@pytest.fixture(scope="module")
def tiny():
    from fsc_clip.models import load_model

    torch.manual_seed(0)
    return load_model("fsc-tiny", pretrained=None)


@pytest.fixture(scope="module")
def results(world, tiny, tmp_path_factory):
    from fsc_clip.evaluation.runner import evaluate

    return evaluate(tiny, "synthetic", world, tmp_path_factory.mktemp("eval"), batch_size=32, progress=False)


def _embed(lm, images: list[Path], texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    from fsc_clip.models import encode

    with torch.no_grad():
        pixels = torch.stack([lm.preprocess_val(Image.open(p).convert("RGB")) for p in images])
        feats = encode(lm.model, images=pixels, texts=lm.tokenizer(texts))
    return feats.image, feats.text


def test_train_tsv_read_by_the_real_loader(world, tiny):
    from fsc_clip.data import DataConfig, build_train_loader

    cfg = DataConfig(train_data=str(world / "train/train_neg_clip.tsv"), negatives="precomputed")
    loader = build_train_loader(cfg, tokenizer=tiny.tokenizer, preprocess=tiny.preprocess_val, batch_size=8, seed=0)
    loader.set_epoch(0)
    batch = next(iter(loader))
    assert batch.images.shape == (8, 3, 32, 32) and batch.n_skipped == 0
    assert loader.negative_types == ["negclip"] and bool(batch.neg_mask.all())


def test_every_synthetic_benchmark_runs_with_the_real_adapters(results):
    assert set(results) == set(NAMES)
    counts = {name: res["counts"] for name, res in results.items()}
    assert all(v == SMALL["n_sugarcrepe"] for v in counts["synthetic_sugarcrepe"].values())
    assert len(counts["synthetic_sugarcrepe"]) == 7
    assert counts["synthetic_winoground"]["synthetic_winoground::group"] == SMALL["n_winoground"]
    assert counts["synthetic_aro"] == {f"synthetic_aro::{s}": SMALL["n_aro"] for s in ("VG_Relation", "VG_Attribute")}
    assert counts["synthetic_zeroshot"] == {f"synthetic_zeroshot::{t}": SMALL["n_zeroshot"] for t in
                                            ("shape", "color", "count")}  # fmt: skip
    assert counts["synthetic_retrieval"]["synthetic_retrieval::i2t/R@1"] == SMALL["n_retrieval"]
    assert counts["synthetic_retrieval"]["synthetic_retrieval::t2i/R@1"] == 5 * SMALL["n_retrieval"]
    for res in results.values():
        assert all(0.0 <= v <= 100.0 for v in res["scores"].values())


def test_sugarcrepe_and_winoground_scores_match_a_direct_computation(world, tiny, results):
    for subset in ("replace_rel", "swap_att"):
        data = json.loads((world / f"sugarcrepe/data/{subset}.json").read_text())
        recs = list(data.values())
        images = [world / "sugarcrepe/images" / r["filename"] for r in recs]
        img, pos = _embed(tiny, images, [r["caption"] for r in recs])
        _, neg = _embed(tiny, images, [r["negative_caption"] for r in recs])
        expected = 100.0 * ((img * pos).sum(-1) > (img * neg).sum(-1)).float().mean().item()
        assert results["synthetic_sugarcrepe"]["scores"][f"synthetic_sugarcrepe::{subset}"] == pytest.approx(expected)

    examples = [json.loads(line) for line in (world / "winoground/data/examples.jsonl").read_text().splitlines()]
    folder = world / "winoground/data/images"
    text_ok = []
    for ex in examples:
        img, txt = _embed(tiny, [folder / f"{ex['image_0']}.png", folder / f"{ex['image_1']}.png"],
                          [ex["caption_0"], ex["caption_1"]])  # fmt: skip
        s = txt @ img.T  # [caption, image]
        text_ok.append(bool(s[0, 0] > s[1, 0] and s[1, 1] > s[0, 1]))
    got = results["synthetic_winoground"]["scores"]["synthetic_winoground::text"]
    assert got == pytest.approx(100.0 * sum(text_ok) / len(text_ok))


def test_synthetic_profile_headlines(results):
    from fsc_clip.evaluation.runner import summarize

    cols = summarize(results, profiles=["synthetic"])["profiles"]["synthetic"]
    assert list(cols) == [*COMP_BENCHMARKS, "Comp", "ZS", "I2T", "T2I"]
    assert cols["Comp"] == pytest.approx(sum(results[b]["score"] for b in COMP_BENCHMARKS) / 3)
    assert cols["ZS"] == pytest.approx(results["synthetic_zeroshot"]["score"])
    assert cols["I2T"] == pytest.approx(results["synthetic_retrieval"]["scores"]["synthetic_retrieval::i2t/R@1"])
    sub = results["synthetic_sugarcrepe"]["scores"]
    replace = sum(sub[f"synthetic_sugarcrepe::{s}"] for s in ("replace_obj", "replace_att", "replace_rel")) / 3
    swap = (sub["synthetic_sugarcrepe::swap_obj"] + sub["synthetic_sugarcrepe::swap_att"]) / 2
    add = (sub["synthetic_sugarcrepe::add_obj"] + sub["synthetic_sugarcrepe::add_att"]) / 2
    assert results["synthetic_sugarcrepe"]["score"] == pytest.approx((replace + swap + add) / 3)


def test_missing_world_names_the_file_and_the_fix(tmp_path, tiny):
    from fsc_clip.errors import DataNotFoundError
    from fsc_clip.evaluation.runner import evaluate

    with pytest.raises(DataNotFoundError, match="fsc-clip demo"):
        evaluate(tiny, ["synthetic_winoground"], tmp_path, None, progress=False)


def test_synthetic_zeroshot_has_no_published_size_warning(world, tiny, caplog):
    """The synthetic tasks have no published test set: no "the published test set has 0" line per task and model."""
    from fsc_clip.evaluation.benchmarks import BENCHMARKS
    from fsc_clip.evaluation.embedder import CachedEmbedder

    with caplog.at_level("WARNING"):
        BENCHMARKS.get("synthetic_zeroshot")().run(world, CachedEmbedder(tiny, batch_size=32, progress=False))
    assert "published test set" not in caplog.text
