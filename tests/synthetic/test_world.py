"""The synthetic world: determinism, caption <-> scene consistency (checked independently of the generator's
own truth function: captions are parsed from the written text, scenes are checked against the pixels), and
the written formats."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fsc_clip.data.synthetic import NEGATIVE_KINDS, WorldConfig, generate_world, load_vocab
from fsc_clip.data.synthetic import scene as sc

TINY = dict(
    n_train=60,
    p_half=0.5,
    p_single=0.3,
    n_sugarcrepe=12,
    n_winoground=9,
    n_aro=12,
    n_zeroshot=12,
    n_retrieval=10,
    supersample=2,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_world(WorldConfig(seed=3, **TINY), root)
    return root


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------------------------- an independent reader


def _parse(text: str) -> tuple[list[dict], str | None]:
    """Mentions (in order) and the relation phrase between the first two, read from the caption text only."""
    v = load_vocab()
    sizes, colors, shapes = "|".join(v.sizes), "|".join(v.colors), "|".join(v.shapes)
    pattern = re.compile(rf"\b(?:({sizes}) )?(?:({colors}) )?({shapes})\b(?: in the (left|right|top|bottom) half)?")
    found = list(pattern.finditer(text))
    mentions = [{"size": m.group(1), "color": m.group(2), "shape": m.group(3), "half": m.group(4)} for m in found]
    relation = None
    if len(found) >= 2:
        between = text[found[0].end() : found[1].start()]
        for name, rel in v.relations.items():
            if any(re.search(rf"\b{re.escape(p)}\b", between) for p in rel.phrases):
                relation = name
    return mentions, relation


def _rel_ok(a: dict, rel: str, b: dict, strict: bool) -> bool:
    dr, dc = a["row"] - b["row"], a["col"] - b["col"]
    ok = {"left": dc < 0, "right": dc > 0, "above": dr < 0, "below": dr > 0}[rel]
    if strict:
        ok = ok and (dr == 0 if rel in ("left", "right") else dc == 0)
    return ok


def _half_ok(half: str | None, obj: dict) -> bool:
    """Whether "in the <half> half" holds on the 4 x 4 grid (left: column 0 or 1; etc.)."""
    if half is None:
        return True
    return {"left": obj["col"] < 2, "right": obj["col"] >= 2, "top": obj["row"] < 2, "bottom": obj["row"] >= 2}[half]


def _true_for(text: str, objects: list[dict], strict: bool) -> bool:
    import itertools

    mentions, relation = _parse(text)
    assert mentions, text
    for assign in itertools.permutations(range(len(objects)), len(mentions)):
        objs = [objects[k] for k in assign]
        attrs_ok = all(all(m[f] in (None, o[f]) for f in ("size", "color", "shape")) for m, o in zip(mentions, objs))
        attrs_ok = attrs_ok and all(_half_ok(m["half"], o) for m, o in zip(mentions, objs))
        if attrs_ok and (relation is None or _rel_ok(objs[0], relation, objs[1], strict)):
            return True
    return False


def _words(text: str) -> list[str]:
    """The multiset of words, articles "a"/"an" unified."""
    return sorted("a" if w == "an" else w for w in text.split())


def _scenes(root: Path) -> dict[str, list[dict]]:
    lines = (root / "scenes.jsonl").read_text().splitlines()
    return {rec["image"]: rec["objects"] for rec in map(json.loads, lines)}


# ----------------------------------------------------------------------------------------------- tests


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path, world):
    generate_world(WorldConfig(seed=3, **TINY), tmp_path / "again")
    assert _digest(tmp_path / "again") == _digest(world)
    generate_world(WorldConfig(seed=4, **TINY), tmp_path / "other")
    other = _digest(tmp_path / "other")
    assert other.keys() == _digest(world).keys()
    assert other["train/train_neg_clip.tsv"] != _digest(world)["train/train_neg_clip.tsv"]


def test_generation_is_cached_and_config_change_regenerates(tmp_path):
    cfg = WorldConfig(seed=1, **TINY)
    generate_world(cfg, tmp_path)
    stamp = (tmp_path / "train/train_neg_clip.tsv").stat().st_mtime_ns
    assert generate_world(cfg, tmp_path)["config"]["seed"] == 1
    assert (tmp_path / "train/train_neg_clip.tsv").stat().st_mtime_ns == stamp
    generate_world(WorldConfig(seed=1, **{**TINY, "n_train": 5}), tmp_path)
    assert len((tmp_path / "train/train_neg_clip.tsv").read_text().splitlines()) == 6
    assert not (tmp_path / "train/images/train_000059.png").exists()


_AREA = {"circle": np.pi, "square": 1.6**2, "triangle": 3 * 3**0.5 / 4, "diamond": 2.0, "cross": 2.31}  # x r^2


def test_scene_graphs_match_pixels(world):
    """Every object's color is at its cell, and large objects cover more pixels than small ones."""
    vocab = load_vocab()
    for rel_path, objects in _scenes(world).items():
        img = np.asarray(Image.open(world / rel_path).convert("RGB")).astype(int)
        cell = img.shape[0] / vocab.grid
        for o in objects:
            mask = np.abs(img - np.array(vocab.colors[o["color"]])).sum(-1) < 40
            ys, xs = np.nonzero(mask)
            assert len(xs) > 5, (rel_path, o)
            assert int(xs.mean() // cell) == o["col"] and int(ys.mean() // cell) == o["row"], (rel_path, o)
            expected = {
                s: _AREA[o["shape"]] * (vocab.max_radius_fraction * cell * f) ** 2 for s, f in vocab.sizes.items()
            }
            closest = min(expected, key=lambda s: abs(np.log(len(xs) / expected[s])))
            assert closest == o["size"], (rel_path, o, len(xs), expected)


def test_training_captions_true_and_negatives_false(world):
    scenes = _scenes(world)
    with (world / "train/train_neg_clip.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == TINY["n_train"] and set(rows[0]) == {"filepath", "title", "neg_caption"}
    halves = singles = 0
    for r in rows:
        objects = scenes[f"train/{r['filepath']}"]
        assert _true_for(r["title"], objects, strict=True), r
        halves += " half" in r["title"]
        singles += len(objects) > 1 and len(_parse(r["title"])[0]) == 1
        negatives = ast.literal_eval(r["neg_caption"])
        assert negatives and all(isinstance(n, str) for n in negatives), r
        for neg in negatives:
            assert not _true_for(neg, objects, strict=False), r
    assert halves > 5  # p_half: some captions say where an object is ("in the left half"), and it is true
    assert singles > 5  # p_single: some captions of multi-object scenes mention one object only (true, partial)


def test_world_replacements_false_for_every_image_with_that_caption(world):
    """The loader joins ``negatives_world.jsonl`` by caption text, so each replacement must be false for all images
    sharing the caption; its words must all be the world's own (no WordNet words)."""
    scenes = _scenes(world)
    with (world / "train/train_neg_clip.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    by_caption: dict[str, list[list[dict]]] = {}
    for r in rows:
        by_caption.setdefault(r["title"], []).append(scenes[f"train/{r['filepath']}"])
    v = load_vocab()
    vocab_words = {w for r in rows for w in re.findall(r"[a-z]+", r["title"])} | set(v.colors) | set(v.shapes)
    vocab_words |= set(v.sizes) | {w for rel in v.relations.values() for p in rel.phrases for w in p.split()}
    lines = (world / "train/negatives_world.jsonl").read_text().splitlines()
    assert len(lines) > len(by_caption) // 2
    for rec in map(json.loads, lines):
        assert set(rec["negatives"]) == {"replace"} and rec["negatives"]["replace"], rec
        for neg in rec["negatives"]["replace"]:
            assert neg != rec["caption"] and set(re.findall(r"[a-z]+", neg)) <= vocab_words, (rec, neg)
            for objects in by_caption[rec["caption"]]:
                assert not _true_for(neg, objects, strict=False), (rec, neg, objects)


def test_sugarcrepe_files(world):
    scenes = _scenes(world)
    for kind in NEGATIVE_KINDS:
        data = json.loads((world / f"sugarcrepe/data/{kind}.json").read_text())
        assert list(data) == [str(i) for i in range(TINY["n_sugarcrepe"])]
        for rec in data.values():
            assert set(rec) == {"filename", "caption", "negative_caption"}
            objects = scenes[f"sugarcrepe/images/{rec['filename']}"]
            assert _true_for(rec["caption"], objects, strict=True), (kind, rec)
            assert not _true_for(rec["negative_caption"], objects, strict=False), (kind, rec)
            if kind.startswith("swap"):
                assert _words(rec["caption"]) == _words(rec["negative_caption"])
            if kind.startswith("add"):
                assert len(rec["negative_caption"].split()) > len(rec["caption"].split())


def test_winoground_file(world):
    scenes = _scenes(world)
    lines = (world / "winoground/data/examples.jsonl").read_text().splitlines()
    assert len(lines) == TINY["n_winoground"]
    for ex in map(json.loads, lines):
        assert {"id", "image_0", "image_1", "caption_0", "caption_1", "tag", "collapsed_tag"} <= set(ex)
        assert _words(ex["caption_0"]) == _words(ex["caption_1"]), ex  # same words, different binding
        for k in (0, 1):
            objects = scenes[f"winoground/data/images/{ex[f'image_{k}']}.png"]
            assert _true_for(ex[f"caption_{k}"], objects, strict=True), ex
            assert not _true_for(ex[f"caption_{1 - k}"], objects, strict=False), ex


def test_aro_files(world):
    scenes = _scenes(world)
    for subset, extra in (("relation", "relation_name"), ("attribution", "attributes")):
        records = json.loads((world / f"aro/visual_genome_{subset}.json").read_text())
        assert len(records) == TINY["n_aro"]
        for rec in records:
            assert {
                "image_path",
                "bbox_x",
                "bbox_y",
                "bbox_w",
                "bbox_h",
                "true_caption",
                "false_caption",
                extra,
            } <= set(rec)
            objects = scenes[f"aro/images/{rec['image_path']}"]
            assert _true_for(rec["true_caption"], objects, strict=True), rec
            assert not _true_for(rec["false_caption"], objects, strict=False), rec


def test_zeroshot_and_retrieval_files(world):
    scenes = _scenes(world)
    for task in ("shape", "color", "count"):
        root = world / "zeroshot" / task
        classes = root.joinpath("classnames.txt").read_text().splitlines()
        templates = root.joinpath("templates.txt").read_text().splitlines()
        assert classes and all("{}" in t for t in templates)
        rows = [line.split("\t") for line in root.joinpath("test.txt").read_text().splitlines()]
        assert len(rows) == TINY["n_zeroshot"] and {int(label) for _, label in rows} == set(range(len(classes)))
        for path, label in rows:
            objects = scenes[f"zeroshot/{task}/{path}"]
            truth = {"shape": objects[0]["shape"], "color": objects[0]["color"], "count": None}[task]
            assert classes[int(label)] == truth if task != "count" else len(objects) == int(label) + 1
    records = json.loads((world / "retrieval/synthetic_karpathy_test.json").read_text())
    assert len(records) == TINY["n_retrieval"]
    for rec in records:
        assert len(rec["caption"]) >= 2 and len(set(rec["caption"])) == len(rec["caption"])
        for text in rec["caption"]:
            assert _true_for(text, scenes[f"retrieval/{rec['image']}"], strict=True), rec


@pytest.mark.parametrize("kind", [*NEGATIVE_KINDS, "relation_swap"])
def test_every_negative_kind_is_false_for_many_scenes(kind):
    vocab, rng, built = load_vocab(), np.random.default_rng(0), 0
    for _ in range(150):
        scene = sc.sample_scene(rng, vocab, int(rng.integers(2, 4)))
        st = sc.positive_for(kind, scene, vocab, rng)
        assert sc.holds(st, scene, vocab, strict=True)
        neg = sc.negative(kind, st, scene, vocab, rng)
        if neg is not None:
            built += 1
            assert not sc.holds(neg, scene, vocab, strict=False)
            objects = scene.to_dict()["objects"]
            assert not _true_for(sc.caption(neg, vocab, rng), objects, strict=False)
    assert built > 100
