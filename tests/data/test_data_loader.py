"""Table loader: shapes, negatives, determinism, resume, rank split, bad samples, workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsc_clip.data import BadSampleError, Batch, DataConfig, build_train_loader, epoch_batches


def _full(t: torch.Tensor) -> torch.Tensor:
    """Pad token ids back to the tiny model's context (16): batches drop trailing padding shared by all rows."""
    return torch.nn.functional.pad(t, (0, 16 - t.shape[-1]))


def _epoch(loader, epoch: int, start_batch: int = 0) -> list[Batch]:
    loader.set_epoch(epoch, start_batch)
    return list(loader)


def _ids(batches: list[Batch]) -> list[list[int]]:
    return [b.indices.tolist() for b in batches]


def test_batch_shapes_and_precomputed_tsv_negatives(coco_tsv, tok_pre, image_rows):
    tok, pre = tok_pre
    cfg = DataConfig(train_data=str(coco_tsv), negatives="precomputed")
    loader = build_train_loader(cfg, tokenizer=tok, preprocess=pre, batch_size=5, seed=0)
    assert len(loader) == 24 // 5 and loader.negative_types == ["negclip"]
    batches = _epoch(loader, 0)
    assert len(batches) == 4
    b = batches[0]
    assert b.images.shape == (5, 3, 32, 32) and b.images.dtype == torch.float32
    assert b.texts.shape[0] == 5 and b.texts.shape[1] <= 16 and b.texts.dtype == torch.long
    assert b.neg_texts.shape == (5, 1, b.texts.shape[1]) and b.neg_mask.shape == (5, 1) and b.neg_mask.all()
    for i, row in enumerate(b.indices.tolist()):
        assert torch.equal(_full(b.texts[i]), tok([image_rows[row]["title"]])[0])
        # the negative is one of that row's candidates, tokenised
        cands = tok(image_rows[row]["neg_caption"])
        assert any(torch.equal(_full(b.neg_texts[i, 0]), c) for c in cands)
    assert b.n_skipped == 0 and loader.total_skipped == 0


def test_no_negatives_by_default(coco_tsv, tok_pre):
    loader = build_train_loader(DataConfig(train_data=str(coco_tsv)), *tok_pre, batch_size=8)
    b = next(iter(loader))
    assert b.neg_texts is None and b.neg_mask is None and loader.negative_types == []


def test_precomputed_jsonl_joined_by_caption(tmp_path, image_rows, tok_pre, dh):
    table = dh.write_jsonl(tmp_path / "t.jsonl", image_rows)
    negfile = tmp_path / "negs.jsonl"
    with negfile.open("w") as f:
        for r in image_rows[::2]:  # only even rows have precomputed negatives
            negs = {"replace": [r["title"].replace("dog", "cat")], "ngram_shuffle_2": [r["title"][::-1]]}
            f.write(json.dumps({"caption": r["title"], "negatives": negs}) + "\n")
    cfg = DataConfig(
        train_data=str(table),
        csv_img_key="image",
        csv_caption_key="caption",
        precomputed_negatives=str(negfile),  # a negatives file alone turns negatives on
    )
    tok, pre = tok_pre
    loader = build_train_loader(cfg, tok, pre, batch_size=6, seed=1)
    assert loader.negative_types == ["replace", "ngram_shuffle_2"]
    for b in _epoch(loader, 0):
        for i, row in enumerate(b.indices.tolist()):
            has = row % 2 == 0
            assert b.neg_mask[i].tolist() == [has, has]
            if has:
                assert torch.equal(_full(b.neg_texts[i, 0]), tok([image_rows[row]["title"].replace("dog", "cat")])[0])
            else:
                assert not b.neg_texts[i].any()


def test_deterministic_and_fresh_per_epoch(coco_tsv, tok_pre):
    cfg = DataConfig(train_data=str(coco_tsv), negatives="precomputed")
    a = build_train_loader(cfg, *tok_pre, batch_size=4, seed=3)
    b = build_train_loader(cfg, *tok_pre, batch_size=4, seed=3)
    ea, eb = _epoch(a, 2), _epoch(b, 2)
    assert _ids(ea) == _ids(eb)
    for x, y in zip(ea, eb):
        assert torch.equal(x.images, y.images) and torch.equal(x.neg_texts, y.neg_texts)
    e3 = _epoch(a, 3)
    assert _ids(e3) != _ids(ea)  # a new order each epoch
    # a fresh negative choice each epoch: over 24 rows with 2 candidates some choices must change
    by_row2 = {r: n for x in ea for r, n in zip(x.indices.tolist(), x.neg_texts)}
    by_row3 = {r: n for x in e3 for r, n in zip(x.indices.tolist(), x.neg_texts)}
    assert any(not torch.equal(by_row2[r], by_row3[r]) for r in by_row2.keys() & by_row3.keys())
    # and a fresh augmentation (train transform is random) for the same image
    im2 = {r: im for x in ea for r, im in zip(x.indices.tolist(), x.images)}
    im3 = {r: im for x in e3 for r, im in zip(x.indices.tolist(), x.images)}
    assert any(not torch.equal(im2[r], im3[r]) for r in im2.keys() & im3.keys())


def test_loader_leaves_global_rng_alone(coco_tsv, tok_pre):
    loader = build_train_loader(DataConfig(train_data=str(coco_tsv)), *tok_pre, batch_size=4)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _epoch(loader, 0)
    assert torch.equal(torch.rand(3), expected)


