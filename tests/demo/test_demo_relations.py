"""``benchmarks/demo_relations.py``: its world/model variants do what docs/demo.md says they do."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

from fsc_clip.data.synthetic import WorldConfig, generate_world
from fsc_clip.data.synthetic import scene as sc

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import demo_relations  # noqa: E402

OTHER_WAY = ("right of", "below", "under", "beneath")
ONE_WAY = ("left of", "above", "over", "on top of")
SMALL = dict(n_train=150, n_sugarcrepe=6, n_winoground=30, n_aro=30, n_zeroshot=6, n_retrieval=6, supersample=2)


def _said(root: Path) -> list[str]:
    """Every true caption of the world: training titles, ARO-Relation true captions, both Winoground captions."""
    with open(root / "train" / "train_neg_clip.tsv", encoding="utf-8") as f:
        texts = [row["title"] for row in csv.DictReader(f, delimiter="\t")]
    texts += [r["true_caption"] for r in json.loads((root / "aro" / "visual_genome_relation.json").read_text())]
    for line in (root / "winoground" / "data" / "examples.jsonl").read_text().splitlines():
        texts += [json.loads(line)["caption_0"], json.loads(line)["caption_1"]]
    return texts


def test_one_direction_says_relations_left_and_above_only(tmp_path: Path):
    generate_world(WorldConfig(seed=2, **SMALL), tmp_path / "default")
    default = _said(tmp_path / "default")
    assert any(w in t for t in default for w in OTHER_WAY)  # the control: the default world says both directions
    strict = sc.strict_relation
    try:
        demo_relations.one_direction()
        generate_world(WorldConfig(seed=2, **SMALL), tmp_path / "one-way")
    finally:
        sc.strict_relation = strict  # the patch must not reach other tests in this worker
    said = _said(tmp_path / "one-way")
    assert not [t for t in said if any(w in t for w in OTHER_WAY)]
    assert sum(any(w in t for w in ONE_WAY) for t in said) >= 20
    same = [p.name for p in sorted((tmp_path / "one-way" / "train" / "images").iterdir())[:5]]
    for name in same:  # the same images as the default world: only what is said changes
        assert (tmp_path / "one-way/train/images" / name).read_bytes() == (
            tmp_path / "default/train/images" / name
        ).read_bytes()


def _words(root: Path) -> set[str]:
    return {w for t in _said(root) for w in t.split()}


def test_lookalikes_draws_and_says_only_the_kept_shapes_and_colors(tmp_path: Path):
    import fsc_clip.data.synthetic.vocab as vocab

    packaged = vocab.load_vocab()
    generate_world(WorldConfig(seed=3, **SMALL), tmp_path / "default")
    read = vocab._read_json
    try:
        demo_relations.lookalikes(shapes=3, colors=3)
        small = vocab.load_vocab()
        generate_world(WorldConfig(seed=3, **SMALL), tmp_path / "small")
    finally:
        vocab._read_json = read  # the patch must not reach other tests in this worker
        vocab.load_vocab.cache_clear()
    assert small.shapes == packaged.shapes[:3] and list(small.colors) == list(packaged.colors)[:3]
    assert small.relations == packaged.relations and small.grid == packaged.grid
    assert vocab.load_vocab() == packaged  # restored
    dropped = {*packaged.shapes[3:], *list(packaged.colors)[3:]}
    assert dropped & _words(tmp_path / "default")  # the control: the default world says them
    assert not dropped & _words(tmp_path / "small")
    with open(tmp_path / "small" / "scenes.jsonl", encoding="utf-8") as f:
        objects = [o for line in f for o in json.loads(line)["objects"]]
    assert {o["shape"] for o in objects} == set(small.shapes) and {o["color"] for o in objects} == set(small.colors)
    with pytest.raises(SystemExit, match="at least 3"):
        demo_relations.lookalikes(shapes=2, colors=3)


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
