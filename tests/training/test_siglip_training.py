"""Training a SigLIP-family model: the logit bias trains (or not) as the recipe says, accumulation stays exact,
and the run records its family so that ``load_model(run)`` rebuilds the right model.

Real tiny SigLIP-style open_clip model (``fsc-tiny-siglip``: timm ViT with an attention-pool head, non-causal text
tower pooled at the last token, learnable ``logit_bias``), real sigmoid losses, real files on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsc_clip.cli.main import main
from fsc_clip.losses import LossConfig, build_loss
from fsc_clip.models import load_model
from fsc_clip.training.optim import build_optimizer

from .conftest import base_args
from .test_accumulation import B, _batches, _grads

SIGLIP = "fsc-tiny-siglip"
NEGS = ["--add-random-text-hard-negatives", "precomputed"]


def _args(toy_data, tmp_path: Path, name: str, loss: str, *extra: str) -> list[str]:
    argv = base_args(toy_data, tmp_path, name)
    argv[argv.index("fsc-tiny")] = SIGLIP
    argv += ["--loss-name", loss, "--precomputed-negatives", str(toy_data["negatives"])]
    return [*argv, "--batch-size", "8", "--max-steps", "2", *extra]


def _bias(run: Path) -> float:
    sd = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["state_dict"]
    return float(sd["logit_bias"])


def _init_bias() -> float:
    return float(load_model(SIGLIP, None).model.logit_bias.detach())


@pytest.mark.parametrize("loss", ["siglip", "negsiglip", "fsc-siglip"])
def test_sigmoid_losses_train_the_bias_and_record_the_family(toy_data, tmp_path: Path, loss: str):
    extra = NEGS if loss != "siglip" else []
    assert main(_args(toy_data, tmp_path, loss, loss, *extra)) == 0
    run = tmp_path / loss
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    if loss == "fsc-siglip":
        assert {"sigmoid_loss", "global_hn_loss", "local_hn_loss"} <= records[-1].keys()
    ckpt = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    assert (ckpt["model"]["name"], ckpt["model"]["family"]) == (SIGLIP, "siglip")
    assert _bias(run) != pytest.approx(_init_bias(), abs=1e-7)  # the bias got gradients and moved
    lm = load_model(pretrained=str(run))
    assert (lm.spec.name, lm.spec.family) == (SIGLIP, "siglip")
    assert float(lm.model.logit_bias.detach()) == pytest.approx(_bias(run))


def test_lock_logit_bias_keeps_it(toy_data, tmp_path: Path):
    argv = _args(toy_data, tmp_path, "locked", "siglip", "--set", "model.lock_logit_bias=true")
    assert main(argv) == 0
    assert _bias(tmp_path / "locked") == _init_bias()


def test_softmax_loss_on_a_siglip_model_freezes_the_unused_bias(toy_data, tmp_path: Path):
    assert main(_args(toy_data, tmp_path, "softmax", "negclip", *NEGS)) == 0
    assert _bias(tmp_path / "softmax") == _init_bias()


def test_sigmoid_loss_on_a_clip_model_is_a_clear_error(toy_data, tmp_path: Path, capsys):
    argv = _args(toy_data, tmp_path, "clipmodel", "siglip")
    argv[argv.index(SIGLIP)] = "fsc-tiny"
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "sigmoid (SigLIP) loss" in err and "no logit_bias" in err and "Traceback" not in err


def test_bias_is_in_the_no_decay_optimizer_group():
    from fsc_clip.training.config import OptimConfig

    model = load_model(SIGLIP, None).model
    opt = build_optimizer(model, OptimConfig(wd=0.1))
    groups = [g for g in opt.param_groups if any(p is model.logit_bias for p in g["params"])]
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0


@pytest.mark.parametrize("loss_name", ["siglip", "fsc-siglip"])
def test_accumulation_is_exact_for_sigmoid_losses(toy_data, loss_name: str):
    torch.manual_seed(0)
    lm = load_model(SIGLIP, None)
    lm.model.double().train()
    loss_fn = build_loss(LossConfig(loss_name=loss_name))
    big = _batches(toy_data, lm, 2 * B)[0]
    small = _batches(toy_data, lm, B)[:2]
    ref = _grads(lm, loss_fn, [big])
    acc = _grads(lm, loss_fn, small)
    assert "logit_bias" in ref and "logit_scale" in ref  # counted once, not once per micro-batch
    assert ref.keys() == acc.keys()
    for name in ref:
        torch.testing.assert_close(acc[name], ref[name], rtol=1e-9, atol=1e-12, msg=name)
