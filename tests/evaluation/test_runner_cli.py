"""End to end: ``fsc-clip eval`` with the tiny model over every fixture; JSONs, summary, skip/overwrite, errors."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from eval_fixtures import write_all

from fsc_clip.cli.main import main
from fsc_clip.errors import UserError
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
    argv = ["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", "compositional", "--data-root", str(root),
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
    assert main([*argv[:5], "winoground", *argv[6:]]) == 0
    assert (out / "winoground.json").stat().st_mtime_ns == stamp
    assert main([*argv[:5], "winoground", *argv[6:], "--overwrite"]) == 0
    assert (out / "winoground.json").stat().st_mtime_ns != stamp


def test_cli_missing_data_explicit_name_is_an_error(tmp_path, capsys):
    code = main(["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", "winoground",
                 "--data-root", str(tmp_path), "--output", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "winoground" / "data" / "examples.jsonl") in err and "facebook/winoground" in err


def test_cli_unknown_benchmark_is_a_clear_error(tmp_path, capsys):
    code = main(["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", "winogrnd",
                 "--data-root", str(tmp_path), "--output", str(tmp_path / "o")])  # fmt: skip
    assert code == 2 and "Did you mean: winoground" in capsys.readouterr().err


def test_cli_group_word_skips_missing(tmp_path, capsys):
    code = main(["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", "compositional",
                 "--data-root", str(tmp_path), "--output", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    assert code == 2 and "no benchmark data found" in capsys.readouterr().err


def test_existing_result_of_another_model_is_refused(data_root, tmp_path, tiny_model):
    root, _ = data_root
    evaluate(tiny_model, ["winoground"], root, tmp_path, progress=False)
    data = json.loads((tmp_path / "winoground.json").read_text())
    data["model"]["pretrained"] = "something-else"
    (tmp_path / "winoground.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="another model"):
        evaluate(tiny_model, ["winoground"], root, tmp_path, progress=False)


def _tiny(seed: int):
    import torch

    from fsc_clip.models import load_model

    torch.manual_seed(seed)
    return load_model("fsc-tiny")


def test_two_random_tiny_models_into_one_folder_never_mix(data_root, tmp_path, caplog):
    """Same spec (fsc-tiny, random init), other weights: the second is refused, not served the first's results."""
    root, _ = data_root
    a, b = _tiny(1), _tiny(2)
    out = tmp_path / "res"
    first = evaluate(a, ["winoground", "sugarcrepe"], root, out, progress=False)
    stamp = (out / "winoground.json").stat().st_mtime_ns
    with pytest.raises(UserError, match="other weights") as err:
        evaluate(b, ["winoground"], root, out, progress=False)
    assert str(out / "winoground.json") in str(err.value) and str(out / "sugarcrepe.json") in str(err.value)
    with pytest.raises(UserError, match=re.escape(str(out / "sugarcrepe.json"))):  # not asked for: still mixes
        evaluate(b, ["aro"], root, out, progress=False)
    with pytest.raises(UserError, match=r"sugarcrepe\.json"):  # --overwrite replaces only what is re-evaluated
        evaluate(b, ["winoground"], root, out, overwrite=True, progress=False)
    assert (out / "winoground.json").stat().st_mtime_ns == stamp and not (out / "aro.json").exists()
    # the same weights again: reused, untouched
    with caplog.at_level("INFO", logger="fsc_clip.evaluation.runner"):
        again = evaluate(_tiny(1), ["winoground"], root, out, progress=False)
    assert (out / "winoground.json").stat().st_mtime_ns == stamp
    assert again["winoground"]["scores"] == first["winoground"]["scores"]
    assert any("for these weights and data, skipping" in m for m in caplog.messages)
    # b in its own folder gets its own fingerprint (and, here, its own scores)
    other = evaluate(b, ["winoground"], root, tmp_path / "b", progress=False)["winoground"]
    assert other["weights_fingerprint"]["sha256"] != first["winoground"]["weights_fingerprint"]["sha256"]
    assert other["data_fingerprint"] == first["winoground"]["data_fingerprint"]


