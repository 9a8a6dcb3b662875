"""Dense tokens reproduce the model's own global features; masks and shapes follow the paper's definition
(docs/losses.md)."""

import pytest
import torch
import torch.nn.functional as F

from fsc_clip.models import encode, text_token_mask

CAPTIONS = ["a red cube left of a ball", "two dogs", "x"]


@pytest.fixture()
def batch(tiny_model):
    torch.manual_seed(0)
    return torch.randn(3, 3, 32, 32), tiny_model.tokenizer(CAPTIONS)


def test_global_features_equal_model_and_pooled_tokens(tiny_model, batch):
    model = tiny_model.model.eval()
    images, texts = batch
    feats = encode(model, images, texts, dense=True)
    with torch.no_grad():
        ref_img, ref_txt = model.encode_image(images, normalize=True), model.encode_text(texts, normalize=True)
    torch.testing.assert_close(feats.image, ref_img)
    torch.testing.assert_close(feats.text, ref_txt)
    eot = texts.argmax(dim=-1)  # open_clip pools the end-of-text token (highest id)
    torch.testing.assert_close(F.normalize(feats.text_tokens[torch.arange(3), eot], dim=-1), ref_txt)
    assert feats.image_tokens.shape == (3, 16, 64)  # 32/8 = 4x4 patches, CLS excluded
    assert feats.text_tokens.shape == (3, 16, 64)
    assert float(feats.logit_scale.detach()) == pytest.approx(float(model.logit_scale.detach().exp().clamp(max=100)))


def test_text_mask_excludes_padding_and_sot_keeps_eot(tiny_model, batch):
    _, texts = batch
    mask = text_token_mask(texts, tiny_model.model)
    assert not mask[:, 0].any()
    eot = texts.argmax(dim=-1)
    assert mask[torch.arange(3), eot].all()
    assert (mask.sum(1) == (texts != 0).sum(1) - 1).all()
    assert mask[2].sum() == 2  # "x" -> [x, EOT]


def test_gradients_flow_through_dense_tokens(tiny_model, batch):
    model = tiny_model.model.train()
    images, texts = batch
    feats = encode(model, images, texts, dense=True)
    (feats.image_tokens.sum() + feats.text_tokens.sum()).backward()
    assert model.visual.proj.grad is not None and model.visual.proj.grad.abs().sum() > 0
    assert model.text_projection.grad is not None
    model.zero_grad(set_to_none=True)
    model.eval()


def test_patch_dropout_in_train_mode(batch):
    from fsc_clip.models import load_model

    torch.manual_seed(0)
    model = load_model("fsc-tiny", patch_dropout=0.5).model.train()
    images, texts = batch
    feats = encode(model, images, texts, dense=True)
    assert feats.image_tokens.shape[0] == 3 and feats.image_tokens.shape[1] == 8  # half of 16 patches kept
    assert feats.image.shape == (3, 64)


def test_trimmed_tokens_give_the_same_features_and_gradients(tiny_model, batch):
    """Dropping trailing padding is exact for CLIP's causal, EOT-pooled text tower (global and dense).

    Checked in float64 so that only real differences (not float32 summation order) would show.
    """
    import copy

    from fsc_clip.models import trim_tokens

    model = copy.deepcopy(tiny_model.model).double().train()
    images, texts = batch
    images = images.double()
    (short,) = trim_tokens(texts)
    n = short.shape[1]
    assert n == int((texts != 0).sum(1).max()) < texts.shape[1]
    params = [p for p in model.parameters() if p.requires_grad]

    def run(tokens):
        feats = encode(model, images, tokens, dense=True)
        loss = feats.text.square().sum() + feats.text_tokens[:, :n].sin().sum()  # depends on kept positions only
        return feats, torch.autograd.grad(loss, params, allow_unused=True)

    full, grads_full = run(texts)
    cut, grads_cut = run(short)
    torch.testing.assert_close(cut.text, full.text, rtol=1e-5, atol=1e-6)
    assert cut.text_tokens.shape == full.text_tokens.shape and torch.equal(cut.text_mask, full.text_mask)
    torch.testing.assert_close(cut.text_tokens[:, :n], full.text_tokens[:, :n], rtol=1e-5, atol=1e-5)
    assert not cut.text_tokens[:, n:].any()  # padded back with zeros (mask False there)
    for a, b in zip(grads_cut, grads_full):
        if a is None or b is None:
            assert (a is None or not a.any()) and (b is None or not b.any())
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(encode(model, texts=short).text, model.encode_text(texts, normalize=True))


