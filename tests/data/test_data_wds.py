"""Webdataset loader over shards written here with webdataset's TarWriter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsc_clip.config import ConfigError
from fsc_clip.data import BadSampleError, DataConfig, build_train_loader
from fsc_clip.data.wds import batches_of_worker, sample_id


def _full(t: torch.Tensor) -> torch.Tensor:
    """Pad token ids back to the tiny model's context (16): batches drop trailing padding shared by all rows."""
    return torch.nn.functional.pad(t, (0, 16 - t.shape[-1]))


def write_shards(folder: Path, prefix: str, n_shards: int, per_shard: int, dh, bad: dict | None = None) -> list[str]:
    """Shards ``prefix-{i}.tar`` of ``per_shard`` samples (png + txt + json); ``bad`` maps key -> defect."""
    import webdataset as wds

    folder.mkdir(parents=True, exist_ok=True)
    bad = bad or {}
    captions = []
    for s in range(n_shards):
        with wds.TarWriter(str(folder / f"{prefix}-{s}.tar")) as sink:
            for j in range(per_shard):
                key = f"{prefix}{s}_{j:03d}"
                i = s * per_shard + j + (1000 if prefix == "b" else 0)
                cap = dh.caption(i)
                sample = {"__key__": key, "png": dh.png_bytes(i), "txt": cap, "json": {"caption": cap.upper()}}
                if bad.get(key) == "corrupt":
                    sample["png"] = b"garbage bytes"
                elif bad.get(key) == "empty":
                    sample["txt"] = "  "
                sink.write(sample)
                captions.append(cap)
    return captions


def _epoch(loader, epoch: int, start_batch: int = 0):
    loader.set_epoch(epoch, start_batch)
    return list(loader)


def _ids(batches):
    return [b.indices.tolist() for b in batches]


def test_brace_and_multi_source_one_pass(tmp_path, tok_pre, dh):
    caps = write_shards(tmp_path / "a", "a", 2, 6, dh) + write_shards(tmp_path / "b", "b", 1, 6, dh)
    spec = f"{tmp_path}/a/a-{{0..1}}.tar::{tmp_path}/b/b-0.tar"
    cfg = DataConfig(train_data=spec, train_num_samples=18, wds_shuffle_buffer=5)
    tok, pre = tok_pre
    loader = build_train_loader(cfg, tok, pre, batch_size=3, seed=0)
    assert len(loader) == 6
    batches = _epoch(loader, 0)
    assert len(batches) == 6 and batches[0].images.shape == (3, 3, 32, 32) and batches[0].texts.shape[0] == 3
    seen = [c for b in batches for c in b.captions]
    assert sorted(seen) == sorted(caps)  # one epoch = one pass over all three shards, no repeats
    b0 = batches[0]
    assert torch.equal(_full(b0.texts), tok(b0.captions))


def test_caption_key_from_json_member(tmp_path, tok_pre, dh):
    caps = write_shards(tmp_path, "a", 1, 4, dh)
    cfg = DataConfig(train_data=f"{tmp_path}/a-0.tar", train_num_samples=4, wds_caption_key="json:caption")
    b = next(iter(build_train_loader(cfg, *tok_pre, batch_size=4)))
    assert sorted(b.captions) == sorted(c.upper() for c in caps)


def test_deterministic_fresh_and_resume_with_workers(tmp_path, tok_pre, dh):
    write_shards(tmp_path, "a", 4, 5, dh)
    cfg = DataConfig(train_data=f"{tmp_path}/a-{{0..3}}.tar", train_num_samples=20, workers=2, wds_shuffle_buffer=4)
    a = build_train_loader(cfg, *tok_pre, batch_size=2, seed=1)
    b = build_train_loader(cfg, *tok_pre, batch_size=2, seed=1)
    full = _epoch(a, 1)
    assert len(full) == len(a) == 10
    assert _ids(full) == _ids(_epoch(b, 1))
    assert _ids(_epoch(a, 2)) != _ids(full)
    for start in (3, 4):  # odd and even: the worker that serves the first resumed batch changes
        tail = _epoch(b, 1, start_batch=start)
        assert _ids(tail) == _ids(full[start:])
        assert all(torch.equal(x.images, y.images) for x, y in zip(tail, full[start:]))


@pytest.mark.parametrize(("v", "n", "start", "total"), [(0, 1, 0, 5), (1, 3, 4, 10), (2, 3, 4, 10), (0, 2, 7, 7)])
def test_batches_of_worker_partition(v, n, start, total):
    skip, count = batches_of_worker(v, n, start, total)
    mine = [j for j in range(total) if j % n == v]
    assert skip == sum(j < start for j in mine) and count == sum(j >= start for j in mine)


