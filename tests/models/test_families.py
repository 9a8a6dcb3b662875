"""Every open_clip model family, through one tiny random config each: global and dense features against open_clip's
and timm's own code, the FSC-CLIP losses forward and backward, and ``fsc-clip eval`` on the synthetic world.

The registry is the test matrix: one :class:`Case` per packaged tiny config; a new family is one more JSON and one
more row. Loss names per case are tuples so that more losses (the sigmoid ones) are one more entry. The Hugging Face
text-tower family (roberta-ViT-B-32, xlm-roberta, nllb-clip) cannot ship as package data (its config names a model
folder), so its test builds a tiny RoBERTa folder offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from fsc_clip.models import DenseFeaturesUnsupported, encode, load_model, supports_dense, trim_tokens
from fsc_clip.models.dense import timm_token_head

CAPTIONS = ["a red cube left of a ball", "two dogs", "x"]
NEGATIVES = [["a ball left of a red cube", "a blue cube left of a ball"], ["three dogs", "two cats"], ["y", "z"]]


@dataclass(frozen=True)
class Case:
    """One tiny config and what the toolkit must do with it.

    Attributes:
        name: Our open_clip architecture (``src/fsc_clip/models/model_configs``).
        family: :func:`fsc_clip.models.families.family_of` of it.
        image_head: How the image tower pools (``None``: no dense image tokens, global features only).
        losses: Losses trained in the loss test (dense ones need :func:`supports_dense`).
        text_dense: The text tower has per-token features (open_clip's text transformer without a class token).
    """

    name: str
    family: str
    image_head: str | None
    losses: tuple[str, ...]
    text_dense: bool = True


DENSE_LOSSES = ("fsc-clip",)
GLOBAL_LOSSES = ("negclip",)
CASES = (
    Case("fsc-tiny", "clip-vit", "open_clip-token", DENSE_LOSSES + GLOBAL_LOSSES),
    Case("fsc-tiny-clipa", "clip-vit", "open_clip-avg-ln", DENSE_LOSSES),
    Case("fsc-tiny-siglip", "siglip", "timm-map", DENSE_LOSSES + GLOBAL_LOSSES + ("fsc-siglip", "negsiglip")),
    Case("fsc-tiny-pe", "timm-map", "timm-map", DENSE_LOSSES),
    Case("fsc-tiny-eva", "timm-vit", "timm-vit", DENSE_LOSSES),
    Case("fsc-tiny-rn", "clip-resnet", None, GLOBAL_LOSSES),
    Case("fsc-tiny-fastvit", "timm-conv", None, GLOBAL_LOSSES),
    Case("fsc-tiny-coca", "coca", None, GLOBAL_LOSSES, text_dense=False),
)
IDS = [c.name for c in CASES]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {c.name: load_model(c.name) for c in CASES}


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(1)
    return torch.randn(3, 3, 32, 32)


def _perturb_(model: torch.nn.Module) -> None:
    """Random init leaves some parameters at exact zeros or ones (biases, LayerNorm, timm's latent); move them so
    that no identity holds by accident."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_config_family_tokenizer_and_dense_support(case, models):
    from fsc_clip.models.configs import CONFIG_DIR
    from fsc_clip.models.families import family_of

    lm = models[case.name]
    context = json.loads((CONFIG_DIR / f"{case.name}.json").read_text())["text_cfg"]["context_length"]
    assert lm.tokenizer(CAPTIONS).shape == (3, context)  # from the config, not a fixed 77
    assert family_of(case.name) == lm.spec.family == case.family
    assert supports_dense(lm.model) is (case.image_head is not None)
    expect_bias = case.family == "siglip"
    assert (encode(lm.model, texts=lm.tokenizer(["a"])).logit_bias is not None) is expect_bias


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_global_features_are_open_clips_also_for_trimmed_texts(case, models, batch):
    model, tokenizer = models[case.name].model.eval(), models[case.name].tokenizer
    texts = tokenizer(CAPTIONS)
    (short,) = trim_tokens(texts)
    assert short.shape[1] < texts.shape[1]
    with torch.no_grad():
        feats = encode(model, batch, texts)
        torch.testing.assert_close(feats.image, model.encode_image(batch, normalize=True), rtol=0, atol=0)
        torch.testing.assert_close(feats.text, model.encode_text(texts, normalize=True), rtol=0, atol=0)
        torch.testing.assert_close(encode(model, texts=short).text, feats.text, rtol=1e-5, atol=1e-6)
        if getattr(model, "logit_bias", None) is not None:
            assert feats.logit_bias is model.logit_bias  # the raw parameter (trainable through the loss)


# ----- dense features ----------------------------------------------------------------------------------------------

DENSE = [c for c in CASES if c.image_head]


@pytest.fixture(scope="module")
def perturbed(models):
    import copy

    out = {}
    for case in DENSE:
        model = copy.deepcopy(models[case.name].model).eval()
        _perturb_(model)
        out[case.name] = model
    return out


@pytest.mark.parametrize("case", DENSE, ids=[c.name for c in DENSE])
def test_dense_text_tokens_reproduce_the_pooled_text_feature(case, models, perturbed):
    model, tokenizer = perturbed[case.name], models[case.name].tokenizer
    texts = tokenizer(CAPTIONS)
    with torch.no_grad():
        feats = encode(model, texts=texts, dense=True)
        ref = model.encode_text(texts)  # [T, D] unnormalised, open_clip's forward
    tower = getattr(model, "text", model)
    pool = getattr(tower, "pool_type", getattr(model, "text_pool_type", None))
    pooled_at = {"argmax": texts.argmax(-1), "last": torch.full((3,), texts.shape[1] - 1)}[pool]
    torch.testing.assert_close(feats.text_tokens[torch.arange(3), pooled_at], ref, rtol=1e-5, atol=1e-5)
    assert feats.text_tokens.shape[:2] == texts.shape
    assert (feats.text_mask.sum(1) == (texts != 0).sum(1) - 1).all()  # CLIP BPE: padding and start-of-text dropped


def _final_tokens(visual, images):
    """Final-layer tokens the head sees, all positions, from open_clip's / timm's own forward (no ln_post for the
    open_clip ViT: it belongs to the head there)."""
    from open_clip.timm_model import TimmModel

    if isinstance(visual, TimmModel):
        return visual.trunk.forward_features(images), visual.trunk.num_prefix_tokens
    out = visual.forward_intermediates(images, indices=1, output_fmt="NLC", output_extra_tokens=True)
    return torch.cat([out["image_intermediates_prefix"][-1], out["image_intermediates"][-1]], 1), 1


def _head_of_repeated(visual, token, length):
    """The tower's own head (pooling, norms, projection) on a sequence in which every position holds ``token``."""
    from open_clip.timm_model import TimmModel

    seq = token[:, None].expand(-1, length, -1)  # [B, length, C]
    if isinstance(visual, TimmModel):
        return visual.head(visual.trunk.forward_head(seq))
    return visual._pool(seq)[0] @ visual.proj


@pytest.mark.parametrize("case", DENSE, ids=[c.name for c in DENSE])
def test_dense_patch_token_is_the_head_of_a_sequence_of_that_token(case, perturbed, batch):
    """The definition, checked against the towers' own pooling code (timm's MAP head attends over identical tokens)."""
    model = perturbed[case.name]
    with torch.no_grad():
        feats = encode(model, batch, dense=True)
        torch.testing.assert_close(feats.image, model.encode_image(batch, normalize=True))
        final, prefix = _final_tokens(model.visual, batch)  # [B, P + Np, C]
        assert feats.image_tokens.shape[:2] == (3, final.shape[1] - prefix) == (3, 16)
        for n in (0, 7, 15):
            ref = _head_of_repeated(model.visual, final[:, prefix + n], final.shape[1])
            torch.testing.assert_close(feats.image_tokens[:, n], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", DENSE, ids=[c.name for c in DENSE])
def test_patch_dropout_in_train_mode_keeps_the_dropped_layout(case, batch):
    torch.manual_seed(0)
    model = load_model(case.name, patch_dropout=0.5).model.train()
    feats = encode(model, batch, dense=True)
    assert feats.image_tokens.shape[:2] == (3, 8) and feats.image.shape[0] == 3  # half of the 16 patches kept


@pytest.mark.parametrize("case", [c for c in DENSE if c.image_head == "timm-vit"], ids=lambda c: c.name)
def test_timm_class_token_through_the_token_head_is_the_global_feature(case, perturbed, batch):
    model = perturbed[case.name]
    with torch.no_grad():
        final, _ = _final_tokens(model.visual, batch)
        cls = timm_token_head(model.visual, final[:, :1])[:, 0]
        torch.testing.assert_close(cls, model.encode_image(batch), rtol=1e-5, atol=1e-5)


def test_open_clip_class_token_and_clipa_mean(perturbed, batch):
    """Token pooling: ln_post(CLS)·proj is the global feature. CLIPA normalises after the mean, so the mean of the
    dense tokens is only close to it (documented approximation)."""
    with torch.no_grad():
        clip = perturbed["fsc-tiny"]
        final, _ = _final_tokens(clip.visual, batch)
        torch.testing.assert_close(clip.visual.ln_post(final[:, 0]) @ clip.visual.proj, clip.encode_image(batch))
        clipa = perturbed["fsc-tiny-clipa"]
        feats = encode(clipa, batch, dense=True)
        cosine = (F.normalize(feats.image_tokens.mean(1), dim=-1) * feats.image).sum(-1)  # [B]
        assert bool((cosine > 0.98).all()) and not torch.allclose(cosine, torch.ones(3), atol=1e-4)


def test_timm_average_pool_with_linear_projection_is_the_mean_of_the_tokens(batch):
    """A timm ViT pooled by ``avg`` (no ``fc_norm``) with open_clip's linear projection (the ``vit_*_gap`` configs):
    the mean of the dense tokens is exactly the global feature."""
    from open_clip.timm_model import TimmModel

    from fsc_clip.models import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    visual = TimmModel("vit_fsc_tiny_siglip", embed_dim=24, image_size=32, pool="avg", proj="linear").eval()
    assert visual.trunk.attn_pool is None and isinstance(visual.trunk.fc_norm, torch.nn.Identity)
    with torch.no_grad():
        tokens = timm_token_head(visual, visual.trunk.forward_features(batch))  # no prefix tokens
        torch.testing.assert_close(tokens.mean(1), visual(batch), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", [c for c in DENSE if c.image_head == "timm-map"], ids=lambda c: c.name)
def test_map_head_pre_mlp_output_is_the_attention_weighted_sum_of_value_projections(case, perturbed, batch):
    """Exact identity of a MAP head (timm AttentionPoolLatent): before its MLP, the pooled output is
    ``b_o + Σ_h Σ_n a_hn · W_o^h v_n^h`` with the head's own per-head attention ``a``; computed here from the
    head's weights, independently of the head's forward."""
    pool = perturbed[case.name].visual.trunk.attn_pool
    seen, pre_mlp = {}, {}
    hooks = [
        pool.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0])),
        pool.proj.register_forward_hook(lambda _m, _a, out: pre_mlp.setdefault("y", out)),
    ]
    try:
        with torch.no_grad():
            perturbed[case.name].encode_image(batch)
    finally:
        for hook in hooks:
            hook.remove()
    x = seen["x"].double()  # [B, N, C] the tokens the head attends over
    heads, hd = pool.num_heads, pool.head_dim
    q = F.linear(pool.latent.double(), pool.q.weight.double(), pool.q.bias.double())  # [1, 1, C]
    k, v = F.linear(x, pool.kv.weight.double(), pool.kv.bias.double()).chunk(2, dim=-1)  # [B, N, C] each
    q, k, v = q.unflatten(-1, (heads, hd)), k.unflatten(-1, (heads, hd)), v.unflatten(-1, (heads, hd))
    attn = torch.einsum("qhd,bnhd->bhn", q[0], k).mul(hd**-0.5).softmax(-1)  # [B, H, N]
    w_out = pool.proj.weight.double().unflatten(1, (heads, hd))  # [C', H, hd]
    per_token = torch.einsum("chd,bnhd->bnhc", w_out, v)  # [B, N, H, C'] value projection of token n, head h
    expected = torch.einsum("bhn,bnhc->bc", attn, per_token) + pool.proj.bias.double()
    torch.testing.assert_close(pre_mlp["y"][:, 0].double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if not c.image_head], ids=lambda c: c.name)
