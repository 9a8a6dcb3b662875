"""Online hard negatives generated in the loader's workers (needs developer B's fsc_clip.negatives + spaCy)."""

from __future__ import annotations

import json

import pytest
import torch

from fsc_clip.data import DataConfig, build_train_loader


def _full(t: torch.Tensor) -> torch.Tensor:
    """Pad token ids back to the tiny model's context (16): batches drop trailing padding shared by all rows."""
    return torch.nn.functional.pad(t, (0, 16 - t.shape[-1]))


negatives = pytest.importorskip("fsc_clip.negatives")
if not hasattr(negatives, "generate_negatives"):
    pytest.skip("fsc_clip.negatives.generate_negatives not available yet", allow_module_level=True)


def _by_index(loader, epoch):
    loader.set_epoch(epoch)
    out = {}
    for b in loader:
        for i, idx in enumerate(b.indices.tolist()):
            out[idx] = (b.neg_texts[i], b.neg_mask[i])
    return out


def test_online_negatives_independent_of_batching_and_workers(tmp_path, image_rows, tok_pre, dh):
    table = dh.write_jsonl(tmp_path / "t.jsonl", image_rows[:12])
    cfg = DataConfig(train_data=str(table), csv_img_key="image", csv_caption_key="caption", negatives="fsc-clip")
    tok, pre = tok_pre
    a = build_train_loader(cfg, tok, pre, batch_size=4, seed=0)
    assert a.negative_types == list(negatives.style_types("fsc-clip"))
    b = build_train_loader(DataConfig(**{**cfg.__dict__, "workers": 2}), tok, pre, batch_size=6, seed=0)
    ra, rb = _by_index(a, 0), _by_index(b, 0)
    assert ra.keys() == rb.keys()
    for idx in ra:
        assert torch.equal(_full(ra[idx][0]), _full(rb[idx][0])) and torch.equal(ra[idx][1], rb[idx][1])
    # same as calling the generator directly with the dataset indices
    caps = [image_rows[i]["title"] for i in sorted(ra)]
    direct, _types = negatives.generate_negatives(
        caps, style="fsc-clip", seed=0, epoch=0, indices=sorted(ra), context_length=tok.context_length
    )
    for idx, row in zip(sorted(ra), direct):
        for k, neg in enumerate(row):
            assert bool(ra[idx][1][k]) == (neg is not None)
            if neg is not None:
                assert torch.equal(_full(ra[idx][0][k]), tok([neg])[0])


def test_precomputed_candidates_take_precedence(tmp_path, image_rows, tok_pre, dh):
    table = dh.write_jsonl(tmp_path / "t.jsonl", image_rows[:8])
    negfile = tmp_path / "negs.jsonl"
    negfile.write_text(
        "".join(
            json.dumps({"caption": r["title"], "negatives": {"negclip": ["PRE " + r["title"]]}}) + "\n"
            for r in image_rows
        )
    )
    cfg = DataConfig(
        train_data=str(table),
        csv_img_key="image",
        csv_caption_key="caption",
        negatives="fsc-clip",
        precomputed_negatives=str(negfile),
    )
    tok, pre = tok_pre
    loader = build_train_loader(cfg, tok, pre, batch_size=4)
    k = loader.negative_types.index("negclip")
    for idx, (neg, mask) in _by_index(loader, 0).items():
        assert mask[k] and torch.equal(_full(neg[k]), tok(["PRE " + image_rows[idx]["title"]])[0])
