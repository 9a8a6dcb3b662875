"""Every zoo format: a tiny model written the way its source repository writes it loads through the zoo and
matches an independent computation (hand-merged LoRA, hand-patched CLoVe, a real ``transformers.CLIPModel``)."""

from __future__ import annotations

import dataclasses
import time

import open_clip
import pytest
import torch
import torch.nn.functional as F

from fsc_clip.errors import ModelLoadError
from fsc_clip.models import load_model
from fsc_clip.models.configs import register_model_configs
from fsc_clip.models.zoo import ZOO, LoraSpec, PatchSpec, ZooEntry, ZooSource, load_zoo_model
from fsc_clip.models.zoo.formats import FORMATS

RANK, ALPHA = 4, 1.0  # loralib r and lora_alpha of FSC-CLIP / DAC / TSVLC


def _entry(fmt: str, **kw) -> ZooEntry:
    base = dict(
        name=f"tiny-{fmt}",
        paper="test",
        architecture="fsc-tiny",
        base="openai",
        source=ZooSource(filename="w.pt"),
        format=fmt,
        quick_gelu=True,
        context_length=16,
        code={"repo": "test/test", "commit": "0" * 40},
    )
    base.update(kw)
    return ZooEntry(**base)


def _reference(quick_gelu: bool = True, context_length: int | None = None):
    """An independent open_clip model: created directly, not through fsc_clip's loaders."""
    register_model_configs()
    model = open_clip.create_model("fsc-tiny", force_quick_gelu=quick_gelu)
    if context_length is not None:  # as ytaek-oh/fsc-clip model_utils.adjust_context_length
        model.positional_embedding = torch.nn.Parameter(model.positional_embedding.data[:context_length].clone())
        model.context_length = context_length
        mask = torch.full((context_length, context_length), float("-inf")).triu_(1)
        model.register_buffer("attn_mask", mask, persistent=False)
    return model.eval()


def _inputs(context_length: int = 16):
    torch.manual_seed(1)
    images = torch.randn(2, 3, 32, 32)
    tokens = open_clip.get_tokenizer("fsc-tiny", context_length=context_length)(
        ["a red cube", "two blue dogs on grass"]
    )
    return images, tokens


def _encode(model, context_length: int = 16):
    images, tokens = _inputs(context_length)
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


def _assert_same_outputs(a, b, atol=1e-6):
    for x, y in zip(_encode(a, a.context_length), _encode(b, b.context_length)):
        torch.testing.assert_close(x, y, rtol=0, atol=atol)


@pytest.fixture(scope="module")
def trained():
    """A 'fine-tuned' tiny QuickGELU model with non-trivial weights."""
    torch.manual_seed(0)
    model = _reference()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def test_formats_registered():
    assert set(FORMATS.names()) >= {
        "open_clip",
        "openai_clip",
        "fsc_lora",
        "dac_lora",
        "clove_patch",
        "transformers_clip",
        "open_clip_hub",
    }


