"""``fsc-clip export``: our fine-tunes load unchanged in open_clip (local-dir / hf-hub layout) and transformers."""

from __future__ import annotations

import open_clip
import pytest
import torch

from fsc_clip.cli.main import main
from fsc_clip.errors import ModelLoadError
from fsc_clip.models import load_model, register_model_configs
from fsc_clip.models.zoo.export import export_model, read_config


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run checkpoint of fsc-tiny trained with QuickGELU (as our trainer writes it for OpenAI-initialised runs)."""
    register_model_configs()
    torch.manual_seed(0)
    model = open_clip.create_model("fsc-tiny", force_quick_gelu=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    run = tmp_path_factory.mktemp("run")
    (run / "checkpoints").mkdir()
    meta = {"name": "fsc-tiny", "pretrained": None, "quick_gelu": True, "lora": None}
    torch.save(
        {"format": "fsc-clip", "model": meta, "state_dict": model.state_dict()}, run / "checkpoints" / "latest.pt"
    )
    return run


def _inputs():
    torch.manual_seed(1)
    tokens = open_clip.get_tokenizer("fsc-tiny")(["a red cube", "two dogs"])
    return torch.randn(2, 3, 32, 32), tokens


@pytest.mark.parametrize("fmt", ["open_clip", "safetensors"])
def test_open_clip_exports_load_in_open_clip(tmp_path, run_dir, fmt):
    lm = load_model(None, str(run_dir))
    export_model(lm, tmp_path / "out", fmt)  # verifies internally
    assert read_config(tmp_path / "out")["model_cfg"]["quick_gelu"] is True
    other = open_clip.create_model(f"local-dir:{tmp_path / 'out'}").eval()  # what a user runs
    images, tokens = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(other.encode_image(images), lm.model.encode_image(images), rtol=0, atol=0)
        torch.testing.assert_close(other.encode_text(tokens), lm.model.encode_text(tokens), rtol=0, atol=0)


def test_transformers_export_via_cli(tmp_path, run_dir, capsys):
    transformers = pytest.importorskip("transformers")
    assert main(["export", str(run_dir), "--format", "transformers", "--output", str(tmp_path / "hf")]) == 0
    assert "verified" in capsys.readouterr().out
    hf = transformers.CLIPModel.from_pretrained(str(tmp_path / "hf")).eval()
    assert hf.config.text_config.hidden_act == "quick_gelu"
    lm = load_model(None, str(run_dir))
    images, tokens = _inputs()
    with torch.no_grad():
        img = hf.get_image_features(pixel_values=images)
        txt = hf.get_text_features(input_ids=tokens)
        img, txt = (x if torch.is_tensor(x) else x.pooler_output for x in (img, txt))
        torch.testing.assert_close(img, lm.model.encode_image(images), rtol=0, atol=1e-5)
        torch.testing.assert_close(txt, lm.model.encode_text(tokens), rtol=0, atol=1e-5)


def test_unknown_format_is_refused(tmp_path, run_dir):
    with pytest.raises(SystemExit) as err:  # argparse choices
        main(["export", str(run_dir), "--format", "onnx", "--output", str(tmp_path)])
    assert err.value.code == 2
    with pytest.raises(ModelLoadError, match="Unknown export format 'onnx'"):
        export_model(load_model(None, str(run_dir)), tmp_path, "onnx")
