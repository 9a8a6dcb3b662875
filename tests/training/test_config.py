"""TrainConfig schema: every shipped recipe loads; aliases map one-to-one; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fsc_clip.cli.main import main
from fsc_clip.cli.train import ALIASES
from fsc_clip.config import ConfigError, to_dict
from fsc_clip.training.config import TrainConfig, load_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(CONFIGS.rglob("*.yaml"))


def test_configs_exist():
    names = {str(p.relative_to(CONFIGS)) for p in RECIPES}
    for ds in ("coco", "cc3m", "laion-coco"):
        for method in ("clip", "negclip", "fsc-clip", "fsc-clip-lora"):
            assert f"{ds}/{method}.yaml" in names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_recipe_loads_against_the_schema(path: Path):
    cfg = load_train_config(path)
    assert isinstance(cfg, TrainConfig)
    assert to_dict(cfg)["optim"]["lr"] == cfg.optim.lr


def test_paper_defaults():
    coco = load_train_config(CONFIGS / "coco" / "fsc-clip.yaml")
    assert (coco.model.name, coco.model.pretrained) == ("ViT-B-32", "openai")
    assert (coco.optim.lr, coco.optim.wd, coco.optim.epochs, coco.optim.warmup) == (5e-6, 0.1, 5, 50)
    assert (coco.optim.batch_size, coco.optim.precision, coco.optim.schedule) == (256, "amp", "cosine")
    assert (coco.loss.focal_gamma, coco.loss.neg_label_smoothing) == (2.0, 0.02)
    assert (coco.loss.neg_loss_weight, coco.loss.local_neg_weight) == (0.5, 0.2)
    assert coco.data.negatives == "fsc-clip"
    assert load_train_config(CONFIGS / "cc3m" / "fsc-clip.yaml").loss.neg_loss_weight == 1.0
    lora = load_train_config(CONFIGS / "laion-coco" / "fsc-clip-lora.yaml")
    assert (lora.model.lora_rank, lora.optim.lr) == (4, 5e-5)
    clip = load_train_config(CONFIGS / "coco" / "clip.yaml")
    assert clip.loss.loss_name == "clip" and clip.data.negatives is None
    assert load_train_config(CONFIGS / "coco" / "negclip.yaml").data.negatives == "negclip"


def _resolved(capsys, argv: list[str]) -> dict:
    assert main(["train", *argv, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_reference_flags_map_one_to_one(capsys):
    argv = [
        "--train-data", "x.tsv", "--model", "ViT-B-16", "--pretrained", "openai", "--lr", "1e-5", "--wd", "0.2",
        "--epochs", "3", "--warmup", "7", "--batch-size", "64", "--loss-name", "fsc-clip",
        "--neg-loss-name", "cross_entropy", "--focal-gamma", "1.5", "--neg-label-smoothing", "0.1",
        "--apply-global-neg-loss", "--neg-loss-weight", "0.7", "--apply-local-neg-loss", "--local-neg-weight", "0.5",
        "--lora-rank", "4", "--add-random-text-hard-negatives", "fsc-clip", "--precision", "amp_bf16",
        "--accum-freq", "2", "--resume", "auto", "--name", "r", "--local-loss", "--gather-with-grad",
        "--lock-text", "--grad-clip-norm", "1.0", "--lr-scheduler", "const", "--logs", "L", "--seed", "3",
        "--caption-key", "coca_captions", "--zeroshot-frequency", "2", "--report-to", "tensorboard",
        "--val-frequency", "1", "--return-dense-tokens",
    ]  # fmt: skip
    cfg = _resolved(capsys, argv)
    expected = {
        "data.train_data": "x.tsv", "model.name": "ViT-B-16", "model.pretrained": "openai", "optim.lr": 1e-5,
        "optim.wd": 0.2, "optim.epochs": 3, "optim.warmup": 7, "optim.batch_size": 64, "loss.loss_name": "fsc-clip",
        "loss.neg_loss_name": "cross_entropy", "loss.focal_gamma": 1.5, "loss.neg_label_smoothing": 0.1,
        "loss.apply_global_neg_loss": True, "loss.neg_loss_weight": 0.7, "loss.apply_local_neg_loss": True,
        "loss.local_neg_weight": 0.5, "model.lora_rank": 4, "data.negatives": "fsc-clip",
        "optim.precision": "amp_bf16", "optim.accum_freq": 2, "resume": "auto", "name": "r",
        "model.lock_text": True, "optim.grad_clip_norm": 1.0, "optim.schedule": "const", "output": "L", "seed": 3,
        "data.wds_caption_dir": "coca_captions", "data.wds_caption_key": "txt", "eval.every_n_epochs": 2,
    }  # fmt: skip
    for key, value in expected.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_reference_caption_key_default_means_the_shards_own_captions(capsys):
    cfg = _resolved(capsys, ["--train-data", "x.tar", "--caption-key", "caption"])
    assert cfg["data"]["wds_caption_dir"] is None and cfg["data"]["wds_caption_key"] == "txt"


def test_every_alias_targets_a_real_key():
    fields = to_dict(TrainConfig())
    for flag, key, kind in ALIASES:
        if kind.startswith("noop"):
            continue
        node = fields
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{flag} -> {key}"
            node = node[part]


def test_precedence_file_then_alias_then_set(capsys):
    recipe = str(CONFIGS / "coco" / "fsc-clip.yaml")
    cfg = _resolved(capsys, ["--config", recipe, "--lr", "1e-4"])
    assert cfg["optim"]["lr"] == 1e-4 and cfg["loss"]["neg_loss_weight"] == 0.5
    cfg = _resolved(capsys, ["--config", recipe, "--lr", "1e-4", "--set", "optim.lr=2e-4", "--pretrained", "none"])
    assert cfg["optim"]["lr"] == 2e-4 and cfg["model"]["pretrained"] is None


def test_typo_names_the_key_and_the_file(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  learning_rate: 1.0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*optim\.'learning_rate'"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="accum_freq"):
        load_train_config(None, ["optim.accum_freq=0"])
    assert main(["train", "--config", str(bad)]) == 2


def test_inherit_merges_and_detects_cycles(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("inherit: b.yaml\noptim:\n  lr: 1.0e-3\n")
    (tmp_path / "b.yaml").write_text("optim:\n  epochs: 2\n  lr: 1.0\n")
    cfg = load_train_config(tmp_path / "a.yaml")
    assert (cfg.optim.lr, cfg.optim.epochs) == (1e-3, 2)
    (tmp_path / "c.yaml").write_text("inherit: c.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_train_config(tmp_path / "c.yaml")


def test_bare_hard_negatives_flag_means_negclip(capsys):
    cfg = _resolved(capsys, ["--train-data", "x.tsv", "--add-random-text-hard-negatives", "--loss-name", "clip"])
    assert cfg["data"]["negatives"] == "negclip"


def test_authors_published_command_translates(capsys):
    """The authors' COCO FSC-CLIP-LoRA command (README of ytaek-oh/fsc-clip), dataset name replaced by a path."""
    command = (
        "--save-frequency 1 --zeroshot-frequency 1 --val-frequency 1 --report-to tensorboard --log-every-n-steps 50 "
        "--train-data=data/coco/train_neg_clip.tsv --model ViT-B-32 --pretrained openai "
        "--lr=5e-5 --wd=0.1 --epochs=5 --warmup 50 --batch-size=256 --workers=4 --lora-rank 4 "
        "--add-random-text-hard-negatives=fsc-clip --loss-name=fsc-clip --neg-loss-name=focal_loss --focal-gamma 2.0 "
        "--neg-label-smoothing 0.02 --apply-global-neg-loss --neg-loss-weight 0.5 "
        "--return-dense-tokens --apply-local-neg-loss --local-neg-weight 0.2 --logs=./logs/fsc-clip "
        "--name fsc-clip-lora-coco"
    )
    got = _resolved(capsys, command.split())
    recipe = to_dict(load_train_config(CONFIGS / "coco" / "fsc-clip-lora.yaml"))
    for section in ("loss", "optim"):
        for key in ("lr", "wd", "epochs", "warmup", "batch_size", "loss_name", "neg_loss_weight", "local_neg_weight"):
            if key in recipe[section]:
                assert got[section][key] == recipe[section][key], key
    assert got["model"]["lora_rank"] == recipe["model"]["lora_rank"] == 4
    assert got["data"]["negatives"] == recipe["data"]["negatives"] == "fsc-clip"
    assert (got["output"], got["name"], got["logging"]["every_n_steps"]) == (
        "./logs/fsc-clip",
        "fsc-clip-lora-coco",
        50,
    )
