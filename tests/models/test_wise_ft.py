"""WiSE-FT: state interpolation, the CLI on full and LoRA run checkpoints, output loadable by load_model."""

from __future__ import annotations

import copy

import pytest
import torch

from fsc_clip.cli.main import main
from fsc_clip.errors import ModelLoadError
from fsc_clip.models import load_model
from fsc_clip.models.lora import apply_lora, lora_config, lora_modules, merge_lora
from fsc_clip.models.wise_ft import interpolate


def test_interpolate_endpoints_and_midpoint():
    g = torch.Generator().manual_seed(0)
    pre = {"w": torch.randn(3, 4, generator=g), "h": torch.randn(2, generator=g).half(), "n": torch.tensor([1, 2])}
    ft = {"w": torch.randn(3, 4, generator=g), "h": torch.randn(2, generator=g).half(), "n": torch.tensor([3, 4])}
    assert torch.equal(interpolate(pre, ft, 0.0)["w"], pre["w"])
    assert torch.equal(interpolate(pre, ft, 1.0)["w"], ft["w"])
    mid = interpolate(pre, ft, 0.5)
    assert torch.allclose(mid["w"], (pre["w"] + ft["w"]) / 2)
    assert mid["h"].dtype == torch.float16 and torch.equal(mid["n"], ft["n"])
    with pytest.raises(ModelLoadError, match="only in finetuned"):
        interpolate(pre, {**ft, "extra": torch.zeros(1)}, 0.5)


def _run_ckpt(model, pretrained, lora=None):
    return {
        "format": "fsc-clip",
        "format_version": 1,
        "model": {"name": "fsc-tiny", "pretrained": pretrained, "quick_gelu": False, "lora": lora},
        "state_dict": model.state_dict(),
        "config": {"note": "test"},
        "epoch": 2,
        "step": 10,
    }


@pytest.fixture
def pre_and_ft(tiny_model, tmp_path):
    """A 'pre-trained' weights file (plain state dict, as open_clip saves) and a full fine-tuned run dir."""
    pre = copy.deepcopy(tiny_model.model)
    pre_path = tmp_path / "pretrained.pt"
    torch.save(pre.state_dict(), pre_path)
    ft = copy.deepcopy(pre)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in ft.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.01)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save(_run_ckpt(ft, str(pre_path)), run / "checkpoints" / "latest.pt")
    return pre.state_dict(), ft.state_dict(), pre_path, run


def test_cli_full_finetune(pre_and_ft, tmp_path, capsys):
    pre, ft, _pre_path, run = pre_and_ft
    out = tmp_path / "wise_{alpha}.pt"
    assert main(["wise-ft", "--finetuned", str(run), "--alpha", "0,0.5,1", "--output", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    for alpha in (0, 0.5, 1):
        got = load_model(pretrained=str(tmp_path / f"wise_{alpha:g}.pt")).model.state_dict()
        for k in ("visual.conv1.weight", "transformer.resblocks.1.attn.in_proj_weight", "logit_scale"):
            assert torch.allclose(got[k], (1 - alpha) * pre[k] + alpha * ft[k], atol=1e-6), (alpha, k)


def test_cli_explicit_pretrained_and_errors(pre_and_ft, tmp_path, capsys):
    _pre, _ft, pre_path, run = pre_and_ft
    out = tmp_path / "w.pt"
    assert (
        main(
            ["wise-ft", "--finetuned", str(run), "--pretrained", str(pre_path), "--alpha", "0.3", "--output", str(out)]
        )
        == 0
    )
    assert out.is_file()
    assert main(["wise-ft", "--finetuned", str(run), "--alpha", "0.2,0.4", "--output", str(out)]) == 2
    assert "{alpha}" in capsys.readouterr().err
    assert main(["wise-ft", "--finetuned", str(tmp_path / "missing"), "--alpha", "0.5", "--output", str(out)]) == 2


def test_cli_lora_scales_adapters(tiny_model, tmp_path):
    model = apply_lora(copy.deepcopy(tiny_model.model), rank=2, alpha=4)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for mod in lora_modules(model):
            mod.lora_B.copy_(torch.randn(mod.lora_B.shape, generator=g) * 0.05)
    torch.save(_run_ckpt(model, None, lora_config(model)), tmp_path / "lora.pt")
    base = tiny_model.model.state_dict()
    full = merge_lora(copy.deepcopy(model)).state_dict()  # base + ΔW
    out = tmp_path / "lora_wise.pt"
    assert main(["wise-ft", "--finetuned", str(tmp_path / "lora.pt"), "--alpha", "0.5", "--output", str(out)]) == 0
    got = load_model(pretrained=str(out)).model.state_dict()
    assert got.keys() == base.keys()
    for k in (
        "visual.conv1.weight",
        "visual.transformer.resblocks.0.attn.in_proj_weight",
        "transformer.resblocks.0.mlp.c_fc.weight",
    ):
        assert not torch.allclose(full[k], base[k])
        assert torch.allclose(got[k], base[k] + 0.5 * (full[k] - base[k]), atol=1e-6), k
    assert torch.equal(got["visual.proj"], base["visual.proj"])


def test_outputs_are_checksummed_and_an_unwritable_folder_fails_first(pre_and_ft, tmp_path, capsys):
    from fsc_clip.models.checkpoint import CHECKSUM_KEY, payload_sha256

    _pre, _ft, _pre_path, run = pre_and_ft
    out = tmp_path / "w.pt"
    assert main(["wise-ft", "--finetuned", str(run), "--alpha", "0.5", "--output", str(out)]) == 0
    record = torch.load(out, weights_only=True)
    assert record[CHECKSUM_KEY] == payload_sha256(record)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # A folder under a regular file cannot be created, even by root (ENOTDIR; chmod would not stop root). The
    # missing --finetuned shows the folder is checked before anything is loaded.
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    bad = blocker / "sub" / "w.pt"
    assert main(["wise-ft", "--finetuned", str(tmp_path / "missing"), "--alpha", "0.5", "--output", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(blocker / "sub") in err and "not writable" in err
