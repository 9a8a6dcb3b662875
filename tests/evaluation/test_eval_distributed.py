"""Distributed evaluation (``torchrun``, 2 real gloo processes on CPU) equals one process, score for score; the
on-disk embedding cache makes a second eval of the same weights encode nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_fixtures import write_all

import fsc_clip.models
from fsc_clip.evaluation.embedder import CachedEmbedder, _my_batches
from fsc_clip.evaluation.runner import evaluate

BENCHES = "sugarcrepe,winoground,colorswap,aro,eqben,vl_checklist"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaldata")
    write_all(root)
    return root


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _eval_argv(root: Path, out: Path) -> list[str]:
    # batch 4: every benchmark has several batches, dealt out to both ranks
    return ["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", BENCHES, "--data-root", str(root),
            "--output", str(out), "--batch-size", "4", "--no-progress", "--save-scores", "--device", "cpu"]  # fmt: skip


def _run(prefix: list[str], argv: list[str]) -> None:
    res = subprocess.run([*prefix, "-m", "fsc_clip.cli", *argv], env=_env(), capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]


def _tables(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files if k != "__header__"}


def test_batches_are_dealt_out_without_overlap():
    for n, bs, world in [(0, 4, 2), (3, 4, 2), (17, 4, 2), (17, 4, 3), (9, 1, 4)]:
        shards = [_my_batches(n, bs, r, world) for r in range(world)]
        assert sorted(i for s in shards for i in s) == list(range(n))
        for r, shard in enumerate(shards):  # rank r owns the single-process batches r, r + world, ...
            assert all((i // bs) % world == r for i in shard)


@pytest.mark.slow
def test_two_process_gloo_eval_equals_one_process(data_root: Path, tmp_path: Path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    _run([sys.executable], _eval_argv(data_root, single))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    _run(torchrun, [*_eval_argv(data_root, ddp), "--cache-dir", str(tmp_path / "cache")])

    names = BENCHES.split(",")
    assert sorted(p.name for p in ddp.glob("*.json")) == sorted([*(f"{n}.json" for n in names), "summary.json"])
    for name in names:
        a, b = (json.loads((d / f"{name}.json").read_text()) for d in (single, ddp))
        assert a["scores"] == b["scores"] and a["counts"] == b["counts"], name
        ta, tb = _tables(single / f"{name}.scores.npz"), _tables(ddp / f"{name}.scores.npz")
        assert ta.keys() == tb.keys() and ta
        for key in ta:  # every item's candidate scores, bit for bit (same batches, so same embeddings)
            np.testing.assert_array_equal(ta[key], tb[key], err_msg=f"{name}: {key}")
    # the ranks together persisted every embedding: the same weights read them back and encode nothing
    torch.manual_seed(0)
    lm = fsc_clip.models.load_model("fsc-tiny", None)
    emb = CachedEmbedder(lm, batch_size=4, progress=False, cache_dir=tmp_path / "cache")
    again = evaluate(lm, names, data_root, None, embedder=emb, progress=False)
    assert emb.stats["n_images"] == emb.stats["n_texts"] == 0 and emb.stats["n_disk"] > 0
    for name in names:
        assert again[name]["scores"] == json.loads((ddp / f"{name}.json").read_text())["scores"], name


def _shard_worker(rank: int, init: str, root: str, out: str) -> None:
    """One rank of a 2-process gloo group: encode the sugarcrepe inputs sharded, save stats and the full table.

    Each rank has its own disk cache (as on two nodes); rank 1's already holds everything, rank 0's nothing.
    """
    import torch.distributed as dist

    from fsc_clip.training.distributed import DistInfo

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        lm = fsc_clip.models.load_model("fsc-tiny", None)
        dist_info, cache = DistInfo(rank=rank, world_size=2), Path(out) / f"cache{rank}"
        emb = CachedEmbedder(lm, batch_size=1, progress=False, dist=dist_info, cache_dir=cache)
        evaluate(lm, ["sugarcrepe"], Path(root), None, embedder=emb, progress=False)
        table = torch.stack([emb._images[k] for k in sorted(emb._images)])  # [N, D], same order on every rank
        torch.save({"stats": dict(emb.stats), "table": table}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_share_the_work_and_hold_the_whole_table_with_different_disk_caches(data_root: Path, tmp_path: Path):
    torch.manual_seed(0)
    lm = fsc_clip.models.load_model("fsc-tiny", None)
    emb = CachedEmbedder(lm, batch_size=1, progress=False, cache_dir=tmp_path / "cache1")  # fills rank 1's cache
    evaluate(lm, ["sugarcrepe"], data_root, None, embedder=emb, progress=False)
    init = f"file://{tmp_path / 'store'}"
    torch.multiprocessing.spawn(_shard_worker, args=(init, str(data_root), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r1["stats"]["n_disk"] > 0 and r0["stats"]["n_disk"] == 0
    for kind in ("n_images", "n_texts"):  # what one rank lacks both encode, split, none done twice
        assert r0["stats"][kind] > 0 and r1["stats"][kind] > 0
        assert r0["stats"][kind] + r1["stats"][kind] == emb.stats[kind]
    single = torch.stack([emb._images[k] for k in sorted(emb._images)])
    assert torch.equal(r0["table"], single) and torch.equal(r1["table"], single)


def _counting_encode(monkeypatch) -> list[int]:
    """Count the model's forward passes (the real ``encode`` runs)."""
    calls = [0]
    real = fsc_clip.models.encode

    def counted(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(fsc_clip.models, "encode", counted)
    return calls


def test_disk_cache_second_eval_encodes_nothing(data_root: Path, tmp_path: Path, monkeypatch, caplog):
    names = ["sugarcrepe", "winoground"]
    torch.manual_seed(0)
    lm = fsc_clip.models.load_model("fsc-tiny", None)
    calls = _counting_encode(monkeypatch)
    cache = tmp_path / "cache"

    first = evaluate(lm, names, data_root, None, batch_size=4, progress=False, cache_dir=cache)
    n_first = calls[0]
    assert n_first > 0 and list(cache.rglob("*.npy"))
    second = evaluate(lm, names, data_root, None, batch_size=4, progress=False, cache_dir=cache)
    assert calls[0] == n_first  # zero encoder calls the second time
    assert [second[n]["scores"] for n in names] == [first[n]["scores"] for n in names]

    # other weights live in another namespace: everything is encoded again
    torch.manual_seed(1)
    other = fsc_clip.models.load_model("fsc-tiny", None)
    evaluate(other, names, data_root, None, batch_size=4, progress=False, cache_dir=cache)
    assert calls[0] > n_first and len({p.relative_to(cache).parts[0] for p in cache.rglob("*.npy")}) == 2

    # a damaged file is reported and re-encoded, never trusted
    damaged = sorted(cache.rglob("*.npy"))[0]
    damaged.write_bytes(b"not an npy file")
    n_before = calls[0]
    for model in (lm, other):
        evaluate(model, names, data_root, None, batch_size=4, progress=False, cache_dir=cache)
    assert calls[0] == n_before + 1 and "cannot read" in caplog.text
    np.load(damaged, allow_pickle=False)  # rewritten


@pytest.mark.slow
def test_refusal_on_rank_0_stops_every_rank(data_root: Path, tmp_path: Path):
    out = tmp_path / "res"
    argv = ["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", "winoground", "--data-root", str(data_root),
            "--output", str(out), "--no-progress", "--device", "cpu"]  # fmt: skip
    _run([sys.executable], [*argv, "--seed", "1"])  # results of other weights in the folder
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    res = subprocess.run([*torchrun, "-m", "fsc_clip.cli", *argv], env=_env(), capture_output=True, text=True,
                         timeout=300)  # fmt: skip  # a rank left waiting in a collective would hang until the timeout
    assert res.returncode != 0
    assert (res.stderr + res.stdout).count("already holds results of other weights") >= 2  # said by both ranks