def test_rank_split_disjoint(tmp_path, tok_pre, dh):
    caps = write_shards(tmp_path, "a", 4, 4, dh)
    cfg = DataConfig(train_data=f"{tmp_path}/a-{{0..3}}.tar", train_num_samples=16)
    seen = []
    for rank in range(2):
        loader = build_train_loader(cfg, *tok_pre, batch_size=4, seed=0, rank=rank, world_size=2)
        assert len(loader) == 2
        seen += [c for b in _epoch(loader, 0) for c in b.captions]
    assert sorted(seen) == sorted(caps)


def test_resampled_stream(tmp_path, tok_pre, dh):
    write_shards(tmp_path, "a", 1, 3, dh)
    cfg = DataConfig(train_data=f"{tmp_path}/a-0.tar", train_num_samples=10, wds_resampled=True, workers=0)
    loader = build_train_loader(cfg, *tok_pre, batch_size=5, seed=0, rank=1, world_size=2)
    assert len(loader) == 1 and len(_epoch(loader, 0)[0]) == 5


def test_too_few_shards_without_resampling(tmp_path, tok_pre, dh):
    write_shards(tmp_path, "a", 1, 4, dh)
    with pytest.raises(ConfigError, match="resampl"):
        build_train_loader(DataConfig(train_data=f"{tmp_path}/a-0.tar", train_num_samples=4), *tok_pre, 2, world_size=2)


def test_num_samples_from_sizes_json_or_error(tmp_path, tok_pre, dh):
    write_shards(tmp_path, "a", 2, 3, dh)
    spec = f"{tmp_path}/a-{{0..1}}.tar"
    with pytest.raises(ConfigError, match="train_num_samples"):
        build_train_loader(DataConfig(train_data=spec), *tok_pre, batch_size=2)
    (tmp_path / "sizes.json").write_text(json.dumps({"a-0.tar": 3, "a-1.tar": 3}))
    assert len(build_train_loader(DataConfig(train_data=spec), *tok_pre, batch_size=2)) == 3


def test_bad_samples_skipped_counted_or_raised(tmp_path, tok_pre, dh):
    bad = {"a0_001": "corrupt", "a0_004": "empty"}
    write_shards(tmp_path, "a", 1, 8, dh, bad=bad)
    cfg = DataConfig(train_data=f"{tmp_path}/a-0.tar", train_num_samples=6, wds_shuffle_buffer=0)
    loader = build_train_loader(cfg, *tok_pre, batch_size=3)
    batches = _epoch(loader, 0)
    assert [len(b) for b in batches] == [3, 3]
    assert sum(b.n_skipped for b in batches) == 2 == loader.total_skipped
    cfg_raise = DataConfig(train_data=f"{tmp_path}/a-0.tar", train_num_samples=6, on_bad_sample="raise")
    with pytest.raises(BadSampleError, match=r"a0_00[14]"):
        _epoch(build_train_loader(cfg_raise, *tok_pre, batch_size=3), 0)


def test_precomputed_negatives_joined_by_caption(tmp_path, tok_pre, dh):
    caps = write_shards(tmp_path, "a", 1, 4, dh)
    negfile = tmp_path / "negs.jsonl"
    negfile.write_text(
        "".join(json.dumps({"caption": c, "negatives": {"negclip": [c + " swapped"]}}) + "\n" for c in caps)
    )
    cfg = DataConfig(
        train_data=f"{tmp_path}/a-0.tar",
        train_num_samples=4,
        negatives="precomputed",
        precomputed_negatives=str(negfile),
    )
    tok, pre = tok_pre
    b = next(iter(build_train_loader(cfg, tok, pre, batch_size=4)))
    assert b.neg_mask.all() and b.neg_texts.shape == (4, 1, b.texts.shape[1])
    assert torch.equal(_full(b.neg_texts[:, 0]), tok([c + " swapped" for c in b.captions]))


def test_sample_id_ignores_folder():
    assert sample_id("/x/y/shard-1.tar", "k") == sample_id("/elsewhere/shard-1.tar", "k") != sample_id("s.tar", "k")


def test_corrupt_shard_is_skipped(tmp_path, tok_pre, dh):
    caps = write_shards(tmp_path, "a", 1, 4, dh)
    (tmp_path / "a-1.tar").write_bytes(b"this is not a tar archive" * 50)
    cfg = DataConfig(train_data=f"{tmp_path}/a-{{0..1}}.tar", train_num_samples=8, wds_shuffle_buffer=0)
    batches = _epoch(build_train_loader(cfg, *tok_pre, batch_size=4), 0)  # webdataset warns and goes on
    assert len(batches) == 2 and all(sorted(b.captions) == sorted(caps) for b in batches)