def test_trim_tokens_shares_one_length_across_tensors():
    from fsc_clip.models import trim_tokens

    pos = torch.tensor([[5, 6, 7, 0, 0, 0], [5, 6, 0, 0, 0, 0]])
    neg = torch.zeros(2, 3, 6, dtype=torch.long)
    neg[1, 2, :5] = 9
    a, b = trim_tokens(pos, neg)
    assert a.shape == (2, 5) and b.shape == (2, 3, 5)
    assert trim_tokens(pos, None)[0].shape == (2, 3)


# ----- bidirectional text towers and tokenizer layouts -------------------------------------------------------------


@pytest.fixture(scope="module")
def family_models():
    from fsc_clip.models import load_model

    torch.manual_seed(0)
    return {name: load_model(name) for name in ("fsc-tiny-siglip", "fsc-tiny-clipa", "fsc-tiny-eva")}


def test_trimming_is_exact_only_for_causal_towers(tiny_model, family_models):
    from fsc_clip.models.dense import _text_tower

    exact = {name: _text_tower(lm.model).trim_is_exact for name, lm in family_models.items()}
    assert exact == {"fsc-tiny-siglip": False, "fsc-tiny-clipa": False, "fsc-tiny-eva": True}
    assert _text_tower(tiny_model.model).trim_is_exact