def test_start_batch_equals_slicing_full_epoch(coco_tsv, tok_pre):
    cfg = DataConfig(train_data=str(coco_tsv), negatives="precomputed")
    loader = build_train_loader(cfg, *tok_pre, batch_size=4, seed=5)
    full = _epoch(loader, 1)
    tail = _epoch(loader, 1, start_batch=4)
    assert len(loader) == 6 and len(tail) == 2
    for x, y in zip(full[4:], tail):
        assert x.indices.tolist() == y.indices.tolist()
        assert torch.equal(x.images, y.images) and torch.equal(x.neg_texts, y.neg_texts)
    assert _epoch(loader, 1, start_batch=len(loader)) == []


@pytest.mark.parametrize(("n", "world", "batch"), [(24, 2, 5), (23, 3, 2), (10, 4, 1)])
def test_rank_split_disjoint_and_matches_single_process(n, world, batch):
    per_rank = [epoch_batches(n, batch, seed=7, epoch=4, rank=r, world_size=world) for r in range(world)]
    flat = [i for batches in per_rank for b in batches for i in b]
    assert len(flat) == len(set(flat)) == world * ((n // world) // batch) * batch  # no overlap, drop_last
    single = epoch_batches(n, batch * world, seed=7, epoch=4, rank=0, world_size=1)
    for t in range(len(per_rank[0])):  # step t of W ranks == step t of one process with batch W·B
        assert sorted(i for r in range(world) for i in per_rank[r][t]) == sorted(single[t])


def test_rank_loaders_cover_data(coco_tsv, tok_pre):
    cfg = DataConfig(train_data=str(coco_tsv))
    seen = []
    for rank in range(2):
        loader = build_train_loader(cfg, *tok_pre, batch_size=3, seed=0, rank=rank, world_size=2)
        assert len(loader) == 4
        seen += [i for b in _epoch(loader, 0) for i in b.indices.tolist()]
    assert sorted(seen) == list(range(24))


def _break_rows(tmp_path: Path, image_rows: list[dict]) -> list[dict]:
    rows = [dict(r) for r in image_rows]
    (tmp_path / rows[2]["filepath"]).unlink()  # missing image
    (tmp_path / rows[5]["filepath"]).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")  # corrupt image
    rows[9]["title"] = "   "  # empty caption
    return rows


def test_bad_samples_skipped_and_counted(tmp_path, image_rows, tok_pre, dh):
    rows = _break_rows(tmp_path, image_rows)
    path = dh.write_coco_neg_tsv(tmp_path / "bad.tsv", rows)
    loader = build_train_loader(DataConfig(train_data=str(path)), *tok_pre, batch_size=6)
    for epoch in range(2):
        batches = _epoch(loader, epoch)
        assert all(len(b) == 6 for b in batches)  # slots refilled: shapes stay fixed
        used = {i for b in batches for i in b.indices.tolist()}
        assert not used & {2, 5, 9}
        assert sum(b.n_skipped for b in batches) == 3
    assert loader.total_skipped == 6


def test_bad_sample_raise_names_file(tmp_path, image_rows, tok_pre, dh):
    rows = _break_rows(tmp_path, image_rows)
    path = dh.write_coco_neg_tsv(tmp_path / "bad.tsv", rows)
    loader = build_train_loader(DataConfig(train_data=str(path), on_bad_sample="raise"), *tok_pre, batch_size=24)
    with pytest.raises(BadSampleError, match=r"(002\.png|005\.png|row 9)"):
        _epoch(loader, 0)


def test_workers_give_identical_batches(coco_tsv, tok_pre):
    cfg0 = DataConfig(train_data=str(coco_tsv), negatives="precomputed")
    cfg2 = DataConfig(train_data=str(coco_tsv), negatives="precomputed", workers=2)
    ref = _epoch(build_train_loader(cfg0, *tok_pre, batch_size=4, seed=2), 1)
    par_loader = build_train_loader(cfg2, *tok_pre, batch_size=4, seed=2)
    for epoch in (1, 1):  # persistent workers see the epoch switch
        par = _epoch(par_loader, epoch, start_batch=0)
        assert _ids(par) == _ids(ref)
        for x, y in zip(ref, par):
            assert torch.equal(x.images, y.images) and torch.equal(x.neg_texts, y.neg_texts)
    assert _ids(_epoch(par_loader, 2)) != _ids(ref)


def test_two_ranks_equal_one_process_with_double_batch(coco_tsv, tok_pre):
    """Step t on 2 ranks × batch 3 holds exactly the rows, images and negatives of step t on 1 process × batch 6."""
    cfg = DataConfig(train_data=str(coco_tsv), negatives="precomputed")
    single = _epoch(build_train_loader(cfg, *tok_pre, batch_size=6, seed=9), 1)
    ranks = [_epoch(build_train_loader(cfg, *tok_pre, batch_size=3, seed=9, rank=r, world_size=2), 1) for r in (0, 1)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 4
    for t, whole in enumerate(single):
        parts = {
            i: (b.images[j], b.neg_texts[j])
            for b in (ranks[0][t], ranks[1][t])
            for j, i in enumerate(b.indices.tolist())
        }
        assert sorted(parts) == sorted(whole.indices.tolist())
        for j, i in enumerate(whole.indices.tolist()):
            assert torch.equal(parts[i][0], whole.images[j]) and torch.equal(
                _full(parts[i][1]), _full(whole.neg_texts[j])
            )