def test_dense_unsupported_names_the_model_and_the_global_losses(case, models, batch):
    lm = models[case.name]
    texts = lm.tokenizer(CAPTIONS)
    with pytest.raises(DenseFeaturesUnsupported) as err:
        encode(lm.model, batch, texts, dense=True)
    message = str(err.value)
    assert case.name in message and "negclip" in message and "ViT" in message
    assert ("no patch tokens" in message) is (case.family != "coca")  # CoCa's ViT has them, but pools by attention
    with pytest.raises(DenseFeaturesUnsupported):
        encode(lm.model, images=batch, dense=True)
    if not case.text_dense:
        with pytest.raises(DenseFeaturesUnsupported, match="class token"):
            encode(lm.model, texts=texts, dense=True)
        return
    feats = encode(lm.model, texts=texts, dense=True)  # the text tower alone has per-token features
    assert feats.text_tokens.shape[:2] == texts.shape and feats.image_tokens is None


# Full-size open_clip architectures (open_clip_torch 3.3.0 configs), built on the meta device: no weights, no memory.
REAL = {
    "ViT-B-32": (True, 49),
    "ViT-L-14-CLIPA": (True, 256),
    "ViT-H-14-worldwide": (True, 256),
    "ViT-B-16-SigLIP2": (True, 196),
    "ViT-SO400M-14-SigLIP-384": (True, 729),
    "PE-Core-B-16": (True, 196),
    "EVA02-B-16": (True, 196),
    "MobileCLIP2-B": (True, 196),
    "ViTamin-B": (True, 196),
    "RN50": (False, 0),
    "MobileCLIP-S1": (False, 0),
    "convnext_base_w": (False, 0),
    "coca_ViT-B-32": (False, 0),
}


