"""World settings ``shapes``, ``colors`` and ``one_way``: what the world draws and says (docs/demo.md, "Relations
learned"); the default world is the control of each test."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fsc_clip.config import ConfigError, from_dict
from fsc_clip.data.synthetic import WorldConfig, generate_world, load_vocab
from fsc_clip.data.synthetic import scene as sc

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


def _words(root: Path) -> set[str]:
    return {w for t in _said(root) for w in t.split()}


@pytest.fixture(scope="module")
def default_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("default")
    generate_world(WorldConfig(seed=2, **SMALL), root)
    return root


def test_one_way_says_relations_left_and_above_only(tmp_path: Path, default_world: Path):
    default = _said(default_world)
    assert any(w in t for t in default for w in OTHER_WAY)  # the control: the default world says both directions
    generate_world(WorldConfig(seed=2, one_way=True, **SMALL), tmp_path)
    said = _said(tmp_path)
    assert not [t for t in said if any(w in t for w in OTHER_WAY)]
    assert sum(any(w in t for w in ONE_WAY) for t in said) >= 20
    for path in sorted((tmp_path / "train" / "images").iterdir())[:5]:  # the same images: only what is said changes
        assert path.read_bytes() == (default_world / "train" / "images" / path.name).read_bytes()
    with open(tmp_path / "train" / "negatives_world.jsonl", encoding="utf-8") as f:
        negatives = f.read()
    assert any(w in negatives for w in OTHER_WAY)  # negatives may still say "right of": false for the image


def test_shapes_and_colors_draw_and_say_only_the_first_ones(tmp_path: Path, default_world: Path):
    packaged = load_vocab()
    generate_world(WorldConfig(seed=2, shapes=3, colors=3, **SMALL), tmp_path)
    kept = {*packaged.shapes[:3], *list(packaged.colors)[:3]}
    dropped = {*packaged.shapes[3:], *list(packaged.colors)[3:]}
    assert dropped & _words(default_world)  # the control: the default world says them
    assert not dropped & _words(tmp_path) and kept <= _words(tmp_path)
    with open(tmp_path / "scenes.jsonl", encoding="utf-8") as f:
        objects = [o for line in f for o in json.loads(line)["objects"]]
    assert {o["shape"] for o in objects} == set(packaged.shapes[:3])
    assert {o["color"] for o in objects} == set(list(packaged.colors)[:3])
    assert (tmp_path / "zeroshot" / "shape" / "classnames.txt").read_text().split() == list(packaged.shapes[:3])
    assert load_vocab() == packaged  # the packaged vocabulary is untouched


def test_restricted_vocab_keeps_every_relation_for_negatives():
    vocab = load_vocab().restricted(3, 4, one_way=True)
    assert vocab.said_relations == ("left", "above") and vocab.relations == load_vocab().relations
    assert len(vocab.shapes) == 3 and len(vocab.colors) == 4
    right, left = sc.SceneObject("circle", "red", "large", 0, 2), sc.SceneObject("square", "blue", "large", 0, 0)
    assert sc.strict_relation(right, left, load_vocab()) == "right"  # the control
    assert sc.strict_relation(right, left, vocab) is None and sc.strict_relation(left, right, vocab) == "left"


@pytest.mark.parametrize("key,value,match", [("shapes", 2, "world.shapes"), ("colors", 9, "world.colors"),
                                             ("shapes", 6, "world.shapes")])  # fmt: skip
def test_bad_vocabulary_size_is_a_clear_config_error(key: str, value: int, match: str):
    with pytest.raises(ConfigError, match=match):
        from_dict(WorldConfig, {key: value})
