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