@pytest.mark.parametrize("arch", sorted(REAL))
def test_supports_dense_on_full_size_architectures(arch):
    import open_clip

    dense, patches = REAL[arch]
    with torch.device("meta"):  # parameters are created on the meta device, never initialised for real
        model = open_clip.create_model(arch, device="meta", pretrained_text=False).eval()
    assert supports_dense(model) is dense
    size = open_clip.get_model_config(arch)["vision_cfg"]["image_size"]
    images = torch.empty(2, 3, size, size, device="meta")
    texts = torch.zeros(2, model.context_length, dtype=torch.long, device="meta")
    feats = encode(model, images, texts, dense=dense)  # shapes only: meta tensors carry no values
    assert feats.image.shape == feats.text.shape and feats.image.shape[0] == 2
    if dense:
        assert feats.image_tokens.shape == (2, patches, feats.image.shape[1])
        assert feats.text_tokens.shape == (2, model.context_length, feats.image.shape[1])


# ----- losses ------------------------------------------------------------------------------------------------------

LOSS_CASES = [(c, loss) for c in CASES for loss in c.losses]


def _loss_inputs(model, tokenizer, images, dense):
    """The loss's keyword arguments, arranged as the trainer does (fsc_clip.training.step.encode_batch)."""
    b, k = len(CAPTIONS), len(NEGATIVES[0])
    texts = torch.cat([tokenizer(CAPTIONS), tokenizer([n for negs in NEGATIVES for n in negs])])  # [B + B·K, L]
    feats = encode(model, images, texts, dense=dense)
    inputs = {
        "image_features": feats.image,
        "text_features": feats.text[:b],
        "neg_text_features": feats.text[b:].unflatten(0, (b, k)),
        "neg_mask": torch.ones(b, k, dtype=torch.bool),
        "logit_scale": feats.logit_scale,
        "logit_bias": feats.logit_bias,
    }
    if dense:
        tokens, mask = feats.text_tokens, feats.text_mask
        inputs.update(
            image_tokens=feats.image_tokens,
            text_tokens=tokens[:b],
            text_mask=mask[:b],
            neg_text_tokens=tokens[b:].unflatten(0, (b, k)),
            neg_text_mask=mask[b:].unflatten(0, (b, k)),
        )
    return inputs


