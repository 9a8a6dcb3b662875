"""Write the synthetic world to disk in the real on-disk formats (training TSV and the benchmarks).

Every item ``idx`` of every split draws from its own generator ``default_rng([seed, split, idx])``,
so files do not depend on the order of generation, and the same seed always gives identical bytes.
``generate_world`` is cached: a ``manifest.json`` holding the config is written last, and a folder
whose manifest matches the requested config is reused as is.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsc_clip.data.synthetic import scene as sc
from fsc_clip.data.synthetic.render import render_scene
from fsc_clip.data.synthetic.vocab import Vocab, load_vocab

WORLD_FORMAT = "fsc-clip-synthetic-world"
WORLD_VERSION = 2  # 2: train/negatives_world.jsonl (world-grammar replacements)

# Stable ids of the random streams (never renumber: they are part of the seed contract).
_STREAMS = {"train": 1, "sugarcrepe": 2, "winoground": 3, "aro_relation": 4, "aro_attribution": 5}
_STREAMS.update({"zeroshot_shape": 6, "zeroshot_color": 7, "zeroshot_count": 8, "retrieval": 9})
_STREAMS["train_replace"] = 10

SCENES_FILE = "scenes.jsonl"  # one scene graph per written image: {"image": <path from root>, "objects": [...]}

# Relative layout of the world folder (the synthetic benchmark adapters read the same constants).
LAYOUT = {
    "train_tsv": "train/train_neg_clip.tsv",
    "train_images": "train/images",
    "train_negatives": "train/negatives_world.jsonl",
    "sugarcrepe": "sugarcrepe",
    "winoground": "winoground",
    "aro": "aro",
    "zeroshot": "zeroshot",
    "retrieval": "retrieval",
    "retrieval_json": "retrieval/synthetic_karpathy_test.json",
}


@dataclass
class WorldConfig:
    """How big the world is and how its training captions are mixed.

    Attributes:
        seed: Master seed; the same seed always writes identical files.
        image_size: Side of the square images in pixels.
        supersample: Drawing resolution factor before box-filter downsampling (anti-aliasing).
        n_train: Training image-caption pairs.
        train_objects: Relative frequency of 1-, 2- and 3-object scenes in the training set.
        p_relation: Probability that a training caption states a spatial relation (when possible).
        p_color: Probability that a training caption states an object's color. At 1.0 captions are specific, so
            contrastive pre-training nearly solves in-batch retrieval and fine-tuning's gradient comes from the hard
            negatives; with vague captions (0.5) the in-batch term dominates and the negatives barely count.
        p_size: Probability that a training caption states an object's size.
        p_half: Probability that a training caption states an object's half of the image ("in the left half"), as
            real captions sometimes say where things are. It makes contrastive pre-training keep where each object
            is in the image embedding (without it a linear probe finds no left/right order there), so that the
            relations hard negatives teach can be learned in a short fine-tuning. Test sets never say it.
        p_single: Probability that the caption of a multi-object training scene mentions only one of its objects ("a
            red circle" for a red circle beside a blue square), a true partial caption as real ones often are. A batch
            then holds images with red and a circle but no red circle, so contrastive pre-training has to bind each
            color to its shape in the image embedding instead of keeping a bag of colors and shapes.
        n_sugarcrepe: Items per SugarCrepe subset (7 subsets).
        n_winoground: Winoground 2x2 examples.
        n_aro: Items per ARO subset (VG-Relation, VG-Attribution).
        n_zeroshot: Test images per zero-shot task (shape, color, count).
        n_retrieval: Retrieval test images.
        retrieval_captions: Captions per retrieval image.
        shapes: Draw only the first N packaged shapes (0: all five). With few shapes and colors (3 x 3) a batch of
            128 often holds two images with the same objects in another arrangement, which only positions tell
            apart, so contrastive pre-training itself asks for positions (docs/demo.md, "Relations learned").
        colors: Draw only the first N packaged colors (0: all eight).
        one_way: True captions (training and test sets) state relations only as *left of* and *above*; "A to the
            right of B" is said "B to the left of A". The images are the same. See
            :meth:`fsc_clip.data.synthetic.vocab.Vocab.restricted`.
    """

    seed: int = 0
    image_size: int = 64
    supersample: int = 4
    n_train: int = 20000
    train_objects: list[float] = field(default_factory=lambda: [0.2, 0.5, 0.3])
    p_relation: float = 0.8
    p_color: float = 1.0
    p_size: float = 0.5
    p_half: float = 0.0
    p_single: float = 0.0
    n_sugarcrepe: int = 200
    n_winoground: int = 150
    n_aro: int = 400
    n_zeroshot: int = 240
    n_retrieval: int = 300
    retrieval_captions: int = 5
    shapes: int = 0
    colors: int = 0
    one_way: bool = False

    def __post_init__(self) -> None:
        if len(self.train_objects) != 3 or min(self.train_objects) < 0 or sum(self.train_objects) <= 0:
            raise ValueError("train_objects must be 3 non-negative weights for 1, 2 and 3 objects")
        vocab = load_vocab()
        for what, n, have in (("shapes", self.shapes, len(vocab.shapes)), ("colors", self.colors, len(vocab.colors))):
            if n != 0 and not 3 <= n <= have:  # a scene holds up to 3 objects of distinct shapes and distinct colors
                raise ValueError(f"world.{what} must be 0 (all) or 3 to {have} (3: a scene has up to 3 objects; "
                                 f"{have}: the packaged ones), got {n}")  # fmt: skip


class _World:
    """Shared state of one generation run: config, vocabulary, output root, progress."""

    def __init__(self, cfg: WorldConfig, root: Path, progress: bool) -> None:
        self.cfg, self.root, self.progress = cfg, root, progress
        self.vocab: Vocab = load_vocab().restricted(cfg.shapes, cfg.colors, cfg.one_way)
        self.scenes: dict[str, dict[str, Any]] = {}  # image path relative to root -> scene graph

    def rng(self, stream: str, idx: int) -> np.random.Generator:
        return np.random.default_rng([self.cfg.seed, _STREAMS[stream], idx])

    def save(self, scene: sc.Scene, rel_path: str) -> None:
        path = self.root / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.scenes[rel_path] = scene.to_dict()
        render_scene(scene, self.vocab, self.cfg.image_size, self.cfg.supersample).save(path, format="PNG")

    def items(self, n: int, desc: str) -> Iterable[int]:
        if not self.progress:
            return range(n)
        from tqdm.auto import tqdm

        return tqdm(range(n), desc=desc, unit="img", leave=False, dynamic_ncols=True)

    def n_objects(self, rng: np.random.Generator, weights: list[float]) -> int:
        p = np.asarray(weights, dtype=float)
        return int(rng.choice(len(p), p=p / p.sum())) + 1


# ----------------------------------------------------------------------------------------------- writers


def _negclip_negatives(w: _World, st: sc.Statement, scene: sc.Scene, rng: np.random.Generator) -> list[sc.Statement]:
    """NegCLIP-like swap negatives for the training TSV (a replacement when no swap is possible)."""
    out = []
    for kind in rng.permutation(["swap_att", "swap_obj", "relation_swap"]):
        neg = sc.negative(str(kind), st, scene, w.vocab, rng)
        if neg is not None and neg not in out:
            out.append(neg)
    for kind in ("replace_att", "replace_obj"):
        neg = None if out else sc.negative(kind, st, scene, w.vocab, rng)
        if neg is not None:
            out.append(neg)
    return out


REPLACE_KINDS = ("replace_att", "replace_obj", "replace_rel")
"""World-grammar replacements of the fine-tuning JSONL (type ``replace``): the world's own words, never WordNet's."""


def _realize_like(w: _World, neg: sc.Statement, st: sc.Statement, template: str, rel_index: int, rng) -> str:
    """``neg`` in the caption's own wording when the template family allows it (so only the edit differs)."""
    same = sc.template_kind(neg) == sc.template_kind(st)
    return sc.realize(neg, template if same else sc.pick_wording(neg, w.vocab, rng)[0], w.vocab, rel_index)


def _replacements(w: _World, st: sc.Statement, scene: sc.Scene, idx: int, template: str, rel_index: int):
    """Replacement negatives of one training caption: ``[(statement, text)]``, each false for ``scene``."""
    rng, out = w.rng("train_replace", idx), []
    for kind in REPLACE_KINDS:
        neg = sc.negative(kind, st, scene, w.vocab, rng)
        if neg is not None:
            out.append((neg, _realize_like(w, neg, st, template, rel_index, rng)))
    return out


def _write_replacements(w: _World, rows: list[tuple[str, sc.Scene, list[tuple[sc.Statement, str]]]]) -> int:
    """``train/negatives_world.jsonl``: ``{"caption", "negatives": {"replace": [...]}}`` per distinct caption.

    The fine-tuning loader joins this file to samples by caption text, so a negative is kept only if it is false
    (even leniently) for every training image that has this caption, not only for the one it was made from.
    """
    scenes: dict[str, list[sc.Scene]] = {}
    for title, scene, _ in rows:
        scenes.setdefault(title, []).append(scene)
    negatives: dict[str, list[str]] = {}
    for title, _, reps in rows:
        keep = negatives.setdefault(title, [])
        for neg, text in reps:
            false_everywhere = not any(sc.holds(neg, other, w.vocab, strict=False) for other in scenes[title])
            if false_everywhere and text != title and text not in keep:
                keep.append(text)
    path = w.root / LAYOUT["train_negatives"]
    with path.open("w", encoding="utf-8") as f:
        for title, texts in negatives.items():
            if texts:
                f.write(json.dumps({"caption": title, "negatives": {"replace": texts}}) + "\n")
    return sum(1 for t in negatives.values() if t)


def write_train(w: _World) -> dict[str, Any]:
    """``train/train_neg_clip.tsv`` + ``train/images`` + ``train/negatives_world.jsonl``.

    Columns as COCO's ``train_neg_clip.tsv``: ``filepath`` (relative to ``train/``), ``title`` (the caption)
    and ``neg_caption`` (a Python list literal of NegCLIP-style swap negatives, each false for the image).
    The JSONL holds world-grammar replacements (attribute, object, relation) in the ``fsc-clip negatives`` layout.
    """
    cfg, rows, replace_rows = w.cfg, [], []
    for idx in w.items(cfg.n_train, "world: train"):
        rng = w.rng("train", idx)
        scene = sc.sample_scene(rng, w.vocab, w.n_objects(rng, cfg.train_objects))
        single = cfg.p_single > 0 and len(scene.objects) > 1 and rng.random() < cfg.p_single
        most = 1 if single else None
        st = sc.describe(scene, w.vocab, rng, cfg.p_relation, cfg.p_color, cfg.p_size, most, cfg.p_half)
        template, rel_index = sc.pick_wording(st, w.vocab, rng)
        title = sc.realize(st, template, w.vocab, rel_index)
        negs = []
        for neg in _negclip_negatives(w, st, scene, rng):
            text = _realize_like(w, neg, st, template, rel_index, rng)
            if text != title and text not in negs:
                negs.append(text)
        rel_path = f"images/train_{idx:06d}.png"
        w.save(scene, f"train/{rel_path}")
        rows.append((rel_path, title, repr(negs)))  # a Python list literal, as in COCO's file
        replace_rows.append((title, scene, _replacements(w, st, scene, idx, template, rel_index)))
    path = w.root / LAYOUT["train_tsv"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["filepath", "title", "neg_caption"])
        writer.writerows(rows)
    return {"train": len(rows), "train/replace_captions": _write_replacements(w, replace_rows)}


def _sugarcrepe_item(w: _World, kind: str, idx: int) -> tuple[sc.Scene, str, str]:
    rng = w.rng("sugarcrepe", sc.NEGATIVE_KINDS.index(kind) * 1_000_000 + idx)
    min_objects = 2 if kind in ("replace_rel", "swap_obj", "swap_att") else 1
    while True:
        scene = sc.sample_scene(rng, w.vocab, int(rng.integers(min_objects, 4)))
        st = sc.positive_for(kind, scene, w.vocab, rng)
        neg = sc.negative(kind, st, scene, w.vocab, rng)
        if neg is None:
            continue
        template, rel_index = sc.pick_wording(st, w.vocab, rng)
        pos_text = sc.realize(st, template, w.vocab, rel_index)
        if kind == "add_obj":  # SugarCrepe's ADD appends to the caption rather than rewording it
            neg_text = f"{pos_text} and {neg.mentions[-1].phrase()}"
        else:
            neg_text = sc.realize(neg, template, w.vocab, rel_index)
        if neg_text != pos_text:
            return scene, pos_text, neg_text


def write_sugarcrepe(w: _World) -> dict[str, Any]:
    """``sugarcrepe/data/<subset>.json`` (``{"<idx>": {filename, caption, negative_caption}}``) + ``images/``."""
    counts = {}
    for kind in sc.NEGATIVE_KINDS:
        data = {}
        for idx in w.items(w.cfg.n_sugarcrepe, f"world: sugarcrepe {kind}"):
            scene, pos, neg = _sugarcrepe_item(w, kind, idx)
            filename = f"{kind}_{idx:05d}.png"
            w.save(scene, f"{LAYOUT['sugarcrepe']}/images/{filename}")
            data[str(idx)] = {"filename": filename, "caption": pos, "negative_caption": neg}
        _write_json(w.root / LAYOUT["sugarcrepe"] / "data" / f"{kind}.json", data)
        counts[f"sugarcrepe/{kind}"] = len(data)
    return counts


_WINO_TYPES = (
    ("phrase", "Noun", "Object"),
    ("color", "Adjective-Color", "Attribute"),
    ("size", "Adjective-Size", "Attribute"),
)


def _winoground_pair(w: _World, idx: int) -> tuple[sc.Scene, sc.Scene, str, str, tuple[str, str, str]]:
    rng = w.rng("winoground", idx)
    wtype = _WINO_TYPES[idx % len(_WINO_TYPES)]
    while True:
        s0 = sc.sample_scene(rng, w.vocab, 2)
        a, b = s0.objects
        if wtype[0] == "size" and a.size == b.size:
            continue
        if wtype[0] == "phrase":  # same objects, positions exchanged
            a1 = dataclasses.replace(a, row=b.row, col=b.col, jitter=b.jitter)
            b1 = dataclasses.replace(b, row=a.row, col=a.col, jitter=a.jitter)
        else:  # same layout, the attribute exchanged between the two objects
            f = wtype[0]
            a1, b1 = dataclasses.replace(a, **{f: getattr(b, f)}), dataclasses.replace(b, **{f: getattr(a, f)})
        s1 = dataclasses.replace(s0, objects=(a1, b1))
        rel = sc.strict_relation(a, b, w.vocab)
        use_rel = wtype[0] == "phrase" or rng.random() < 0.5
        if use_rel and rel is None:  # a diagonal pair has no strict relation to state: draw another scene
            continue
        size = wtype[0] == "size"
        m0 = (
            sc.Mention(a.shape, a.color, a.size if size else None),
            sc.Mention(b.shape, b.color, b.size if size else None),
        )
        st0 = sc.Statement(m0, ((0, rel, 1),) if use_rel and rel is not None else ())
        st1 = _winoground_partner(wtype[0], st0)
        template, rel_index = sc.pick_wording(st0, w.vocab, rng)
        c0, c1 = (sc.realize(s, template, w.vocab, rel_index) for s in (st0, st1))
        if c0 != c1 and not sc.holds(st0, s1, w.vocab, strict=False) and not sc.holds(st1, s0, w.vocab, strict=False):
            return s0, s1, c0, c1, wtype


def _winoground_partner(kind: str, st: sc.Statement) -> sc.Statement:
    """caption_1's statement: the same words as caption_0 with the two phrases (or attributes) exchanged."""
    m0, m1 = st.mentions
    if kind == "phrase":
        return sc.Statement((m1, m0), st.relations)
    return sc.Statement(
        (dataclasses.replace(m0, **{kind: getattr(m1, kind)}), dataclasses.replace(m1, **{kind: getattr(m0, kind)})),
        st.relations,
    )


def write_winoground(w: _World) -> dict[str, Any]:
    """``winoground/data/examples.jsonl`` + ``winoground/data/images/<image id>.png``."""
    lines = []
    for idx in w.items(w.cfg.n_winoground, "world: winoground"):
        s0, s1, c0, c1, (_, tag, collapsed) = _winoground_pair(w, idx)
        for k, scene in enumerate((s0, s1)):
            w.save(scene, f"{LAYOUT['winoground']}/data/images/ex_{idx}_img_{k}.png")
        record = {"id": idx, "image_0": f"ex_{idx}_img_0", "image_1": f"ex_{idx}_img_1", "caption_0": c0}
        record.update(caption_1=c1, tag=tag, secondary_tag="", num_main_preds=1, collapsed_tag=collapsed)
        lines.append(json.dumps(record))
    path = w.root / LAYOUT["winoground"] / "data" / "examples.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"winoground": len(lines)}


def _aro_record(w: _World, scene: sc.Scene, rel_path: str) -> dict[str, Any]:
    size = w.cfg.image_size  # the whole image is the region of interest
    return {"image_path": rel_path, "bbox_x": 0, "bbox_y": 0, "bbox_w": size, "bbox_h": size}


def write_aro(w: _World) -> dict[str, Any]:
    """``aro/visual_genome_{relation,attribution}.json`` + ``aro/images`` (ARO's VG-R / VG-A records)."""
    vocab, relation, attribution = w.vocab, [], []
    for idx in w.items(w.cfg.n_aro, "world: aro"):
        rng = w.rng("aro_relation", idx)
        scene = sc.sample_scene(rng, vocab, int(rng.integers(2, 4)))
        pairs = sc.aligned_pairs(scene, vocab)
        i, rel, j = pairs[int(rng.integers(len(pairs)))]
        a, b = scene.objects[i], scene.objects[j]
        ma, mb = sc.Mention(a.shape, a.color), sc.Mention(b.shape, b.color)
        phrase, text = vocab.relations[rel].phrases[0], vocab.templates["aro_relation"]
        rel_path = f"relation_{idx:05d}.png"
        w.save(scene, f"{LAYOUT['aro']}/images/{rel_path}")
        record = _aro_record(w, scene, rel_path)
        record.update(relation_name=phrase, true_caption=text.format(A=ma.phrase(""), rel=phrase, B=mb.phrase("")))
        record["false_caption"] = text.format(A=mb.phrase(""), rel=phrase, B=ma.phrase(""))
        relation.append(record)

        rng = w.rng("aro_attribution", idx)
        scene = sc.sample_scene(rng, vocab, int(rng.integers(2, 4)))
        a, b = scene.objects[0], scene.objects[1]
        text = vocab.templates["aro_attribution"]
        rel_path = f"attribution_{idx:05d}.png"
        w.save(scene, f"{LAYOUT['aro']}/images/{rel_path}")
        record = _aro_record(w, scene, rel_path)
        record.update(attributes=[a.color, b.color])
        record["true_caption"] = text.format(A=f"{a.color} {a.shape}", B=f"{b.color} {b.shape}")
        record["false_caption"] = text.format(A=f"{b.color} {a.shape}", B=f"{a.color} {b.shape}")
        attribution.append(record)
    _write_json(w.root / LAYOUT["aro"] / "visual_genome_relation.json", relation)
    _write_json(w.root / LAYOUT["aro"] / "visual_genome_attribution.json", attribution)
    return {"aro/relation": len(relation), "aro/attribution": len(attribution)}


def zeroshot_classes(task: str, vocab: Vocab | None = None) -> list[str]:
    """Class names of a synthetic zero-shot task (``shape``, ``color`` or ``count``), in label order."""
    vocab = vocab or load_vocab()
    spec = vocab.templates["zeroshot"][task]["classes"]
    if spec == "shapes":
        return list(vocab.shapes)
    if spec == "colors":
        return list(vocab.colors)
    return list(spec)


def zeroshot_templates(task: str, vocab: Vocab | None = None) -> list[str]:
    """Prompt templates (``{}`` = class name) of a synthetic zero-shot task."""
    return list((vocab or load_vocab()).templates["zeroshot"][task]["templates"])


ZEROSHOT_TASKS = ("shape", "color", "count")


def _zeroshot_item(w: _World, task: str, idx: int, n_classes: int) -> tuple[sc.Scene, int]:
    rng = w.rng(f"zeroshot_{task}", idx)
    label = idx % n_classes  # balanced classes
    if task == "count":
        return sc.sample_scene(rng, w.vocab, label + 1), label
    scene = sc.sample_scene(rng, w.vocab, 1)
    obj = scene.objects[0]
    attr = {"shape": list(w.vocab.shapes), "color": list(w.vocab.colors)}[task][label]
    changed = dataclasses.replace(obj, shape=attr) if task == "shape" else dataclasses.replace(obj, color=attr)
    return dataclasses.replace(scene, objects=(changed,)), label


def write_zeroshot(w: _World) -> dict[str, Any]:
    """``zeroshot/<task>/{classnames.txt, templates.txt, test.txt, images/}`` for shape, color and count.

    ``test.txt`` has the zero-shot label-file layout: ``<image path>\t<class index>`` per line.
    """
    counts = {}
    for task in ZEROSHOT_TASKS:
        classes, root = zeroshot_classes(task, w.vocab), w.root / LAYOUT["zeroshot"] / task
        rows = []
        for idx in w.items(w.cfg.n_zeroshot, f"world: zeroshot {task}"):
            scene, label = _zeroshot_item(w, task, idx, len(classes))
            rel_path = f"images/{task}_{idx:05d}.png"
            w.save(scene, f"{LAYOUT['zeroshot']}/{task}/{rel_path}")
            rows.append(f"{rel_path}\t{label}")
        (root / "classnames.txt").write_text("\n".join(classes) + "\n", encoding="utf-8")
        (root / "templates.txt").write_text("\n".join(zeroshot_templates(task, w.vocab)) + "\n", encoding="utf-8")
        (root / "test.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        counts[f"zeroshot/{task}"] = len(rows)
    return counts


def _retrieval_captions(w: _World, scene: sc.Scene, rng: np.random.Generator) -> list[str]:
    captions: list[str] = []
    for _ in range(200):
        st = sc.describe(scene, w.vocab, rng, p_relation=0.7, p_color=0.9, p_size=0.5)
        text = sc.caption(st, w.vocab, rng)
        if text not in captions:
            captions.append(text)
        if len(captions) == w.cfg.retrieval_captions:
            break
    return captions


def write_retrieval(w: _World) -> dict[str, Any]:
    """Karpathy-format ``retrieval/synthetic_karpathy_test.json`` (``[{image, caption: [...]}]``) + images."""
    records = []
    for idx in w.items(w.cfg.n_retrieval, "world: retrieval"):
        rng = w.rng("retrieval", idx)
        scene = sc.sample_scene(rng, w.vocab, int(rng.integers(1, 4)))
        rel_path = f"images/retrieval_{idx:05d}.png"
        w.save(scene, f"{LAYOUT['retrieval']}/{rel_path}")
        records.append({"image": rel_path, "caption": _retrieval_captions(w, scene, rng)})
    _write_json(w.root / LAYOUT["retrieval_json"], records)
    return {"retrieval/images": len(records), "retrieval/captions": sum(len(r["caption"]) for r in records)}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


WRITERS: dict[str, Callable[[_World], dict[str, Any]]] = {
    "train": write_train,
    "sugarcrepe": write_sugarcrepe,
    "winoground": write_winoground,
    "aro": write_aro,
    "zeroshot": write_zeroshot,
    "retrieval": write_retrieval,
}


# ----------------------------------------------------------------------------------------------- entry point


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The manifest of a complete world folder, or None if there is none (or it is unreadable)."""
    path = Path(root) / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def generate_world(cfg: WorldConfig, root: str | Path, progress: bool = False, force: bool = False) -> dict[str, Any]:
    """Write the whole world under ``root`` (or reuse it if its manifest matches ``cfg``).

    Args:
        cfg: World size, seed and training-caption mix.
        root: Output folder; created if needed. A stale or partial world there is replaced.
        progress: Show progress bars.
        force: Regenerate even if a matching world exists.

    Returns:
        The manifest: format, version, config, item counts and the relative layout.
    """
    root = Path(root)
    config = dataclasses.asdict(cfg)
    manifest = read_manifest(root)
    if not force and manifest and manifest.get("version") == WORLD_VERSION and manifest.get("config") == config:
        return manifest
    if root.exists():
        for sub in {p.split("/")[0] for p in LAYOUT.values()} | {"manifest.json", SCENES_FILE}:
            target = root / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (root / LAYOUT["train_images"]).mkdir(parents=True, exist_ok=True)
    w = _World(cfg, root, progress)
    counts: dict[str, Any] = {}
    for writer in WRITERS.values():
        counts.update(writer(w))
    with (root / SCENES_FILE).open("w", encoding="utf-8") as f:
        for rel_path, graph in w.scenes.items():
            f.write(json.dumps({"image": rel_path, **graph}) + "\n")
    manifest = {"format": WORLD_FORMAT, "version": WORLD_VERSION, "config": config, "counts": counts, "layout": LAYOUT}
    _write_json(root / "manifest.json", manifest)
    return manifest
