"""Every supported way of naming weights reloads the same model; unsafe or absent weights fail clearly."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save_file

from fsc_clip.errors import ModelLoadError, UnsafeCheckpointError
from fsc_clip.models import load_model
from fsc_clip.models.checkpoint import read_checkpoint


def _outputs(model) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    images = torch.randn(2, 3, 32, 32)
    texts = torch.randint(1, 1000, (2, 16))
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(texts)


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    lm = load_model("fsc-tiny")
    return lm, _outputs(lm.model)


def _save(kind: str, sd: dict, path):
    if kind == "plain":
        torch.save(sd, path)
    elif kind == "wrapped":
        torch.save({"state_dict": sd, "epoch": 3}, path)
    elif kind == "ddp":
        torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    elif kind == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))


@pytest.mark.parametrize(
    "kind, suffix",
    [("plain", ".pt"), ("wrapped", ".pth"), ("ddp", ".bin"), ("safetensors", ".safetensors")],
)
def test_checkpoint_forms_reload_identically(tmp_path, source, kind, suffix):
    lm, expected = source
    path = tmp_path / f"weights{suffix}"
    _save(kind, lm.model.state_dict(), path)
    loaded = load_model("fsc-tiny", str(path))
    for a, b in zip(_outputs(loaded.model), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_run_checkpoint_carries_its_config(tmp_path, source):
    lm, expected = source
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    torch.save(
        {
            "format": "fsc-clip",
            "format_version": 1,
            "model": {"name": "fsc-tiny", "pretrained": None, "quick_gelu": False, "lora": None},
            "state_dict": lm.model.state_dict(),
            "config": {"seed": 0},
            "epoch": 1,
            "step": 10,
        },
        run / "latest.pt",
    )
    loaded = load_model(None, str(tmp_path / "run"))  # a run dir: no architecture needed
    assert loaded.spec.name == "fsc-tiny" and loaded.checkpoint.extra["step"] == 10
    for a, b in zip(_outputs(loaded.model), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "payload": _Evil()}, path)
    with pytest.raises(UnsafeCheckpointError, match="arbitrary unpickling") as err:
        read_checkpoint(path)
    assert "safetensors" in str(err.value)  # says how to convert


def test_missing_file_and_wrong_arch(tmp_path, source):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model("fsc-tiny", str(tmp_path / "nope.pt"))
    path = tmp_path / "w.pt"
    torch.save(source[0].model.state_dict(), path)
    with pytest.raises(ModelLoadError, match="do not fit"):
        load_model("fsc-demo", str(path))
    with pytest.raises(ModelLoadError, match="Did you mean"):
        load_model("ViT-B-32x")


def test_absent_tag_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        load_model("ViT-B-32", "openai")
    assert time.monotonic() - start < 10  # seconds, not minutes of retries
    msg = str(err.value)
    assert "ViT-B-32 / openai" in msg and "timm/vit_base_patch32_clip_224.openai" in msg and "cache" in msg
    with pytest.raises(ModelLoadError, match="Known tags"):
        load_model("ViT-B-32", "no_such_tag")


def _fake_hub_repo(cache, repo_id: str, files: dict[str, bytes]) -> None:
    """Lay out files the way huggingface_hub's cache stores them (refs/main -> snapshots/<rev>/...)."""
    rev = "0" * 40
    base = cache / f"models--{repo_id.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(rev)
    snap = base / "snapshots" / rev
    snap.mkdir(parents=True)
    for name, data in files.items():
        (snap / name).write_bytes(data)


def _sd_bytes(tmp_path, sd) -> bytes:
    path = tmp_path / "tmp.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path.read_bytes()


def test_fake_hf_cache_pretrained_tag_and_quick_gelu(tmp_path, monkeypatch, source):
    """A tag resolved offline from a Hugging Face cache folder; its QuickGELU flag is honoured."""
    import open_clip
    from open_clip import pretrained as pretrained_mod

    lm, _ = source
    cache = tmp_path / "hub"
    _fake_hub_repo(
        cache, "testorg/fsc-tiny-test", {"open_clip_model.safetensors": _sd_bytes(tmp_path, lm.model.state_dict())}
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    tags = {"fakeopenai": pretrained_mod._pcfg(hf_hub="testorg/fsc-tiny-test/", quick_gelu=True)}
    monkeypatch.setitem(pretrained_mod._PRETRAINED, "fsc-tiny", tags)
    loaded = load_model("fsc-tiny", "fakeopenai")
    assert loaded.spec.quick_gelu is True
    acts = {type(m).__name__ for m in loaded.model.modules()}
    assert "QuickGELU" in acts
    with pytest.raises(ModelLoadError, match="QuickGELU"):
        load_model("fsc-tiny", "fakeopenai", force_quick_gelu=False)
    assert open_clip.get_pretrained_cfg("fsc-tiny", "fakeopenai")


def test_fake_hf_cache_hf_hub_model(tmp_path, monkeypatch, source):
    lm, expected = source
    cache = tmp_path / "hub"
    model_cfg = json.loads(
        (__import__("fsc_clip.models.configs", fromlist=["x"]).CONFIG_DIR / "fsc-tiny.json").read_text()
    )
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}}
    _fake_hub_repo(
        cache,
        "testorg/tiny-clip",
        {
            "open_clip_config.json": json.dumps(config).encode(),
            "open_clip_model.safetensors": _sd_bytes(tmp_path, lm.model.state_dict()),
        },
    )
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    loaded = load_model("hf-hub:testorg/tiny-clip", cache_dir=str(cache))
    for a, b in zip(_outputs(loaded.model), expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ModelLoadError, match="not in the local cache"):
        load_model("hf-hub:testorg/absent", cache_dir=str(cache))


def test_local_file_into_gelu_vit_warns_about_quick_gelu(tmp_path, source):
    path = tmp_path / "fsc_clip_vitb32.pt"
    torch.save(source[0].model.state_dict(), path)  # wrong size for ViT-B-32: warns first, then fails to fit
    with pytest.warns(UserWarning, match="quick-gelu"), pytest.raises(ModelLoadError):
        load_model("ViT-B-32", str(path))


def test_missing_hugging_face_tokenizer_is_a_clear_error(tmp_path):
    """A SigLIP-style architecture whose HF tokenizer cannot be loaded: ModelLoadError naming it, no traceback."""
    from importlib import resources

    import open_clip

    tiny = resources.files("fsc_clip") / "models" / "model_configs" / "fsc-tiny.json"
    cfg = json.loads(tiny.read_text(encoding="utf-8"))
    cfg["text_cfg"]["hf_tokenizer_name"] = "./no-such-folder/tokenizer"  # not a repo id, not a folder: no network
    (tmp_path / "fsc-test-badtok.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path)
    try:
        with pytest.raises(ModelLoadError, match=r"fsc-test-badtok: its tokenizer \(\./no-such-folder/tokenizer\)"):
            load_model("fsc-test-badtok", None)
    finally:
        open_clip.factory._MODEL_CONFIGS.pop("fsc-test-badtok", None)  # leave open_clip's registry as it was
