"""2-step training runs through the CLI (tiny model, on-disk TSV + PNGs) and what they leave behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsc_clip.cli.main import main
from fsc_clip.config import ConfigError
from fsc_clip.models import load_model

from .conftest import assert_weights_close, base_args

METHODS = {
    "clip": ["--loss-name", "clip"],
    "negclip": ["--loss-name", "negclip", "--add-random-text-hard-negatives", "precomputed"],
    "fsc-clip": ["--loss-name", "fsc-clip", "--add-random-text-hard-negatives", "precomputed"],
    "fsc-clip-lora": ["--loss-name", "fsc-clip", "--add-random-text-hard-negatives", "precomputed", "--lora-rank", "4"],
}
TERMS = {
    "clip": {"clip_loss"},
    "negclip": {"clip_loss"},
    "fsc-clip": {"clip_loss", "global_hn_loss", "local_hn_loss"},
    "fsc-clip-lora": {"clip_loss", "global_hn_loss", "local_hn_loss"},
}


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", list(METHODS))
def test_two_step_run(toy_data, tmp_path: Path, method: str):
    negs = ["--precomputed-negatives", str(toy_data["negatives"])]
    argv = base_args(toy_data, tmp_path, method) + METHODS[method] + negs + ["--batch-size", "8", "--max-steps", "2"]
    assert main(argv) == 0
    run = tmp_path / method
    records = _records(run)
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert TERMS[method] <= r.keys()
        assert abs(sum(r[t] for t in TERMS[method]) - r["loss"]) < 1e-5
        assert r["samples_per_s"] > 0 and "lr" in r
    ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["format"] == "fsc-clip" and ckpt["format_version"] == 1
    assert (ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]) == (2, 0, 2)
    assert ckpt["model"]["name"] == "fsc-tiny" and ckpt["config"]["loss"]["loss_name"] == METHODS[method][1]
    assert {"optimizer", "rng", "scaler", "state_dict"} <= ckpt.keys()
    assert isinstance(ckpt["rng"][0]["numpy"][1], list)
    assert (run / "config.yaml").is_file()
    if method == "fsc-clip-lora":
        assert ckpt["model"]["lora"]["rank"] == 4
        assert any("lora_B" in k for k in ckpt["state_dict"])
    # The run loads back as a model (LoRA merged) and differs from its random initialisation.
    lm = load_model(pretrained=str(run))
    assert lm.spec.name == "fsc-tiny"
    torch.manual_seed(0)
    init = load_model("fsc-tiny", None).model.state_dict()
    changed = [k for k, v in lm.model.state_dict().items() if not torch.equal(v, init[k])]
    assert changed


def test_lora_trains_only_adapters(toy_data, tmp_path: Path):
    argv = base_args(toy_data, tmp_path, "lora") + METHODS["fsc-clip-lora"]
    argv += ["--precomputed-negatives", str(toy_data["negatives"]), "--batch-size", "8", "--max-steps", "2"]
    assert main(argv) == 0
    sd = torch.load(tmp_path / "lora" / "checkpoints" / "latest.pt", weights_only=True)["state_dict"]
    torch.manual_seed(0)
    init = load_model("fsc-tiny", None).model.state_dict()
    for key, value in sd.items():
        base = key.replace("parametrizations.", "").replace(".original", "")
        if "lora_" not in key and base in init:
            assert torch.equal(value, init[base]), f"{key} changed although only LoRA should train"


def test_loss_that_needs_negatives_without_them_is_a_clear_error(toy_data, tmp_path: Path, capsys):
    argv = [*base_args(toy_data, tmp_path, "x"), "--loss-name", "negclip", "--batch-size", "8", "--max-steps", "1"]
    assert main(argv) == 2
    assert "needs hard negatives" in capsys.readouterr().err


def test_missing_train_data_is_a_clear_error(capsys):
    assert main(["train", "--model", "fsc-tiny"]) == 2
    assert "--train-data" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        from fsc_clip.training.config import load_train_config

        load_train_config(None, ["optim.precision=fp16"])


def test_epochs_checkpoints_and_retention(toy_data, tmp_path: Path):
    # 48 rows / batch 16 = 3 steps per epoch; 3 epochs, keep the last 2 epoch files.
    argv = [*base_args(toy_data, tmp_path, "ep"), "--loss-name", "clip", "--batch-size", "16", "--epochs", "3"]
    argv += ["--set", "checkpoint.keep_last_epochs=2", "--lr-scheduler", "const"]
    assert main(argv) == 0
    ckpts = sorted(p.name for p in (tmp_path / "ep" / "checkpoints").iterdir())
    assert ckpts == ["epoch_2.pt", "epoch_3.pt", "latest.pt"]
    records = _records(tmp_path / "ep")
    assert [r["epoch"] for r in records] == [1, 1, 1, 2, 2, 2, 3, 3, 3]  # user-facing epochs count from 1
    latest = torch.load(tmp_path / "ep" / "checkpoints" / "latest.pt", weights_only=True)
    assert (latest["epoch"], latest["step"], latest["batch_in_epoch"]) == (3, 9, 0)
    # Resuming a finished run does nothing and keeps the weights.
    assert main([*argv, "--resume", "auto"]) == 0
    again = torch.load(tmp_path / "ep" / "checkpoints" / "latest.pt", weights_only=True)
    assert all(torch.equal(again["state_dict"][k], v) for k, v in latest["state_dict"].items())


def test_eval_hook_skips_gracefully_without_data_root(toy_data, tmp_path: Path, caplog):
    argv = [*base_args(toy_data, tmp_path, "ev"), "--loss-name", "clip", "--batch-size", "16", "--epochs", "1"]
    argv += ["--set", "eval.benchmarks=[sugarcrepe]"]
    assert main(argv) == 0
    assert "[eval] skipped" in caplog.text  # a logged warning (library code does not print)


def test_eval_hook_runs_the_evaluation_suite(toy_data, tmp_path: Path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
    from eval_fixtures import write_fixture  # the evaluation tests' native-layout fixture writer

    root = tmp_path / "bench"
    write_fixture("sugarcrepe", root)
    argv = [*base_args(toy_data, tmp_path, "ev2"), "--loss-name", "clip", "--batch-size", "16", "--epochs", "1"]
    argv += ["--set", "eval.benchmarks=[sugarcrepe]", "--set", f"eval.data_root={root}"]
    assert main(argv) == 0
    records = _records(tmp_path / "ev2")
    assert 0.0 <= records[-1]["eval"]["sugarcrepe"] <= 100.0 and records[-1]["epoch"] == 1
    assert (tmp_path / "ev2" / "eval" / "epoch_1" / "sugarcrepe.json").is_file()


@pytest.mark.parametrize(
    "option",
    [["--precision", "amp_bf16"], ["--grad-checkpointing"], ["--lock-image"], ["--grad-clip-norm", "0.5"]],
    ids=lambda o: o[0].lstrip("-"),
)
def test_training_options_run(toy_data, tmp_path: Path, option: list[str]):
    argv = [*base_args(toy_data, tmp_path, "opt"), *METHODS["fsc-clip"], *option, "--batch-size", "8"]
    argv += ["--precomputed-negatives", str(toy_data["negatives"]), "--max-steps", "2"]
    assert main(argv) == 0
    records = _records(tmp_path / "opt")
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    if option[0] == "--lock-image":
        sd = torch.load(tmp_path / "opt" / "checkpoints" / "latest.pt", weights_only=True)["state_dict"]
        torch.manual_seed(0)
        init = load_model("fsc-tiny", None).model.state_dict()
        assert torch.equal(sd["visual.conv1.weight"], init["visual.conv1.weight"])
        assert not torch.equal(sd["token_embedding.weight"], init["token_embedding.weight"])
    if option[0] == "--grad-clip-norm":
        assert all("grad_norm" in r for r in records)


def test_accumulation_run_equals_doubled_batch_run(toy_data, tmp_path: Path):
    common = [*METHODS["fsc-clip"], "--precomputed-negatives", str(toy_data["negatives"]), "--max-steps", "2"]
    assert main([*base_args(toy_data, tmp_path, "acc"), *common, "--batch-size", "8", "--accum-freq", "2"]) == 0
    assert main([*base_args(toy_data, tmp_path, "big"), *common, "--batch-size", "16"]) == 0
    a = torch.load(tmp_path / "acc" / "checkpoints" / "latest.pt", weights_only=True)
    b = torch.load(tmp_path / "big" / "checkpoints" / "latest.pt", weights_only=True)
    assert a["batch_in_epoch"] == 4 and b["batch_in_epoch"] == 2  # loader batches consumed
    assert_weights_close(a["state_dict"], b["state_dict"])
    ra, rb = _records(tmp_path / "acc"), _records(tmp_path / "big")
    for x, y in zip(ra, rb):
        assert abs(x["loss"] - y["loss"]) < 1e-4  # the logged loss is the loss of the whole accumulated batch