def test_open_clip_training_checkpoint_ddp(tmp_path, trained):
    """open_clip training/main.py: {"epoch", "name", "state_dict" (DDP 'module.'), "optimizer"}."""
    path = tmp_path / "epoch_5.pt"
    sd = {f"module.{k}": v for k, v in trained.state_dict().items()}
    torch.save({"epoch": 5, "name": "coco", "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}}, path)
    lm = load_zoo_model("x", str(path), entry=_entry("open_clip"))
    _assert_same_outputs(lm.model, trained, atol=0)
    # QuickGELU without any flag, because the entry descends from OpenAI weights
    assert type(lm.model.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert lm.spec.name == "tiny-open_clip" and lm.spec.quick_gelu


def test_quick_gelu_matters(tmp_path, trained):
    """The same file run with GELU gives other embeddings: the entry's activation is not cosmetic."""
    path = tmp_path / "w.pt"
    torch.save(trained.state_dict(), path)
    gelu = load_zoo_model("x", str(path), entry=_entry("open_clip", quick_gelu=False))
    assert not torch.allclose(_encode(gelu.model)[1], _encode(trained)[1], atol=1e-4)
    with pytest.raises(ModelLoadError, match="QuickGELU"):
        load_zoo_model("x", str(path), entry=_entry("open_clip"), force_quick_gelu=False)


def test_openai_clip_package_fp16_state_dict(tmp_path, trained):
    """GNM-CLIP: {"model_state_dict": clip_model.state_dict() (fp16 on GPU), "optimizer_state_dict": ...}."""
    half = {k: v.half() for k, v in trained.state_dict().items()}
    path = tmp_path / "snapshot.pt"
    torch.save({"model_state_dict": half, "optimizer_state_dict": {}, "epoch": 2}, path)
    lm = load_zoo_model("x", str(path), entry=_entry("openai_clip"))
    expected = _reference()
    expected.load_state_dict({k: v.float() for k, v in half.items()})
    _assert_same_outputs(lm.model, expected, atol=0)
    assert next(lm.model.parameters()).dtype == torch.float32


def _loralib_layout(base_sd: dict, gen: torch.Generator) -> dict:
    """Adapters exactly as ytaek-oh/fsc-clip lora_utils.patch_vit_clip_lora / DAC loralib name and shape them."""
    sd = dict(base_sd)
    for key, w in base_sd.items():
        if key.endswith("mlp.c_fc.weight") or key.endswith("mlp.c_proj.weight") or key.endswith("attn.out_proj.weight"):
            stem = key[: -len("weight")]
            sd[stem + "lora_A"] = torch.randn(RANK, w.shape[1], generator=gen) * 0.1  # [r, in]
            sd[stem + "lora_B"] = torch.randn(w.shape[0], RANK, generator=gen) * 0.1  # [out, r]
        elif key.endswith("attn.in_proj_weight"):
            sd[key + "_lora_A"] = torch.randn(RANK, w.shape[1], generator=gen) * 0.1  # [r, d]
            sd[key + "_lora_B"] = torch.randn(w.shape[0], RANK, generator=gen) * 0.1  # [3d, r]
        elif key == "visual.conv1.weight":
            out_c, in_c, k, _ = w.shape
            sd["visual.conv1.lora_A"] = torch.randn(RANK * k, in_c * k, generator=gen) * 0.1  # [r*k, in*k]
            sd["visual.conv1.lora_B"] = torch.randn(out_c * k, RANK * k, generator=gen) * 0.1  # [out*k, r*k]
    return sd


def _check_lora_merge(lm, lora_sd: dict) -> None:
    """Each merged layer computes what the authors' unmerged forward computes on random inputs."""
    merged = lm.model.state_dict()
    scaling = ALPHA / RANK
    gen = torch.Generator().manual_seed(3)
    adapted = set()
    for key in lora_sd:
        if not key.endswith("lora_A"):
            continue
        a, b = lora_sd[key].double(), lora_sd[key[: -len("lora_A")] + "lora_B"].double()
        if key == "visual.conv1.lora_A":  # loralib Conv2d.forward: conv2d(x, W + (B@A).view(W.shape) * s)
            w = lora_sd["visual.conv1.weight"].double()
            x = torch.randn(1, w.shape[1], 16, 16, generator=gen, dtype=torch.float64)
            expected = F.conv2d(x, w + (b @ a).view(w.shape) * scaling, stride=w.shape[-1])
            got = F.conv2d(x, merged["visual.conv1.weight"].double(), stride=w.shape[-1])
            adapted.add("visual.conv1.weight")
        else:  # Linear / MHA in_proj: linear(x, W) + linear(linear(x, A), B) * s  (lora_layers.py forward)
            w_key = key[: -len("_lora_A")] if key.endswith("_lora_A") else key[: -len("lora_A")] + "weight"
            w = lora_sd[w_key].double()
            x = torch.randn(3, w.shape[1], generator=gen, dtype=torch.float64)
            expected = F.linear(x, w) + F.linear(F.linear(x, a), b) * scaling
            got = F.linear(x, merged[w_key].double())
            adapted.add(w_key)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert len(adapted) == 1 + 4 * 4  # conv1 + (in_proj, out_proj, c_fc, c_proj) x 4 blocks of fsc-tiny
    for key, value in merged.items():  # everything else is the file's base weight, untouched
        if key not in adapted:
            torch.testing.assert_close(value, lora_sd[key].float(), rtol=0, atol=0)


@pytest.mark.parametrize("fmt, ddp", [("fsc_lora", False), ("fsc_lora", True), ("dac_lora", True)])
def test_loralib_lora_merged(tmp_path, trained, fmt, ddp):
    lora_sd = _loralib_layout(trained.state_dict(), torch.Generator().manual_seed(2))
    saved = {f"module.{k}" if ddp else k: v for k, v in lora_sd.items()}
    path = tmp_path / "lora.pt"
    torch.save({"epoch": 5, "name": "lora-run", "state_dict": saved}, path)
    lm = load_zoo_model("x", str(path), entry=_entry(fmt, lora=LoraSpec(RANK, ALPHA)))
    _check_lora_merge(lm, lora_sd)
    assert not any("lora" in k for k in lm.model.state_dict())


def test_lora_rank_mismatch_and_missing_adapters(tmp_path, trained):
    lora_sd = _loralib_layout(trained.state_dict(), torch.Generator().manual_seed(2))
    path = tmp_path / "lora.pt"
    torch.save({"state_dict": lora_sd}, path)
    with pytest.raises(ModelLoadError, match="rank 3"):
        load_zoo_model("x", str(path), entry=_entry("fsc_lora", lora=LoraSpec(3, ALPHA)))
    plain = tmp_path / "plain.pt"
    torch.save({"state_dict": trained.state_dict()}, plain)
    with pytest.raises(ModelLoadError, match="no loralib adapters"):
        load_zoo_model("x", str(plain), entry=_entry("dac_lora", lora=LoraSpec(RANK, ALPHA)))


def test_clove_patch_and_context_pruning(tmp_path, trained):
    """CLoVe: 0.4 * base + 0.6 * file, the file's text positional embedding shorter (here 12 of 16 rows)."""
    ctx = 12
    torch.manual_seed(5)
    base = _reference()
    base_path = tmp_path / "base.pt"
    torch.save(base.state_dict(), base_path)
    ft_sd = {k: v.clone() for k, v in trained.state_dict().items()}
    ft_sd["positional_embedding"] = ft_sd["positional_embedding"][:ctx].clone()
    path = tmp_path / "clove_without_patching.pt"
    torch.save({"epoch": 9, "state_dict": {f"module.{k}": v for k, v in ft_sd.items()}}, path)
    entry = _entry("clove_patch", context_length=ctx, patching=PatchSpec("wise_ft", 0.6, str(base_path)))
    lm = load_zoo_model("x", str(path), entry=entry)

    # independent: interpolate in float64 by hand, then load into a model shortened by hand
    base_sd = base.state_dict()
    base_sd["positional_embedding"] = base_sd["positional_embedding"][:ctx]
    expected_sd = {k: (0.4 * base_sd[k].double() + 0.6 * ft_sd[k].double()).float() for k in ft_sd}
    expected = _reference(context_length=ctx)
    expected.load_state_dict(expected_sd)
    assert lm.model.context_length == ctx and lm.tokenizer(["a cat"]).shape == (1, ctx)
    _assert_same_outputs(lm.model, expected, atol=1e-6)


def test_clove_refuses_other_keys(tmp_path, trained):
    base_path = tmp_path / "base.pt"
    torch.save(trained.state_dict(), base_path)
    path = tmp_path / "ft.pt"
    torch.save({**trained.state_dict(), "extra.weight": torch.zeros(2)}, path)
    entry = _entry("clove_patch", patching=PatchSpec("wise_ft", 0.6, str(base_path)))
    with pytest.raises(ModelLoadError, match="keys differ"):
        load_zoo_model("x", str(path), entry=entry)


def _hf_model(quick_gelu: bool = True):
    transformers = pytest.importorskip("transformers")
    from fsc_clip.models.zoo.formats.transformers_clip import hf_config_dict

    register_model_configs()
    cfg = transformers.CLIPConfig(**hf_config_dict(open_clip.get_model_config("fsc-tiny"), quick_gelu))
    torch.manual_seed(7)
    model = transformers.CLIPModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def _hf_features(model, context_length: int = 16):
    images, tokens = _inputs(context_length)
    with torch.no_grad():
        img = model.get_image_features(pixel_values=images)
        txt = model.get_text_features(input_ids=tokens)
    as_tensor = lambda out: out if torch.is_tensor(out) else out.pooler_output  # noqa: E731 (transformers 4 vs 5)
    return as_tensor(img), as_tensor(txt)


def test_transformers_clip_to_open_clip(tmp_path):
    """READ-CLIP: a CLIPModel saved with save_pretrained (config.json + model.safetensors)."""
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "read-clip")
    lm = load_zoo_model("x", str(tmp_path / "read-clip" / "model.safetensors"), entry=_entry("transformers_clip"))
    for ours, theirs in zip(_encode(lm.model), _hf_features(hf)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_open_clip_to_transformers_round_trip(trained):
    """Our weights in a transformers CLIPModel give the same embeddings, and convert back exactly."""
    from fsc_clip.models.zoo.formats.transformers_clip import hf_to_open_clip, open_clip_to_hf

    hf = _hf_model()
    hf_sd = open_clip_to_hf(trained.state_dict())
    missing, unexpected = hf.load_state_dict(hf_sd, strict=False)
    assert not unexpected and all(k.endswith("position_ids") for k in missing)
    for ours, theirs in zip(_encode(trained), _hf_features(hf)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    back = hf_to_open_clip(hf_sd)
    assert set(back) == set(trained.state_dict())
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(back[key], value, rtol=0, atol=0)


def test_transformers_config_contradiction_is_refused(tmp_path):
    hf = _hf_model(quick_gelu=False)
    hf.save_pretrained(tmp_path / "m")
    with pytest.raises(ModelLoadError, match="hidden_act"):
        load_zoo_model("x", str(tmp_path / "m" / "model.safetensors"), entry=_entry("transformers_clip"))


def test_load_model_by_zoo_name_and_offline_error(tmp_path, monkeypatch, trained):
    """``load_model(NAME)`` finds the file in $FSC_CLIP_CACHE_DIR; absent, it fails at once naming where to put it."""
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    entry = dataclasses.replace(_entry("open_clip"), name="tiny-zoo-test", source=ZooSource(filename="tiny.pt"))
    snapshot = ZOO.snapshot()
    ZOO.register(entry.name, entry)
    try:
        start = time.monotonic()
        with pytest.raises(ModelLoadError) as err:
            load_model("tiny-zoo-test")
        assert time.monotonic() - start < 5
        target = tmp_path / "cache" / "zoo" / "tiny-zoo-test" / "tiny.pt"
        assert str(target) in str(err.value) and "FSC_CLIP_CACHE_DIR" in str(err.value)
        target.parent.mkdir(parents=True)
        torch.save({"state_dict": trained.state_dict()}, target)
        lm = load_model("tiny-zoo-test")
        _assert_same_outputs(lm.model, trained, atol=0)
        assert lm.spec.name == "tiny-zoo-test" and lm.spec.quick_gelu
    finally:
        ZOO.restore(snapshot)


def test_hub_entry_missing_fails_fast(tmp_path, monkeypatch):
    """A real zoo entry on the Hub, not cached, offline: seconds, with the fetch command."""
    monkeypatch.setenv("FSC_CLIP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    start = time.monotonic()
    with pytest.raises(ModelLoadError) as err:
        load_model("fsc-clip-coco-vit-b-32")
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert "fsc-clip fetch fsc-clip-coco-vit-b-32" in msg and "coco_fsc-clip-ViT-B-32.pt" in msg
    with pytest.raises(ModelLoadError, match="Did you mean negclip"):
        load_model("negclp")