@pytest.mark.parametrize("name", ["fsc-tiny-siglip", "fsc-tiny-clipa", "fsc-tiny-eva"])
def test_trimmed_tokens_are_exact_for_bidirectional_towers_too(family_models, name):
    """A bidirectional tower attends to its padding (and SigLIP pools the last position), so running it on a trimmed
    batch changes its output; encode() pads the batch back, so trimmed and full tokens give the same features and
    gradients (float64). A causal CustomTextCLIP tower (EVA02) runs the short batch."""
    import copy

    from fsc_clip.models import trim_tokens

    lm = family_models[name]
    model = copy.deepcopy(lm.model).double().train()
    texts = lm.tokenizer(CAPTIONS)
    (short,) = trim_tokens(texts)
    n = short.shape[1]
    assert n < texts.shape[1]
    tower = getattr(model, "text", None)
    with torch.no_grad():  # the short batch itself is not equivalent: the restore is what makes it exact
        if tower is None:  # CLIP class (CLIPA): open_clip adds the full positional embedding, cannot run it at all
            with pytest.raises(RuntimeError):
                model.encode_text(short)
        elif name != "fsc-tiny-eva":
            assert not torch.allclose(tower(short), model.encode_text(texts), atol=1e-6)
    params = [p for p in model.parameters() if p.requires_grad]

    def run(tokens):
        feats = encode(model, texts=tokens, dense=True)
        loss = feats.text.square().sum() + feats.text_tokens[:, :n].sin().sum()
        return feats, torch.autograd.grad(loss, params, allow_unused=True)

    (full, grads_full), (cut, grads_cut) = run(texts), run(short)
    torch.testing.assert_close(cut.text, full.text, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(cut.text_tokens[:, :n], full.text_tokens[:, :n], rtol=1e-9, atol=1e-10)
    assert torch.equal(cut.text_mask, full.text_mask) and cut.text_tokens.shape == full.text_tokens.shape
    if name == "fsc-tiny-eva":  # run short: positions past the captions come back as zeros
        assert not cut.text_tokens[:, n:].any()
    else:  # run at full length: every position as without trimming
        torch.testing.assert_close(cut.text_tokens, full.text_tokens, rtol=1e-9, atol=1e-10)
    for a, b in zip(grads_cut, grads_full):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def _hf_tokenizer(tmp_path, specials, template, context, **wrapper_kwargs):
    """A real Hugging Face fast tokenizer built offline (word-level vocabulary) with a given special-token layout,
    loaded through open_clip's own ``HFTokenizer`` wrapper as ``open_clip.get_tokenizer`` would load a hub one."""
    from open_clip.tokenizer import HFTokenizer
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    names = list(specials.values())
    vocab = {t: i for i, t in enumerate([*names, "a", "red", "cube", "left", "of", "ball", "two", "dogs", "x"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=specials["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    used = [t for t in names if t in template]
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=[(t, vocab[t]) for t in used])
    PreTrainedTokenizerFast(tokenizer_object=tok, **specials).save_pretrained(tmp_path)
    return HFTokenizer(str(tmp_path), context_length=context, **wrapper_kwargs)


# The special-token layouts of the real tokenizers (open_clip 3.3.0 tokenizer.py: SigLipTokenizer sets pad 1 for the
# T5 vocabularies and pad 0 for Gemma, eos 1, no bos; CLIPA's BERT strips [SEP] to 0).
LAYOUTS = {
    "siglip-t5": (dict(pad_token="</s>", eos_token="</s>", unk_token="<unk>"), "$A </s>", {"clean": "canonicalize"},
                  (1, False)),
    "siglip2-gemma": (dict(pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"), "$A <eos>",
                      {"clean": "canonicalize"}, (0, False)),
    "clipa-bert": (dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"),
                   "[CLS] $A [SEP]", {"strip_sep_token": True}, (0, True)),
}  # fmt: skip


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_text_layout_and_mask_follow_the_tokenizer(tmp_path, family_models, layout):
    """pad id and start token probed from the tokenizer; with SigLIP's layout position 0 is a word and padding is 1.
    The SigLIP-style tower pools its last position, whose dense token is the global feature."""
    import copy

    from fsc_clip.models.dense import TextLayout, attach_text_layout, text_layout, text_layout_of

    specials, template, kwargs, (pad_id, has_start) = LAYOUTS[layout]
    tokenizer = _hf_tokenizer(tmp_path, specials, template, 20, **kwargs)
    assert text_layout_of(tokenizer) == TextLayout(pad_id, has_start)
    model = copy.deepcopy(family_models["fsc-tiny-siglip"].model).eval()
    expected = TextLayout(pad_id, has_start)
    assert attach_text_layout(model, tokenizer, "fsc-tiny-siglip") == text_layout(model) == expected
    texts = tokenizer(CAPTIONS)  # [3, 20]
    words = torch.tensor([len(c.split()) for c in CAPTIONS])
    with torch.no_grad():
        feats = encode(model, texts=texts, dense=True)
        ref = model.encode_text(texts)
    mask = feats.text_mask
    assert bool(mask[:, 0].all()) is not has_start  # a start token is dropped, a first word is kept
    # words, plus the end-of-sequence token when its id differs from padding (Gemma; T5 uses one id for both)
    assert mask.sum(1).tolist() == (words + int(layout == "siglip2-gemma")).tolist()
    torch.testing.assert_close(feats.text_tokens[:, -1], ref, rtol=1e-5, atol=1e-5)  # pool_type "last"


def test_models_built_without_the_loader_get_open_clips_default_layout(tiny_model):
    import open_clip

    from fsc_clip.models.dense import CLIP_LAYOUT, text_layout, text_layout_of

    assert text_layout(open_clip.create_model("fsc-tiny")) == CLIP_LAYOUT == text_layout_of(tiny_model.tokenizer)
