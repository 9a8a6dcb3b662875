"""``benchmarks/demo_relations.py``: its world/model variants do what docs/demo.md says they do."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from fsc_clip.data.synthetic import WorldConfig, generate_world

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import demo_relations  # noqa: E402

SMALL = dict(n_train=150, n_sugarcrepe=6, n_winoground=30, n_aro=30, n_zeroshot=6, n_retrieval=6, supersample=2)


def test_position_warmup_trains_the_image_tower_only(tmp_path: Path):
    from fsc_clip.models import load_model

    generate_world(WorldConfig(seed=1, **SMALL), tmp_path)
    torch.set_num_threads(1)
    state, history = demo_relations.position_warmup("fsc-demo", tmp_path, steps=3, seed=0)
    torch.manual_seed(0)
    start = load_model("fsc-demo", None).model.state_dict()  # the warm-up's own start (same seed)
    assert [h["step"] for h in history] == [3] and 0.0 <= history[0]["placed"] <= 1.0
    assert set(state) == set(start)
    changed = {k for k in state if not torch.equal(state[k], start[k])}
    assert changed and all(k.startswith("visual.") for k in changed), sorted(changed)[:5]
    loaded = load_model("fsc-demo", None).model
    loaded.load_state_dict(state)  # what the pre-training loads with model.pretrained


def test_winoground_groups_per_tag(tmp_path: Path):
    import numpy as np

    (tmp_path / "winoground" / "data").mkdir(parents=True)
    tags = ["Noun", "Adjective-Color", "Noun", "Adjective-Color", "Noun"]
    lines = [json.dumps({"id": i, "tag": t}) for i, t in enumerate(tags)]
    (tmp_path / "winoground" / "data" / "examples.jsonl").write_text("\n".join(lines) + "\n")
    np.savez(tmp_path / "synthetic_winoground.scores.npz", **{"main/group": np.array([1, 1, 0, 0, 0])})
    groups = demo_relations.winoground_groups(tmp_path, demo_relations.winoground_tags(tmp_path))
    assert groups == pytest.approx({"winoground_group::Adjective-Color": 50.0, "winoground_group::Noun": 100.0 / 3})


def test_build_config_applies_set_overrides_and_methods(tmp_path: Path):
    from fsc_clip.config import ConfigError

    args = demo_relations.parse_args(
        ["--variant", "lookalikes", "--output", str(tmp_path), "--set", "finetune.lr=0.001",
         "--set", "finetune.steps=200", "--methods", "negclip,fsc-clip-lora"]
    )  # fmt: skip
    cfg = demo_relations.build_config(args)
    assert (cfg.finetune.lr, cfg.finetune.steps) == (0.001, 200)
    assert [m.name for m in cfg.methods] == ["negclip", "fsc-clip-lora"]
    default = demo_relations.build_config(demo_relations.parse_args(["--variant", "lookalikes", "--output", "x"]))
    assert (default.finetune.lr, default.finetune.steps) != (0.001, 200)  # the control: the preset's recipe
    with pytest.raises(ConfigError, match=r"finetune\.'nope'"):
        demo_relations.build_config(demo_relations.parse_args(
            ["--variant", "lookalikes", "--output", "x", "--set", "finetune.nope=1"]
        ))  # fmt: skip
    world = demo_relations.build_config(
        demo_relations.parse_args(["--variant", "lookalikes+one-direction", "--output", "x", "--colors", "4"])
    ).world
    assert (world.shapes, world.colors, world.one_way) == (3, 4, True)
    warmup = demo_relations.build_config(
        demo_relations.parse_args(["--variant", "warmup", "--output", "x", "--set", "world.one_way=true"])
    ).world
    assert (warmup.shapes, warmup.colors, warmup.one_way) == (0, 0, False)  # the variant decides, not the preset
    with pytest.raises(SystemExit, match=r"world\.shapes"):
        demo_relations.build_config(demo_relations.parse_args(
            ["--variant", "lookalikes", "--output", "x", "--shapes", "2"]
        ))  # fmt: skip
    with pytest.raises(SystemExit, match="--methods"):
        demo_relations.build_config(demo_relations.parse_args(
            ["--variant", "lookalikes", "--output", "x", "--methods", "negclip,nope"]
        ))  # fmt: skip