def test_changed_benchmark_files_recompute_and_keep_the_old_result(data_root, tmp_path, tiny_model, caplog):
    root, _ = data_root
    data = tmp_path / "data"
    shutil.copytree(root / "winoground", data / "winoground")
    out = tmp_path / "res"
    before = evaluate(tiny_model, ["winoground"], data, out, progress=False)["winoground"]
    assert before["weights_fingerprint"]["tensors"] > 0 and before["data_fingerprint"]["annotation_files"] == 1
    examples = data / "winoground" / "data" / "examples.jsonl"
    lines = examples.read_text().splitlines()
    examples.write_text("\n".join(lines[:-1]) + "\n")  # one example fewer
    with caplog.at_level("WARNING", logger="fsc_clip.evaluation.runner"):
        after = evaluate(tiny_model, ["winoground"], data, out, progress=False)["winoground"]
    assert any("the benchmark files changed since" in m and str(out / "winoground.json") in m for m in caplog.messages)
    assert after["extra"]["n_items"] == before["extra"]["n_items"] - 1
    assert json.loads((out / "winoground.json").read_text())["data_fingerprint"] == after["data_fingerprint"]
    kept = [p for p in out.iterdir() if p.name.startswith("winoground.json.stale-")]
    assert len(kept) == 1 and json.loads(kept[0].read_text())["extra"]["n_items"] == before["extra"]["n_items"]
    # copying the data elsewhere (new modification times) keeps the fingerprint: the result is reused
    shutil.copytree(data, tmp_path / "copy")
    stamp = (out / "winoground.json").stat().st_mtime_ns
    evaluate(tiny_model, ["winoground"], tmp_path / "copy", out, progress=False)
    assert (out / "winoground.json").stat().st_mtime_ns == stamp


def test_result_without_fingerprint_is_recomputed(data_root, tmp_path, tiny_model, caplog):
    root, _ = data_root
    evaluate(tiny_model, ["winoground"], root, tmp_path, progress=False)
    data = json.loads((tmp_path / "winoground.json").read_text())
    del data["weights_fingerprint"]  # as written by an older fsc-clip
    (tmp_path / "winoground.json").write_text(json.dumps(data))
    with caplog.at_level("WARNING", logger="fsc_clip.evaluation.runner"):
        evaluate(tiny_model, ["winoground"], root, tmp_path, progress=False)
    assert any("weights cannot be verified: no fingerprint recorded" in m for m in caplog.messages)
    assert "weights_fingerprint" in json.loads((tmp_path / "winoground.json").read_text())


def test_weights_fingerprint_is_an_independent_sha256_of_the_state_dict(tiny_model):
    """Rebuilt here from the raw bytes; stable; one changed weight or a precision cast changes it."""
    import copy
    import hashlib

    import torch

    from fsc_clip.evaluation.fingerprint import weights_fingerprint

    fp = weights_fingerprint(tiny_model)
    state = tiny_model.model.state_dict()
    assert fp["tensors"] == len(state) and fp["bytes"] == sum(t.numel() * t.element_size() for t in state.values())
    assert fp == weights_fingerprint(tiny_model) and len(fp["sha256"]) == 64
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        next(other.model.parameters()).view(-1)[0] += 1e-3
    assert weights_fingerprint(other)["sha256"] != fp["sha256"]
    other.model.to(torch.bfloat16)
    assert weights_fingerprint(other)["sha256"] not in (fp["sha256"], "")
    # the documented recipe, rebuilt by hand (numpy's tobytes instead of a uint8 view)
    naive = hashlib.sha256(f"fsc-tiny|quick_gelu={tiny_model.spec.quick_gelu}|".encode())
    naive.update(re.sub(r" at 0x[0-9a-f]+", "", repr(tiny_model.preprocess_val)).encode())
    for key in sorted(state):
        naive.update(f"|{key}|{state[key].dtype}|{tuple(state[key].shape)}|".encode() + state[key].numpy().tobytes())
    assert naive.hexdigest() == fp["sha256"]


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