@pytest.mark.parametrize(("case", "loss_name"), LOSS_CASES, ids=[f"{c.name}-{n}" for c, n in LOSS_CASES])
def test_loss_forward_backward(case, loss_name, models, batch):
    import copy

    from fsc_clip.losses import build_loss

    lm = models[case.name]
    model = copy.deepcopy(lm.model).train()
    loss_fn = build_loss({"loss-name": loss_name})
    dense = bool(loss_fn.needs_dense)
    terms = loss_fn(**_loss_inputs(model, lm.tokenizer, batch, dense))
    total = sum(v for v in terms.values())
    assert torch.isfinite(total)
    if dense:
        assert "local_hn_loss" in terms and terms["local_hn_loss"] > 0
    total.backward()
    for tower in (model.visual, getattr(model, "text", None) or model.transformer):
        grads = [p.grad for p in tower.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), type(tower).__name__


# ----- evaluation --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from fsc_clip.data.synthetic import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("family_world")
    small = dict(n_train=8, n_sugarcrepe=4, n_winoground=3, n_aro=4, n_zeroshot=6, n_retrieval=4, supersample=1)
    generate_world(WorldConfig(seed=3, **small), root)
    return root


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fsc_clip_eval_runs_and_scores_by_cosine(case, world, tmp_path):
    _eval_and_check(case.name, case.family, world, tmp_path)


