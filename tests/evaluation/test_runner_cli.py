"""End to end: ``fsc-clip eval`` with the tiny model over every fixture; JSONs, summary, skip/overwrite, errors."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import write_all

from fsc_clip.cli.main import main
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.embedder import CachedEmbedder
from fsc_clip.evaluation.runner import evaluate, resolve_benchmarks

COMPOSITIONAL = [n for n in BENCHMARKS.names() if BENCHMARKS.get(n).kind == "compositional"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaldata")
    return root, write_all(root)


def test_cli_eval_all_fixtures(data_root, tmp_path, capsys):
    root, expected = data_root
    out = tmp_path / "res"
    argv = ["eval", "--model", "fsc-tiny", "--benchmarks", "compositional", "--data-root", str(root),
            "--output", str(out), "--batch-size", "16", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    for name in COMPOSITIONAL:
        res = json.loads((out / f"{name}.json").read_text())
        assert res["benchmark"] == name and res["model"]["name"] == "fsc-tiny"
        assert res["counts"] == expected[name]
        assert set(res["scores"]) == set(expected[name])
        assert 0.0 <= res["score"] <= 100.0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["benchmarks"]) == set(COMPOSITIONAL)
    assert summary["profiles"]["vl_compo"]["comp_avg"] is not None
    assert summary["profiles"]["fsc"]["Comp"] is not None
    assert "comp_avg" in (out / "summary.md").read_text()
    assert "Comp=" in capsys.readouterr().out

    # re-running skips existing results (files untouched); --overwrite recomputes
    stamp = (out / "winoground.json").stat().st_mtime_ns
    assert main([*argv[:4], "winoground", *argv[5:]]) == 0
    assert (out / "winoground.json").stat().st_mtime_ns == stamp
    assert main([*argv[:4], "winoground", *argv[5:], "--overwrite"]) == 0
    assert (out / "winoground.json").stat().st_mtime_ns != stamp


def test_cli_missing_data_explicit_name_is_an_error(tmp_path, capsys):
    code = main(["eval", "--model", "fsc-tiny", "--benchmarks", "winoground", "--data-root", str(tmp_path),
                 "--output", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "winoground" / "data" / "examples.jsonl") in err and "facebook/winoground" in err


def test_cli_unknown_benchmark_is_a_clear_error(tmp_path, capsys):
    code = main(["eval", "--model", "fsc-tiny", "--benchmarks", "winogrnd", "--data-root", str(tmp_path),
                 "--output", str(tmp_path / "o")])  # fmt: skip
    assert code == 2 and "Did you mean: winoground" in capsys.readouterr().err


def test_cli_group_word_skips_missing(tmp_path, capsys):
    code = main(["eval", "--model", "fsc-tiny", "--benchmarks", "compositional", "--data-root", str(tmp_path),
                 "--output", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    assert code == 2 and "no benchmark data found" in capsys.readouterr().err


def test_existing_result_of_another_model_is_refused(data_root, tmp_path, tiny_model):
    from fsc_clip.errors import UserError

    root, _ = data_root
    evaluate(tiny_model, ["winoground"], root, tmp_path, progress=False)
    data = json.loads((tmp_path / "winoground.json").read_text())
    data["model"]["pretrained"] = "something-else"
    (tmp_path / "winoground.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="another model"):
        evaluate(tiny_model, ["winoground"], root, tmp_path, progress=False)


def test_embedding_cache_encodes_each_unique_input_once(data_root, tiny_model):
    root, _ = data_root
    emb = CachedEmbedder(tiny_model, batch_size=8, progress=False)
    evaluate(tiny_model, ["sugarcrepe", "winoground", "colorswap"], root, None, embedder=emb, progress=False)
    n_images, n_texts = emb.stats["n_images"], emb.stats["n_texts"]
    assert n_images == emb.cache_sizes()["images"] and n_texts == emb.cache_sizes()["texts"]
    assert n_images == 2 + 6 + 6  # sugarcrepe reuses 2 COCO images over 14 items
    evaluate(tiny_model, ["sugarcrepe", "winoground"], root, None, embedder=emb, progress=False)
    assert emb.stats["n_images"] == n_images and emb.stats["n_texts"] == n_texts  # nothing re-encoded


def test_resolve_benchmarks():
    assert resolve_benchmarks("compositional") == COMPOSITIONAL
    assert resolve_benchmarks("winoground, sugarcrepe,winoground") == ["winoground", "sugarcrepe"]
    everything = resolve_benchmarks("all")
    assert set(COMPOSITIONAL) <= set(everything)
    assert all(BENCHMARKS.get(n).kind != "synthetic" for n in everything)
    with pytest.raises(KeyError, match="Did you mean"):
        resolve_benchmarks("winogrnd")


def test_cli_eval_training_run_dir(data_root, tmp_path, tiny_model):
    """``--checkpoint RUN_DIR`` evaluates checkpoints/latest.pt and writes to RUN_DIR/eval by default."""
    import torch

    root, expected = data_root
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = {
        "format": "fsc-clip",
        "format_version": 1,
        "model": {"name": "fsc-tiny", "pretrained": None, "quick_gelu": False, "lora": None},
        "state_dict": tiny_model.model.state_dict(),
        "config": {},
        "epoch": 1,
        "step": 10,
    }
    torch.save(ckpt, run / "checkpoints" / "latest.pt")
    argv = ["eval", "--checkpoint", str(run), "--benchmarks", "winoground", "--data-root", str(root), "--no-progress"]
    assert main(argv) == 0
    res = json.loads((run / "eval" / "winoground.json").read_text())
    assert res["model"]["name"] == "fsc-tiny" and res["counts"] == expected["winoground"]
    direct = evaluate(tiny_model, ["winoground"], root, None, progress=False)["winoground"]
    assert res["scores"] == direct["scores"]  # same weights, same scores


def test_embedder_workers_match_in_process(data_root, tiny_model):
    import torch

    from fsc_clip.evaluation.benchmarks.winoground import Winoground

    root, _ = data_root
    refs = [r for it in Winoground().load(root) for r in it.images]
    a = CachedEmbedder(tiny_model, batch_size=4, workers=0, progress=False).images(refs)
    b = CachedEmbedder(tiny_model, batch_size=4, workers=2, progress=False).images(refs)
    assert a.shape == (len(refs), 64)
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(a.norm(dim=-1), torch.ones(len(refs)), atol=1e-5)


def test_low_precision_model_is_fed_its_dtype(data_root):
    import torch

    from fsc_clip.evaluation.benchmarks.winoground import Winoground
    from fsc_clip.models import load_model

    root, _ = data_root
    lm = load_model("fsc-tiny", precision="bf16")
    refs = [r for it in Winoground().load(root) for r in it.images]
    emb = CachedEmbedder(lm, progress=False)
    feats = emb.images(refs)
    assert feats.dtype == torch.float32 and feats.shape == (len(refs), 64)
    assert emb.texts(["a dog", "a cat"]).dtype == torch.float32
