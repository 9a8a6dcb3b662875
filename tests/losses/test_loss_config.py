"""LossConfig / build_loss: reference option names, registry, attributes the trainer relies on."""

from __future__ import annotations

import pytest
import torch

from fsc_clip.config import ConfigError, from_dict, to_dict
from fsc_clip.losses import LOSSES, REFERENCE_CLI_DEFAULTS, FSCCLIPLoss, LossConfig, build_loss


def test_default_is_paper_recipe():
    loss_fn = build_loss()
    assert isinstance(loss_fn, FSCCLIPLoss)
    weights = (loss_fn.global_weight, loss_fn.local_weight, loss_fn.gamma, loss_fn.label_smoothing)
    assert weights == (0.5, 0.2, 2.0, 0.02)
    assert loss_fn.needs_dense and loss_fn.needs_negatives and not loss_fn.negclip


def test_reference_option_names_with_dashes():
    """The authors' COCO command: --loss-name fsc-clip --neg-loss-name focal_loss --focal-gamma 2.0 ..."""
    cfg = {
        "loss-name": "fsc-clip", "neg-loss-name": "focal_loss", "focal-gamma": 2.0, "neg-label-smoothing": 0.02,
        "apply-global-neg-loss": True, "neg-loss-weight": 1.0, "apply-local-neg-loss": True,
        "local-neg-weight": 0.5, "sim-normalizer": "softmax", "sim-sparsify": True,
    }  # fmt: skip
    loss_fn = build_loss(cfg, rank=1, world_size=4)
    assert (loss_fn.global_weight, loss_fn.local_weight) == (1.0, 0.5)
    assert (loss_fn.sim_normalizer, loss_fn.sim_sparsify, loss_fn.rank, loss_fn.world_size) == ("softmax", True, 1, 4)


def test_reference_cli_defaults_build_plain_clip_terms():
    cfg = from_dict(LossConfig, REFERENCE_CLI_DEFAULTS)
    loss_fn = build_loss(cfg)
    assert (loss_fn.global_weight, loss_fn.local_weight, loss_fn.gamma) == (0.0, 0.0, 0.0)
    assert not loss_fn.needs_dense and not loss_fn.needs_negatives


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_registered_loss_builds_and_runs(name):
    loss_fn = build_loss({"loss_name": name})
    gen = torch.Generator().manual_seed(0)
    b, k, d = 4, 2, 8
    img, txt = torch.randn(b, d, generator=gen), torch.randn(b, d, generator=gen)
    neg = torch.randn(b, k, d, generator=gen)
    bias = torch.tensor(-10.0) if loss_fn.uses_logit_bias else None  # the sigmoid family needs a logit bias
    terms = loss_fn(img, txt, neg, torch.ones(b, k, dtype=torch.bool), torch.tensor(10.0), logit_bias=bias)
    assert loss_fn.contrastive_term in terms and all(torch.isfinite(v) for v in terms.values())
    assert to_dict(LossConfig(loss_name=name))["loss_name"] == name


def test_clip_and_negclip_semantics():
    clip, negclip = build_loss({"loss_name": "clip"}), build_loss({"loss_name": "negclip"})
    assert clip.negclip and negclip.negclip
    assert not clip.needs_negatives and negclip.needs_negatives
    assert not clip.needs_dense and not negclip.needs_dense
    only_global = build_loss({"apply_local_neg_loss": False})
    assert only_global.needs_negatives and not only_global.needs_dense


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("loss_name", "fsc_clip"),
        ("neg_loss_name", "focal"),
        ("focal_gamma", -1),
        ("neg_label_smoothing", 1.0),
        ("neg_loss_weight", -0.1),
        ("sim_normalizer", "l2"),
        ("local_neg_wieght", 0.3),
    ],
)
def test_invalid_values_are_config_errors(key, value):
    with pytest.raises(ConfigError, match=key.split("_w")[0]):
        build_loss({key: value})


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="neg_loss"):
        FSCCLIPLoss(neg_loss="focal")
    with pytest.raises(ValueError, match="sim_normalizer"):
        FSCCLIPLoss(sim_normalizer="l2")


def test_cli_lists_losses(capsys):
    from fsc_clip.cli.main import main

    assert main(["list", "losses"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in LOSSES.names())