def _eval_and_check(name, family, world, tmp_path):
    """``fsc-clip eval`` on the synthetic world. SugarCrepe's per-item candidate scores are the cosine similarities
    of open_clip's own encoders on full-length tokens (the embedder trims the tokens, which encode() must undo for
    bidirectional towers; the tokenizer must have the config's context length)."""
    from PIL import Image

    from fsc_clip.cli.main import main
    from fsc_clip.evaluation.stats import load_tables

    out = tmp_path / "res"
    argv = ["eval", "--model", name, "--random-init", "--seed", "0", "--benchmarks", "synthetic", "--data-root",
            str(world), "--output", str(out), "--batch-size", "8", "--no-progress", "--save-scores"]  # fmt: skip
    assert main(argv) == 0
    res = json.loads((out / "synthetic_sugarcrepe.json").read_text())
    assert res["model"]["name"] == name and res["model"]["family"] == family
    (table,) = load_tables(out / "synthetic_sugarcrepe.scores.npz")
    got = torch.from_numpy(table.arrays["candidate_scores"][table.arrays["subset"] == "swap_att"])  # [N, 2]
    torch.manual_seed(0)
    lm = load_model(name)
    recs = list(json.loads((world / "sugarcrepe/data/swap_att.json").read_text()).values())
    with torch.no_grad():
        images = torch.stack([lm.preprocess_val(Image.open(world / "sugarcrepe/images" / r["filename"])) for r in recs])
        img = lm.model.encode_image(images, normalize=True)
        pos = lm.model.encode_text(lm.tokenizer([r["caption"] for r in recs]), normalize=True)
        neg = lm.model.encode_text(lm.tokenizer([r["negative_caption"] for r in recs]), normalize=True)
    expected = torch.stack([(img * pos).sum(-1), (img * neg).sum(-1)], dim=1)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert set(json.loads((out / "summary.json").read_text())["benchmarks"]) >= {"synthetic_sugarcrepe"}


@pytest.fixture(scope="module")
def hf_text_arch(tmp_path_factory, world):
    """A CLIP with a Hugging Face text tower (the roberta-ViT-B-32 / xlm-roberta / nllb family), offline: a tiny
    randomly initialised RoBERTa and a word-level tokenizer with RoBERTa's special tokens (``<s>`` 0, ``<pad>`` 1,
    ``</s>`` 2) saved to a folder that the open_clip config names as both model and tokenizer."""
    import open_clip
    import open_clip.factory as oc_factory
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig

    name = "fsc-test-hf-roberta"
    root = tmp_path_factory.mktemp("hf_text")
    hf_dir = root / "tiny-roberta"
    texts = [*CAPTIONS, *(n for negs in NEGATIVES for n in negs)]
    words = sorted({w for text in texts for w in text.split()} | _words_in(world))
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", *words])}
    RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=40, pad_token_id=1, bos_token_id=0,
                  eos_token_id=2).save_pretrained(hf_dir)  # fmt: skip
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    specials = dict(bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    PreTrainedTokenizerFast(tokenizer_object=tok, **specials).save_pretrained(hf_dir)
    cfg = {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"hf_model_name": str(hf_dir), "hf_tokenizer_name": str(hf_dir), "hf_model_pretrained": False,
                     "hf_pooler_type": "mean_pooler", "context_length": 24},
    }  # fmt: skip
    (root / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(root / f"{name}.json")
    yield name
    # leave open_clip's config registry as we found it (private names of open_clip_torch 3.3.0 factory.py)
    oc_factory._MODEL_CONFIG_PATHS.remove(root / f"{name}.json")
    oc_factory._MODEL_CONFIGS.pop(name, None)


def _words_in(root) -> set[str]:
    """Every word written in the synthetic world's text files (so that the word-level tokenizer knows them)."""
    import re

    files = [p for p in root.rglob("*") if p.suffix in (".json", ".jsonl", ".tsv", ".txt")]
    return {w for p in files for w in re.findall(r"[a-z]+", p.read_text(encoding="utf-8").lower())}


def test_hugging_face_text_tower_global_only_and_eval(hf_text_arch, world, tmp_path, batch):
    torch.manual_seed(0)
    lm = load_model(hf_text_arch)
    texts = lm.tokenizer(CAPTIONS)
    assert texts.shape == (3, 24) and not supports_dense(lm.model)
    with pytest.raises(DenseFeaturesUnsupported, match="HFTextEncoder"):
        encode(lm.model, texts=texts, dense=True)
    encode(lm.model, batch, dense=True)  # its ViT image tower alone has patch tokens
    with torch.no_grad():
        torch.testing.assert_close(encode(lm.model, texts=texts).text, lm.model.encode_text(texts, normalize=True))
    _eval_and_check(hf_text_arch, "hf-text", world, tmp_path)
