"""Dense tokens reproduce the model's own global features; masks and shapes follow METHOD.md §1."""

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
