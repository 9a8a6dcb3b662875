"""Every registered benchmark proven by known scores: a hand-made score matrix, sub-scores known by construction.

For each benchmark in the registry a fixture is written in its real native layout (the shared writers of
``eval_fixtures.py`` where they exist) and read back *independently* by a small parser in this file, which
records, for every item, the image(s) and the text(s) that are right. A :class:`TruthEmbedder` then realises a
hand-made score matrix ``s(image, text)``: each image is a one-hot vector, each text carries its scores against
every image (plus a slack coordinate so that every vector has unit norm), so ``image @ text`` is exactly the
designed score. The right pair scores 1 and everything else 0, except for chosen items that are *made wrong*
(right pair -1, or a wrong pair 2; for 2x2 groups one of four patterns with known text / image / group outcomes).

The expected sub-scores, counts and benchmark-level score are then computed here from the per-item truth with
the protocol's documented rule (pooled / macro accuracy, Winoground outcomes, recall by counting, ELEVATER
metrics in float64) and compared with the benchmark's output. A loader that swaps right and wrong, drops or
adds items, or an aggregate that averages the wrong columns, fails. A registered benchmark without a truth case
here fails :func:`test_every_registered_benchmark_has_a_truth_case`.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import os
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from eval_fixtures import WRITERS, write_fixture, write_png

from fsc_clip.evaluation.base import BenchmarkOutput, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS

ImageKey = tuple[str, tuple[float, ...] | None]
TOL = 1e-9  # percentages are ratios of small integers; only summation order can differ
TOL_F32 = 1e-4  # retrieval recall and zero-shot accuracy are averaged in float32 by the library
SCALE = 2.0**-6  # embedding scale of the designed scores: a power of two keeps them (and their ties) exact


# ----- the hand-made score matrix ---------------------------------------------------------------------------
class Book:
    """The designed scores ``s(image, text)`` (default 0) and which pairs are made wrong.

    Images are keyed by their real path relative to the data root and their crop, as the embedding cache keys
    them; a symlink is its target (MMVP's fixture links 270 files to 8 images).
    """

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self.table: dict[tuple[ImageKey, str], float] = {}
        self.images: dict[ImageKey, int] = {}
        self.seen: dict[str, int] = {}

    def key(self, path: str | Path, bbox: Sequence[float] | None = None) -> ImageKey:
        real = os.path.realpath(path)
        assert os.path.isfile(real), f"truth parser points at a missing image: {path}"
        k = (os.path.relpath(real, self.root), None if bbox is None else tuple(float(v) for v in bbox))
        self.images.setdefault(k, len(self.images))
        return k

    def set(self, key: ImageKey, text: str, value: float) -> None:
        old = self.table.get((key, text))
        assert old is None or old == value, f"conflicting truth for {key} / {text!r}: {old} vs {value}"
        self.table[(key, text)] = value

    def get(self, key: ImageKey, text: str) -> float:
        return self.table.get((key, text), 0.0)

    def made_wrong(self, sub: str) -> bool:
        """Deterministic choice of the items made wrong: item ``n`` of a sub-score is wrong iff ``n % p == q``
        with ``p`` in 3..5 and ``q`` in 1..p-1 from a hash of the sub-score's name. So sub-scores differ, and a
        sub-score of ``c >= 3`` items has fewer than ``c / 2`` wrong: never 50 %, which a swap of right and
        wrong (50 -> 50) could not be told from."""
        n = self.seen.get(sub, 0)
        self.seen[sub] = n + 1
        h = zlib.crc32(sub.encode())
        p = 3 + h % 3
        return n % p == 1 + (h // 3) % (p - 1)

    def pair(
        self, sub: str, path: str | Path, text: str, bbox: Sequence[float] | None = None, may_fail: bool = True
    ) -> bool:
        """The right (image, text) pair of a multiple-choice item (I2T or T2I): 1, or -1 if made wrong.

        Every other candidate scores 0, so the item is correct iff it was not made wrong.
        """
        key = self.key(path, bbox)
        if (key, text) in self.table:  # the same pair in two items (e.g. SPEC's I2T key = T2I query): same truth
            return self.table[(key, text)] > 0
        wrong = self.made_wrong(sub) and may_fail
        self.set(key, text, -1.0 if wrong else 1.0)
        return not wrong

    # s[caption][image] for the four group patterns; outcomes (text, image, group) by the Winoground rules.
    GROUP_PATTERNS: ClassVar[dict[str, tuple]] = {
        "ok": (((1, 0), (0, 1)), (True, True, True)),
        "text": (((2, 0), (3, 4)), (False, True, False)),  # image 0 prefers caption 1; each caption its image
        "image": (((2, 3), (0, 4)), (True, False, False)),  # caption 0 prefers image 1; each image its caption
        "both": (((1, 2), (2, 1)), (False, False, False)),
    }

    def group(self, sub: str, images: Sequence[str | Path], captions: Sequence[str]) -> tuple[bool, bool, bool]:
        """A 2x2 item (caption k belongs to image k): one of four patterns, returns (text, image, group)."""
        keys = [self.key(p) for p in images]
        n = self.seen.get(sub, 0)
        self.seen[sub] = n + 1
        pattern = ("ok", "text", "image", "both")[(n + zlib.crc32(sub.encode())) % 4]
        s, outcome = self.GROUP_PATTERNS[pattern]
        for c in (0, 1):
            for i in (0, 1):
                self.set(keys[i], captions[c], float(s[c][i]))
        return outcome


class TruthEmbedder:
    """An :class:`~fsc_clip.evaluation.base.Embedder` realising a :class:`Book` exactly.

    Image ``i`` is the one-hot ``e_i``; a text is ``scale * [s(image_0, text), ..., s(image_N, text)]`` plus a
    slack coordinate making its norm 1. ``scale`` is a power of two, so every designed score (and every tie) is
    exact in float32, and ``image @ text == scale * s(image, text)``.
    """

    def __init__(self, book: Book) -> None:
        self.book = book
        self.n = len(book.images)
        self.rows: dict[str, dict[int, float]] = {}
        for (key, text), value in book.table.items():
            self.rows.setdefault(text, {})[book.images[key]] = value
        self.scale = SCALE
        top = max((math.sqrt(sum(v * v for v in r.values())) for r in self.rows.values()), default=0.0)
        assert top * SCALE < 1.0, "the designed scores are too large for unit-norm text vectors"

    def images(self, refs: Sequence[ImageRef], desc: str = "") -> torch.Tensor:
        out = torch.zeros(len(refs), self.n + 1)
        for r, ref in enumerate(refs):
            key = (os.path.relpath(os.path.realpath(ref.path), self.book.root), ref.bbox)
            key = (key[0], None if key[1] is None else tuple(float(v) for v in key[1]))
            if key not in self.book.images:
                raise AssertionError(f"the benchmark embedded an image the truth does not know: {key}")
            out[r, self.book.images[key]] = 1.0
        return out

    def texts(self, texts: Sequence[str], desc: str = "") -> torch.Tensor:
        out = torch.zeros(len(texts), self.n + 1, dtype=torch.float64)
        for t, text in enumerate(texts):
            for i, v in self.rows.get(text, {}).items():
                out[t, i] = self.scale * v
        out[:, self.n] = (1.0 - (out[:, : self.n] ** 2).sum(dim=1)).sqrt()
        return out.float()

    def prefetch(self, refs: Sequence[ImageRef] = (), texts: Sequence[str] = (), desc: str = "") -> None:
        return None


# ----- independent aggregation --------------------------------------------------------------------------------
def pct(hits: Iterable[bool]) -> float:
    h = list(hits)
    return 100.0 * sum(h) / len(h)


def avg(values: Iterable[float]) -> float:
    v = list(values)
    return sum(v) / len(v)


@dataclass
class Truth:
    """Expected output of one benchmark on its fixture."""

    book: Book
    scores: dict[str, float]
    counts: dict[str, int]
    score: float
    extra: dict[str, Any] = field(default_factory=dict)


class Outcomes:
    """Per-sub-score lists of expected per-item outcomes (pooled accuracy), filled while designing the scores."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.hits: dict[str, list[bool]] = {}

    def pair(self, sub: str, path: str | Path, text: str, bbox: Sequence[float] | None = None, **kw: bool) -> None:
        """A multiple-choice item of ``sub`` whose right pair is (``path``, ``text``); see :meth:`Book.pair`."""
        self.add(sub, self.book.pair(sub, path, text, bbox, **kw))

    def group(self, prefix: str, images: Sequence[str | Path], captions: Sequence[str]) -> None:
        """A 2x2 item counted in ``<prefix>text|image|group``; see :meth:`Book.group`."""
        self.add_group(prefix, self.book.group(prefix, images, captions))

    def add(self, sub: str, ok: bool) -> None:
        self.hits.setdefault(sub, []).append(ok)

    def add_group(self, prefix: str, outcome: tuple[bool, bool, bool]) -> None:
        for metric, ok in zip(("text", "image", "group"), outcome):
            self.add(f"{prefix}{metric}", ok)

    def scores(self) -> dict[str, float]:
        return {k: pct(v) for k, v in self.hits.items()}

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.hits.items()}


def pooled_truth(book: Book, out: Outcomes, aggregate: Callable[[dict[str, float]], float]) -> Truth:
    scores = out.scores()
    return Truth(book, scores, out.counts(), aggregate(scores))


def load_json(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def find(folder: Path, stem: str) -> Path:
    for cand in (folder / stem, *(folder / f"{stem}{ext}" for ext in (".jpg", ".jpeg", ".png"))):
        if cand.is_file():
            return cand
    raise AssertionError(f"fixture image {stem} not found in {folder}")


# ----- compositional benchmarks ---------------------------------------------------------------------------------
CASES: dict[str, Callable[[Path], Truth]] = {}


def case(*names: str) -> Callable:
    def deco(fn: Callable[[Path], Truth]) -> Callable[[Path], Truth]:
        for n in names:
            CASES[n] = fn
        return fn

    return deco


def aro_caption(caption: str) -> str:
    """ARO/BLIP ``pre_caption``: lower-case, punctuation ``.!"()*#:;~`` to spaces, squeezed, <= 30 words."""
    caption = re.sub(r"\s{2,}", " ", re.sub(r"[.!\"()*#:;~]", " ", caption.lower())).strip()
    return " ".join(caption.split(" ")[:30])


def aro_excluded_relations() -> set[str]:
    from importlib import resources

    text = (resources.files("fsc_clip") / "resources/evaluation/aro_vg_relation_excluded.txt").read_text()
    return {s.strip() for s in text.splitlines() if s.strip() and not s.startswith("#")}


def aro_vg(book: Book, folder: Path, prefix: str, min_attribute: int) -> tuple[dict, dict]:
    """VG-Relation / VG-Attribution: crop vs [false, true]; macro accuracy over relations / attribute pairs."""
    scores, counts = {}, {}
    excluded = aro_excluded_relations()
    subsets = (("VG_Relation", "visual_genome_relation.json", "relation_name", 1),
               ("VG_Attribute", "visual_genome_attribution.json", "attributes", min_attribute))  # fmt: skip
    for sub, file, cat_key, min_n in subsets:
        per: dict[str, list[bool]] = {}
        for rec in load_json(folder / file):
            bbox = [rec[k] for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h")]
            ok = book.pair(f"{prefix}::{sub}", folder / "images" / rec["image_path"], rec["true_caption"], bbox)
            cat = rec[cat_key]
            cat = "_".join(cat) if isinstance(cat, list) else cat
            if sub == "VG_Relation" and cat in excluded:
                continue
            per.setdefault(cat, []).append(ok)
        kept = [v for v in per.values() if len(v) >= min_n]
        scores[f"{prefix}::{sub}"] = avg(pct(v) for v in kept)
        counts[f"{prefix}::{sub}"] = sum(len(v) for v in kept)
    return scores, counts


@case("aro")
def truth_aro(root: Path) -> Truth:
    write_fixture("aro", root, scale=3)
    book, d = Book(root), root / "aro"
    # boundary: an attribute pair with exactly 25 examples is kept in the macro mean (ARO: >= 25)
    att = json.loads((d / "visual_genome_attribution.json").read_text())
    red_blue = [r for r in att if r["attributes"] == ["red", "blue"]]
    assert len(red_blue) >= 25
    att = [r for r in att if r["attributes"] != ["red", "blue"]] + red_blue[:25]
    (d / "visual_genome_attribution.json").write_text(json.dumps(att))
    scores, counts = aro_vg(book, d, "aro", 25)
    out = Outcomes(book)
    for sub, file in (("Flickr30k_Order", "flickr30k_test.json"), ("COCO_Order", "coco_karpathy_test.json")):
        for rec in load_json(d / file):
            for cap in rec["caption"]:
                text = aro_caption(cap)
                # a caption of < 4 words may have no perturbation that differs from it: no negative, always right
                out.pair(f"aro::{sub}", d / rec["image"], text, may_fail=len(text.split()) >= 4)
    scores.update(out.scores())
    counts.update(out.counts())
    subs = ("VG_Relation", "VG_Attribute", "Flickr30k_Order", "COCO_Order")
    return Truth(book, scores, counts, avg(scores[f"aro::{s}"] for s in subs))


@case("colorswap")
def truth_colorswap(root: Path) -> Truth:
    write_fixture("colorswap", root, scale=3)
    book, d = Book(root), root / "colorswap"
    out = Outcomes(book)
    for rec in load_json(d / "data" / "test.json"):
        imgs = [d / rec[k] if (d / rec[k]).is_file() else d / "data" / rec[k] for k in ("image_1", "image_2")]
        out.group("colorswap::", imgs, [rec["caption_1"], rec["caption_2"]])
    return pooled_truth(book, out, lambda s: s["colorswap::group"])


@case("crepe")
def truth_crepe(root: Path) -> Truth:
    write_fixture("crepe", root, scale=3)
    book, d = Book(root), root / "crepe"
    out = Outcomes(book)
    for kind in ("atom", "swap", "negate"):
        folder = d / "prod_hard_negatives" / kind
        files = [folder / f"prod_vg_hard_negs_{kind}_complexity_{c}.csv" for c in range(4, 13)]
        files = [f for f in files if f.is_file()] or [folder / f"prod_vg_hard_negs_{kind}_all.csv"]
        for path in files:
            with path.open(newline="") as f:
                for row in csv.DictReader(f):
                    image = next(p for p in (d / "VG_100K" / f"{row['image_id']}.jpg",
                                             d / "VG_100K_2" / f"{row['image_id']}.jpg") if p.is_file())  # fmt: skip
                    bbox = [row[k] for k in ("x", "y", "width", "height")]
                    assert ast.literal_eval(row["hard_negs"])  # the negatives score 0
                    out.pair(f"crepe::{kind}", image, row["caption"], bbox)
    return pooled_truth(book, out, lambda s: avg(s[f"crepe::{k}"] for k in ("atom", "swap", "negate")))


EQBEN_SUBSETS = ("youcook2", "gebc", "ag", "kubric_loc", "kubric_cnt", "kubric_attr", "sd")


def _eqben_records(subset: str, data: Any) -> list[dict]:
    if isinstance(data, list):
        return data
    out = []
    for value in data.values():  # {video: [records]} or {video: {subject: [records]}}
        for recs in value.values() if isinstance(value, dict) else [value]:
            out.extend(recs)
    return out


@case("eqben")
def truth_eqben(root: Path) -> Truth:
    write_fixture("eqben", root, scale=3)
    book, d = Book(root), root / "eqben"
    out = Outcomes(book)
    image_dir = next(d / x for x in ("image", "images") if (d / x).is_dir())
    released = [d / f for f in ("private_info_global.json", "ann_json/private_info_global.json",
                                "annotation/private_info_global.json") if (d / f).is_file()]  # fmt: skip
    if released:  # as released: one list; the subset is the record's field or its image's first folder
        by_subset: dict[str, list[dict]] = {}
        for rec in load_json(released[0]):
            rec = {k.replace("_", ""): v for k, v in rec.items()}  # image_0 / caption_0 spellings
            sub = rec.get("dataset") or rec.get("subset") or str(rec["image0"]).split("/")[0]
            by_subset.setdefault(str(sub).removeprefix("eqben"), []).append(rec)
    else:  # per-subset files in the official per-subset loaders' nestings
        by_subset = {s: _eqben_records(s, load_json(d / "ann_json" / f"eqben{s}.json")) for s in EQBEN_SUBSETS}
    for s in EQBEN_SUBSETS:
        for rec in by_subset.get(s, []):
            caps = [c[0] if isinstance(c, list) else c for c in (rec["caption0"], rec["caption1"])]
            imgs = [image_dir / rec[k] for k in ("image0", "image1")]
            imgs = [p if p.is_file() else p.with_suffix(".jpg") for p in imgs]  # the "light" release: png -> jpg
            out.group(f"eqben::eqben{s}::", imgs, caps)

    def aggregate(sc: dict[str, float]) -> float:
        g = lambda s: sc[f"eqben::eqben{s}::group"]  # noqa: E731
        kubric = avg(g(k) for k in ("kubric_loc", "kubric_cnt", "kubric_attr"))
        return avg([g("youcook2"), g("gebc"), g("ag"), g("sd"), kubric])

    return pooled_truth(book, out, aggregate)


@case("imagecode")
def truth_imagecode(root: Path) -> Truth:
    write_fixture("imagecode", root, scale=3)
    book, d = Book(root), root / "imagecode"
    out = Outcomes(book)
    for set_dir, descriptions in load_json(d / "data" / "valid_data.json").items():
        frames = sorted((d / "image-sets" / set_dir).glob("img*.jpg"), key=lambda p: int(p.stem[3:]))
        assert len(frames) == 10
        for frame in frames:
            book.key(frame)  # every candidate is embedded
        for idx, text in descriptions.items():  # the target is the position in the sorted set, not the file name
            sub = "static" if set_dir.startswith("open-images") else "videos"
            out.pair(f"imagecode::{sub}", frames[int(idx)], text)
    sizes = {"videos": 1872, "static": 430}  # published sizes: the pooling weights
    return pooled_truth(book, out, lambda s: sum(sizes[k] * s[f"imagecode::{k}"] for k in sizes) / sum(sizes.values()))


MMVP_CATEGORIES = ("Orientation and Direction", "Presence of Specific Features", "State and Condition",
                   "Quantity and Count", "Positional and Relational Context", "Color and Appearance",
                   "Structural Characteristics", "Texts", "Viewpoint and Perspective")  # fmt: skip


@case("mmvp_vlm")
def truth_mmvp(root: Path) -> Truth:
    write_fixture("mmvp_vlm", root)  # scale > 1 writes 270 distinct images
    book, d = Book(root), root / "mmvp_vlm"
    out = Outcomes(book)
    with (d / "Questions.csv").open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    for p in range(len(rows) // 2):
        (q1, folder, s1), (q2, _, s2) = rows[2 * p][:3], rows[2 * p + 1][:3]
        imgs = [d / "MLLM_VLM Images" / folder / f"{q}.jpg" for q in (q1, q2)]
        # the official prefix "a photo of " is added to each statement
        out.group(f"mmvp_vlm::{MMVP_CATEGORIES[p // 15]}::", imgs, [f"a photo of {s1}", f"a photo of {s2}"])
    return pooled_truth(book, out, lambda s: avg(s[f"mmvp_vlm::{c}::group"] for c in MMVP_CATEGORIES))


SPEC_SUBSETS = ("absolute_size", "relative_size", "absolute_spatial", "relative_spatial", "existence", "count")


@case("spec")
def truth_spec(root: Path) -> Truth:
    write_fixture("spec", root, scale=3)
    book, d = Book(root), root / "spec"
    out = Outcomes(book)
    for s in SPEC_SUBSETS:
        for rec in load_json(d / s / "image2text.json"):
            out.pair(f"spec::{s}::i2t", d / s / rec["query"], rec["keys"][rec["label"]])
        for rec in load_json(d / s / "text2image.json"):
            for k in rec["keys"]:
                book.key(d / s / k)
            out.pair(f"spec::{s}::t2i", d / s / rec["keys"][rec["label"]], rec["query"])
    return pooled_truth(book, out, lambda sc: avg(sc.values()))


SUGARCREPE = {"replace": ("replace_obj", "replace_att", "replace_rel"), "swap": ("swap_obj", "swap_att"),
              "add": ("add_obj", "add_att")}  # fmt: skip
SUGARCREPE_SIZES = {"replace_obj": 1652, "replace_att": 788, "replace_rel": 1406, "swap_obj": 245, "swap_att": 666,
                    "add_obj": 2062, "add_att": 692}  # fmt: skip


def sugarcrepe_outcomes(book: Book, d: Path, image_dir: Path, prefix: str) -> Outcomes:
    out = Outcomes(book)
    for subs in SUGARCREPE.values():
        for s in subs:
            for rec in load_json(d / "data" / f"{s}.json").values():
                out.pair(f"{prefix}::{s}", image_dir / rec["filename"], rec["caption"])
    return out


@case("sugarcrepe")
def truth_sugarcrepe(root: Path) -> Truth:
    write_fixture("sugarcrepe", root, scale=3)
    book = Book(root)
    out = sugarcrepe_outcomes(book, root / "sugarcrepe", root / "sugarcrepe" / "val2017", "sugarcrepe")

    def aggregate(s: dict[str, float]) -> float:  # mean over categories of the size-pooled accuracy
        return avg(sum(SUGARCREPE_SIZES[k] * s[f"sugarcrepe::{k}"] for k in subs) / sum(SUGARCREPE_SIZES[k]
                                                                                         for k in subs)
                   for subs in SUGARCREPE.values())  # fmt: skip

    return pooled_truth(book, out, aggregate)


@case("svo_probes")
def truth_svo(root: Path) -> Truth:
    write_fixture("svo_probes", root, scale=3)
    return svo_truth(root)


def svo_truth(root: Path) -> Truth:
    book, d, skipped = Book(root), root / "svo_probes", 0
    out = Outcomes(book)
    with (d / "svo_probes.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            kinds = [k for k in ("subj_neg", "verb_neg", "obj_neg") if row[k] == "True"]
            if len(kinds) != 1:
                continue
            try:
                pos, neg = (find(d / "images", row[k]) for k in ("pos_image_id", "neg_image_id"))
            except AssertionError:
                skipped += 1  # a dead URL: the row is skipped and counted
                continue
            book.key(neg)
            out.pair(f"svo_probes::{kinds[0]}", pos, row["sentence"])
    truth = pooled_truth(book, out, lambda s: avg(s.values()))
    truth.extra = {"skipped_missing_images": skipped}
    return truth


VALSE_GROUPS = (("existence",), ("plurals",), ("counting-hard", "counting-small-quant", "counting-adversarial"),
                ("relations",), ("action-replacement", "actant-swap"), ("coreference-standard", "coreference-hard"),
                ("foil-it",))  # fmt: skip


@case("valse")
def truth_valse(root: Path) -> Truth:
    write_fixture("valse", root, scale=3)
    book, d = Book(root), root / "valse"
    out = Outcomes(book)
    for piece in (p for g in VALSE_GROUPS for p in g):
        path = d / "data" / f"{piece}.json"
        data = json.loads(path.read_text())
        # boundary: exactly 2 of 3 annotators chose the caption -> validated (VALSE keeps mturk.caption >= 2)
        ids = list(data)
        data[ids[-1]]["mturk"] = {"caption": 2, "foil": 1, "other": 0}
        path.write_text(json.dumps(data))
        for rec in data.values():
            if rec["mturk"]["caption"] < 2:
                continue
            # the released files spell the COCO 2017 folder both ways (coco2017 / coco_2017)
            folders = {"coco2017": ("coco2017", "coco_2017"), "coco_2017": ("coco2017", "coco_2017")}
            cands = [d / "images" / f / rec["image_file"] for f in folders.get(rec["dataset"], (rec["dataset"],))]
            image = next(p for p in [*cands, d / "images" / rec["image_file"]] if p.is_file())
            out.pair(f"valse::{piece}", image, rec["caption"])
        assert any(r["mturk"]["caption"] < 2 for r in data.values()), "the fixture must hold a non-validated sample"
    return pooled_truth(book, out, lambda s: avg(avg(s[f"valse::{p}"] for p in g) for g in VALSE_GROUPS))


VL_GROUPS = ("Object_", "Attribute_", "Relation_")


@case("vl_checklist")
def truth_vl_checklist(root: Path) -> Truth:
    import yaml

    write_fixture("vl_checklist", root, scale=3)
    book, d = Book(root), root / "vl_checklist"
    per: dict[str, dict[str, dict[str, list[bool]]]] = {}  # column -> source -> file -> outcomes
    for path in sorted((d / "corpus" / "v1").rglob("*.yaml")):
        column = "_".join(path.relative_to(d / "corpus" / "v1").parent.parts)
        spec = yaml.safe_load(path.read_text())
        for image_rel, texts in load_json(d / spec["ANNO_PATH"])[:1000]:
            image = d / "images" / spec["IMG_ROOT"] / image_rel
            if not image.is_file():
                continue  # the official loader drops items whose image is missing
            ok = book.pair(f"vl_checklist::{column}", image, texts["POS"][0])
            per.setdefault(column, {}).setdefault(path.stem.split("_")[0], {}).setdefault(path.stem, []).append(ok)
    scores = {f"vl_checklist::{c}": avg(avg(pct(v) for v in files.values()) for files in src.values())
              for c, src in per.items()}  # fmt: skip
    counts = {f"vl_checklist::{c}": sum(len(v) for files in src.values() for v in files.values())
              for c, src in per.items()}  # fmt: skip
    agg = avg(avg(v for k, v in scores.items() if k.split("::")[1].startswith(g)) for g in VL_GROUPS)
    return Truth(book, scores, counts, agg)


@case("whatsup")
def truth_whatsup(root: Path) -> Truth:
    write_fixture("whatsup", root, scale=3)
    book, d = Book(root), root / "whatsup"
    out = Outcomes(book)
    for sub, file, folder in (("WhatsUp_A", "controlled_images_dataset.json", "controlled_images"),
                              ("WhatsUp_B", "controlled_clevr_dataset.json", "controlled_clevr")):  # fmt: skip
        for rec in load_json(d / file):  # the first option is the right one
            out.pair(f"whatsup::{sub}", d / folder / Path(rec["image_path"]).name, rec["caption_options"][0])
    for sub, file, folder, fmt in (("COCO_QA_ONE", "coco_qa_one_obj.json", "val2017", "{:012d}"),
                                   ("COCO_QA_TWO", "coco_qa_two_obj.json", "val2017", "{:012d}"),
                                   ("VG_QA_ONE", "vg_qa_one_obj.json", "vg_images", "{}"),
                                   ("VG_QA_TWO", "vg_qa_two_obj.json", "vg_images", "{}")):  # fmt: skip
        for image_id, true_caption, _false in load_json(d / file):
            out.pair(f"whatsup::{sub}", find(d / folder, fmt.format(int(image_id))), true_caption)
    return pooled_truth(book, out, lambda s: avg(s.values()))


def winoground_outcomes(book: Book, d: Path, prefix: str) -> Outcomes:
    out = Outcomes(book)
    for rec in load_json(d / "data" / "examples.jsonl"):
        imgs = [find(d / "data" / "images", rec[k]) for k in ("image_0", "image_1")]
        out.group(f"{prefix}::", imgs, [rec["caption_0"], rec["caption_1"]])
    return out


@case("winoground")
def truth_winoground(root: Path) -> Truth:
    write_fixture("winoground", root, scale=3)
    book = Book(root)
    return pooled_truth(book, winoground_outcomes(book, root / "winoground", "winoground"),
                        lambda s: s["winoground::group"])  # fmt: skip


# ----- compositional_2025 ---------------------------------------------------------------------------------------
SCPP_SUBSETS = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")


@case("sugarcrepe_pp")
def truth_sugarcrepe_pp(root: Path) -> Truth:
    """s(I, P1) = 1, s(I, P2) = 1 (or -1 when made wrong), s(I, N) = 0 unless N is P1 (the release's quirk: a tie).
    TOT is read off the truth embedder's text vectors in float64 (P2 made wrong points away from P1)."""
    from eval_fixtures import write_fixture_2025

    write_fixture_2025("sugarcrepe_pp", root, scale=3)
    book, d = Book(root), root / "sugarcrepe_pp"
    triplets: list[tuple[str, ImageKey, tuple[str, str, str]]] = []
    for subset in SCPP_SUBSETS:
        for rec in load_json(d / "data" / f"{subset}.json"):
            key = book.key(d / "images" / rec["filename"])
            texts = (rec["caption"], rec["caption2"], rec["negative_caption"])
            book.set(key, texts[0], 1.0)
            book.set(key, texts[1], -1.0 if book.made_wrong(f"ITT::{subset}") else 1.0)
            triplets.append((subset, key, texts))
    emb = TruthEmbedder(book)
    out = Outcomes(book)
    for subset, key, (p1, p2, n) in triplets:
        s1, s2, sn = (book.get(key, t) for t in (p1, p2, n))
        out.add(f"sugarcrepe_pp::ITT::{subset}", s1 > sn and s2 > sn)
        v1, v2, vn = emb.texts([p1, p2, n]).double()
        out.add(f"sugarcrepe_pp::TOT::{subset}", bool(v1 @ v2 > v1 @ vn) and bool(v1 @ v2 > v2 @ vn))
    return pooled_truth(book, out, lambda sc: avg(sc[f"sugarcrepe_pp::ITT::{s}"] for s in SCPP_SUBSETS))


@case("cola")
def truth_cola(root: Path) -> Truth:
    from eval_fixtures import write_fixture_2025

    write_fixture_2025("cola", root, scale=3)
    book, d = Book(root), root / "cola"
    out = Outcomes(book)
    for url0, c0, url1, c1 in load_json(d / "data" / "COLA_multiobjects_matching_benchmark.json"):
        out.group("cola::", [d / "images" / u.rsplit("/", 1)[1] for u in (url0, url1)], [c0, c1])
    return pooled_truth(book, out, lambda sc: sc["cola::image"])  # ColaMultiObjAcc: text-to-image


@case("bivlc")
def truth_bivlc(root: Path) -> Truth:
    """The parquet rows decoded here into the documented images/<shard>/<row>_{pos,neg}.<ext> (the benchmark reuses
    identical files); I2T / T2I / group are Winoground's text / image / group, overall and per type."""
    pq = pytest.importorskip("pyarrow.parquet")
    from eval_fixtures import write_fixture_2025

    write_fixture_2025("bivlc", root, scale=3)
    book, d = Book(root), root / "bivlc"
    out = Outcomes(book)
    for shard in sorted((d / "data").glob("test-*.parquet")):
        for i, row in enumerate(pq.read_table(shard).to_pylist()):
            paths = []
            for col, stem in (("image", "pos"), ("negative_image", "neg")):
                data = row[col]["bytes"]
                ext = ".jpg" if data[:2] == b"\xff\xd8" else ".png"  # the fixture: COCO JPEG, generated PNG
                path = d / "images" / shard.name.split(".")[0] / f"{i}_{stem}{ext}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                paths.append(path)
            outcome = book.group(f"bivlc::{row['type']}", paths, [row["caption"], row["negative_caption"]])
            for metric, ok in zip(("I2T", "T2I", "group"), outcome):
                out.add(f"bivlc::{metric}", ok)
                out.add(f"bivlc::{row['type']}::{metric}", ok)
    return Truth(book, out.scores(), out.counts(), out.scores()["bivlc::group"], {"n_items_published": 2933})


NEGBENCH_MCQ = {  # benchmark -> (part, CSV under negbench/data/images/), as m1k2zoo/negbench datasets.md names them
    "negbench": (("COCO", "COCO_val_mcq_llama3.1_rephrased.csv"), ("VOC2007", "VOC2007_mcq_llama3.1_rephrased.csv")),
    "negbench_syn": (("synthetic", "synthetic_mcq_llama3.1_rephrased.csv"),),
    "negbench_chexpert": (("binary_mcq", "chexpert_binary_mcq.csv"),
                          ("binary_mcq_control", "chexpert_binary_mcq_control.csv")),
}  # fmt: skip
NEGBENCH_COLUMN = {
    "negbench": lambda sc: (sc["negbench::COCO::total"] + sc["negbench::VOC2007::total"]) / 2,
    "negbench_syn": lambda sc: sc["negbench_syn::synthetic::total"],
    "negbench_chexpert": lambda sc: sc["negbench_chexpert::binary_mcq::total"],  # the negated captions
}


@case(*NEGBENCH_MCQ)
def truth_negbench(root: Path, name: str = "") -> Truth:
    """mcq.py: the right caption is ``caption_<correct_answer>``; accuracy per part and per template (if any)."""
    from eval_fixtures import write_fixture_2025

    write_fixture_2025(name, root, scale=3)
    book, d = Book(root), root / "negbench"
    out = Outcomes(book)
    for part, file in NEGBENCH_MCQ[name]:
        with (d / "data" / "images" / file).open(newline="") as f:
            for row in csv.DictReader(f):
                raw = row["image_path"]
                path = raw if os.path.isfile(raw) else d / raw.lstrip("/")
                ok = book.pair(f"{name}::{part}", path, row[f"caption_{int(row['correct_answer'])}"])
                out.add(f"{name}::{part}::total", ok)
                if "correct_answer_template" in row:
                    out.add(f"{name}::{part}::{row['correct_answer_template']}", ok)
    return pooled_truth(book, out, NEGBENCH_COLUMN[name])


@case("negbench_retrieval")
def truth_negbench_retrieval(root: Path) -> Truth:
    """retrieval.py: one pool per CSV (rows = images, every caption a query), R@1 and R@5 both ways."""
    from eval_fixtures import write_fixture_2025

    write_fixture_2025("negbench_retrieval", root, scale=2)
    book, d = Book(root), root / "negbench"
    scores, counts = {}, {}
    for part, file in (("COCO", "COCO_val_retrieval.csv"),
                       ("COCO-negated", "COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv")):  # fmt: skip
        with (d / "data" / "images" / file).open(newline="") as f:
            rows = list(csv.DictReader(f))
        images = [d / r["filepath"].lstrip("/") for r in rows]
        captions = [(c, i) for i, r in enumerate(rows) for c in ast.literal_eval(r["captions"])]
        if part == "COCO-negated":  # the parts must differ: image 2's other captions are preferred by 6 images
            for text in [c for c, o in captions if o == 2][1:]:
                for i in range(3, 9):
                    book.set(book.key(images[i]), text, 2.0)
        part_scores, part_counts = retrieval_recalls(book, f"negbench_retrieval::{part}", images, captions, (1, 5))
        scores.update(part_scores)
        counts.update(part_counts)
    assert scores["negbench_retrieval::COCO::t2i/R@5"] != scores["negbench_retrieval::COCO-negated::t2i/R@5"]
    return Truth(book, scores, counts, scores["negbench_retrieval::COCO-negated::t2i/R@5"])


@case("cola_single")
def truth_cola_single(root: Path) -> Truth:
    """ColaSingleObjAP: s(image, class) = 1 if the image has the class, else 0, except chosen pairs made wrong (a
    negative 2, above every positive; or a positive 0, tied with the negatives). AP per class over its hard images
    from the definition (precision and recall at each distinct score), mean over the classes that some image has
    and that have hard images."""
    from eval_fixtures import COLA_SINGLE_PARTS, write_fixture_2025

    write_fixture_2025("cola_single", root, scale=2)
    book, d = Book(root), root / "cola"
    scores, counts = {}, {}
    for part in COLA_SINGLE_PARTS:
        data = load_json(d / "data" / f"COLA_singleobjects_benchmark_{part}.json")
        names, rows = (data["labels"], data["data"]) if isinstance(data, dict) else data
        keys = []
        for r in rows:  # GQA: URLs, CLEVR: paths relative to cola/, PACO: authors' paths -> images/<name>
            keys.append(book.key(d / r[0] if part == "CLEVR" else d / "images" / r[0].rsplit("/", 1)[1]))
        aps = []
        for c, name in enumerate(names):
            for i, (key, r) in enumerate(zip(keys, rows)):
                wrong = book.made_wrong(f"cola_single::{part}")
                book.set(key, name, float(r[-2][c]) + (2.0 if wrong and not r[-2][c] else 0.0) -
                         (1.0 if wrong and r[-2][c] and i % 2 else 0.0))  # fmt: skip
            hard = [i for i, r in enumerate(rows) if r[-1][c] == 1]
            if any(r[-2][c] for r in rows) and hard:
                aps.append(definition_ap([book.get(keys[i], name) for i in hard], [rows[i][-2][c] for i in hard]))
        scores[f"cola_single::{part}::mAP"], counts[f"cola_single::{part}::mAP"] = 100.0 * avg(aps), len(aps)
    return Truth(book, scores, counts, avg(scores.values()))


def definition_ap(scores: list[float], labels: list[int]) -> float:
    ap, prev = 0.0, 0.0
    for t in sorted(set(scores), reverse=True):
        picked = [y for v, y in zip(scores, labels) if v >= t]
        recall = sum(picked) / sum(labels)
        ap, prev = ap + (recall - prev) * sum(picked) / len(picked), recall
    return ap


@case("vismin")
def truth_vismin(root: Path) -> Truth:
    """The Arrow rows decoded here into the documented images/<shard>/<row>_{0,1}.jpg; text / image / group per
    category (vismin-bench metric.py); the column is the mean of the four group scores."""
    pa = pytest.importorskip("pyarrow")
    from eval_fixtures import VISMIN_CATEGORIES, write_fixture_2025

    write_fixture_2025("vismin", root, scale=3)
    book, d = Book(root), root / "vismin"
    out = Outcomes(book)
    for shard in sorted((d / "data" / "test").glob("data-*.arrow")):
        with pa.OSFile(str(shard)) as f:
            rows = pa.ipc.open_stream(f).read_all().to_pylist()
        for i, row in enumerate(rows):
            paths = []
            for k in (0, 1):
                path = d / "images" / shard.name.split(".")[0] / f"{i}_{k}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(row[f"image_{k}"]["bytes"])
                paths.append(path)
            out.group(f"vismin::{row['category']}::", paths, [row["text_0"], row["text_1"]])
    return pooled_truth(book, out, lambda sc: avg(sc[f"vismin::{c}::group"] for c in VISMIN_CATEGORIES))


# ----- retrieval ------------------------------------------------------------------------------------------------
def retrieval_recalls(
    book: Book, prefix: str, images: list[Path], captions: list[tuple[str, int]], ks: Sequence[int] = (1, 5, 10)
) -> tuple[dict[str, float], dict[str, int]]:
    """Own captions score 1; some foreign pairs 2 (image 2j+1 prefers a caption of the next image; the first
    caption is preferred by up to 6 other images, so it misses at R@1 and R@5). Recall counted naively."""
    keys = [book.key(p) for p in images]
    for text, owner in captions:
        book.set(keys[owner], text, 1.0)
    first_of = {}
    for text, owner in captions:
        first_of.setdefault(owner, text)
    n = len(keys)
    foreign = [(i, first_of[(i + 1) % n]) for i in range(1, n, 2) if (i + 1) % n in first_of]
    foreign += [(i, captions[0][0]) for i in range(1, min(n, 7))]
    for i, text in foreign:
        if (keys[i], text) not in book.table:
            book.set(keys[i], text, 2.0)
    s = lambda i, t: book.get(keys[i], t)  # noqa: E731
    i2t_rank = []
    for i in range(n):
        own = [t for t, o in captions if o == i]
        best = max(s(i, t) for t in own)
        i2t_rank.append(sum(1 for t, o in captions if o != i and s(i, t) >= best))
    t2i_rank = [sum(1 for i in range(n) if i != o and s(i, t) >= s(o, t)) for t, o in captions]
    scores = {}
    for direction, ranks in (("i2t", i2t_rank), ("t2i", t2i_rank)):
        for k in ks:
            scores[f"{prefix}::{direction}/R@{k}"] = pct(r < k for r in ranks)
    counts = {k: (n if "::i2t" in k else len(captions)) for k in scores}
    assert 0 < scores[f"{prefix}::i2t/R@1"] < 100 and 0 < scores[f"{prefix}::t2i/R@5"] < 100  # the fixture has teeth
    return scores, counts


def retrieval_truth(book: Book, name: str, images: list[Path], captions: list[tuple[str, int]]) -> Truth:
    """:func:`retrieval_recalls` at R@1/5/10; the column is the mean of I2T and T2I R@1."""
    scores, counts = retrieval_recalls(book, name, images, captions)
    return Truth(book, scores, counts, (scores[f"{name}::i2t/R@1"] + scores[f"{name}::t2i/R@1"]) / 2)


@case("coco_karpathy", "flickr30k")
def truth_karpathy(root: Path, name: str = "") -> Truth:
    ann, sub = {"coco_karpathy": ("coco_karpathy_test.json", "val2014"),
                "flickr30k": ("flickr30k_test.json", "flickr30k-images")}[name]  # fmt: skip
    d = root / name
    recs = []
    for i, n_caps in enumerate([5, 6, 5, 5, 5, 5, 5, 5]):  # COCO has some images with 6 captions
        write_png(d / sub / f"img_{i}.jpg", i)
        recs.append(
            {"image": f"{sub}/img_{i}.jpg", "caption": [f"{name} image {i} caption {j}" for j in range(n_caps)]}
        )
    (d / ann).write_text(json.dumps(recs))
    return karpathy_truth(Book(root), name, d, d / ann)


def karpathy_truth(book: Book, name: str, image_root: Path, ann: Path) -> Truth:
    images, captions = [], []
    for rec in load_json(ann):
        images.append(image_root / rec["image"])
        caps = rec["caption"] if isinstance(rec["caption"], list) else [rec["caption"]]
        captions += [(aro_caption(c), len(images) - 1) for c in caps]  # BLIP's pre_caption, as its loaders do
    return retrieval_truth(book, name, images, captions)


@case("coco_counterfactuals")
def truth_coco_counterfactuals(root: Path) -> Truth:
    import random

    d = root / "coco_counterfactuals"
    lines = []
    for e in range(20):
        for k in (0, 1):
            write_png(d / "images" / f"{e}_{k}.jpg", 10 * e + k)
        caps = {"caption_0": f"a dog {e} on the left", "caption_1": f"a dog {e} on the right"}
        lines.append(json.dumps({"id": e, "image_0": f"{e}_0", "image_1": f"{e}_1", **caps}))
    (d / "examples.jsonl").write_text("\n".join(lines) + "\n")
    examples = load_json(d / "examples.jsonl")
    # FSC-CLIP appendix A.2: a seeded random 30 % of the examples (our documented draw: seed 0, file order kept)
    chosen = sorted(random.Random(0).sample(range(len(examples)), math.floor(0.3 * len(examples) + 0.5)))
    images, captions = [], []
    for n in chosen:  # one pool; caption_k belongs to image_k only
        for k in (0, 1):
            images.append(find(d / "images", examples[n][f"image_{k}"]))
            captions.append((examples[n][f"caption_{k}"], len(images) - 1))
    truth = retrieval_truth(Book(root), "coco_counterfactuals", images, captions)
    truth.extra = {"subset_ids": [examples[n]["id"] for n in chosen]}
    return truth


# ----- zero-shot --------------------------------------------------------------------------------------------------
def zs_metric(metric: str, probs: list[list[float]], labels: list[list[int]]) -> float:
    """The ELEVATER metrics, naively in float64 (fractions)."""
    n, c = len(probs), len(probs[0])

    def top1(i: int) -> bool:
        lab = labels[i][0]
        return all(probs[i][lab] > probs[i][j] for j in range(c) if j != lab)

    if metric == "accuracy":
        return sum(top1(i) for i in range(n)) / n
    if metric == "mean-per-class":
        classes = sorted({lab[0] for lab in labels})
        return avg(avg(top1(i) for i in range(n) if labels[i][0] == k) for k in classes)
    if metric == "roc_auc":
        pos = [probs[i][1] for i in range(n) if labels[i][0] == 1]
        neg = [probs[i][1] for i in range(n) if labels[i][0] == 0]
        return sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg) / (len(pos) * len(neg))
    assert metric == "11point_mAP"
    aps = []
    for k in range(c):
        y = [k in labels[i] for i in range(n)]
        n_pos = sum(y)
        points = [(1.0, 0.0)]  # (precision, recall) end point
        if n_pos:
            for tau in {probs[i][k] for i in range(n)}:
                sel = [i for i in range(n) if probs[i][k] >= tau]
                tp = sum(y[i] for i in sel)
                points.append((tp / len(sel), tp / n_pos))
        aps.append(avg(max((p for p, r in points if r >= t / 10), default=0.0) for t in range(11)))
    return avg(aps)


def zeroshot_truth(book: Book, sub: str, images: list[Path], labels: list[list[int]], classnames: Sequence[str],
                   templates: Sequence[str], metric: str) -> tuple[float, int]:  # fmt: skip
    """Each image scores 1 with its classes' prompts; images made wrong score 3 with another class.

    Returns the expected metric in percent and the number of images.
    """
    prompts: dict[str, int] = {}
    for c, name in enumerate(classnames):
        for t in templates:
            prompts.setdefault(t.format(name), c)
    used = sorted({c for labs in labels for c in labs})
    s = [[0.0] * len(classnames) for _ in images]
    for i, (path, labs) in enumerate(zip(images, labels)):
        k = book.key(path)
        decoy = next(c for c in used if c not in labs)
        for c in labs:
            s[i][c] = 1.0
        if book.made_wrong(sub):
            s[i][decoy] = 3.0  # not 2: (1, 2) and (2, 1) rows would tie in exact arithmetic only
        for c in range(len(classnames)):
            if s[i][c]:
                for t in templates:
                    prompt = t.format(classnames[c])
                    assert prompts[prompt] == c, f"prompt {prompt!r} is shared by two classes"
                    book.set(k, prompt, s[i][c])
    probs = []
    for row in s:  # the classifier's logits are 100 * image @ text = 100 * SCALE * s
        z = [math.exp(100 * SCALE * (v - max(row))) for v in row]
        probs.append([v / sum(z) for v in z])
    return 100.0 * zs_metric(metric, probs, labels), len(images)


def zs_fixture(root: Path, task: str) -> tuple[list[Path], list[list[int]]]:
    """ELEVATER label-file layout: 3 images for each of 3 classes (VOC: 2 labels each); returns paths, labels."""
    from fsc_clip.evaluation.benchmarks.zeroshot import load_task

    spec = load_task(task)
    names = spec.classnames
    unique = [c for c in range(len(names)) if sum(n == names[c] for n in names) == 1]
    classes = [unique[0], unique[1], unique[-1]]
    d = root / "elevater" / task
    lines, paths, labels = [], [], []
    for n, c in enumerate(classes * 3):
        labs = sorted({c, classes[(classes.index(c) + 1) % 3]}) if spec.multilabel else [c]
        paths.append(write_png(d / "images" / f"{n}.png", n))
        labels.append(labs)
        lines.append(f"images/{n}.png\t{','.join(map(str, labs))}")
    (d / "test.txt").write_text("\n".join(lines) + "\n")
    return paths, labels


def truth_zeroshot(root: Path, name: str) -> Truth:
    from fsc_clip.evaluation.benchmarks.zeroshot import load_task

    task = name.removeprefix("zs-")
    spec = load_task(task)
    paths, labels = zs_fixture(root, task)
    book = Book(root)
    value, n = zeroshot_truth(book, f"elevator::{task}", paths, labels, spec.classnames, spec.templates, spec.metric)
    key = f"elevator::{task}"
    return Truth(book, {key: value}, {key: n}, value)


# ----- synthetic world ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fsc_clip.data.synthetic import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("truth_world")
    generate_world(WorldConfig(seed=7, n_train=4, n_sugarcrepe=6, n_winoground=8, n_aro=8, n_zeroshot=9,
                               n_retrieval=8, supersample=1, image_size=16), root)  # fmt: skip
    return root


def synthetic_sugarcrepe(book: Book, root: Path, name: str) -> Truth:
    out = sugarcrepe_outcomes(book, root / "sugarcrepe", root / "sugarcrepe" / "images", name)
    # equal subset sizes: the mean of a category's subsets is its pooled accuracy
    return pooled_truth(book, out, lambda s: avg(avg(s[f"{name}::{k}"] for k in subs) for subs in SUGARCREPE.values()))


def synthetic_winoground(book: Book, root: Path, name: str) -> Truth:
    return pooled_truth(book, winoground_outcomes(book, root / "winoground", name), lambda s: s[f"{name}::group"])


def synthetic_aro(book: Book, root: Path, name: str) -> Truth:
    scores, counts = aro_vg(book, root / "aro", name, 1)  # every attribute pair counts on the small set
    return Truth(book, scores, counts, avg(scores.values()))


def synthetic_retrieval(book: Book, root: Path, name: str) -> Truth:
    return karpathy_truth(book, name, root / "retrieval", root / "retrieval" / "synthetic_karpathy_test.json")


def synthetic_zeroshot(book: Book, root: Path, name: str) -> Truth:
    scores, counts = {}, {}
    for task in ("shape", "color", "count"):
        d = root / "zeroshot" / task
        classes, templates = ([x for x in (d / f).read_text().splitlines() if x.strip()]
                              for f in ("classnames.txt", "templates.txt"))  # fmt: skip
        images, labels = [], []
        for line in (d / "test.txt").read_text().splitlines():
            if line.strip():
                rel, lab = line.split("\t")
                images.append(d / rel)
                labels.append([int(lab)])
        key = f"{name}::{task}"
        scores[key], counts[key] = zeroshot_truth(book, key, images, labels, classes, templates, "accuracy")
    return Truth(book, scores, counts, avg(scores.values()))


SYNTHETIC: dict[str, Callable[[Book, Path, str], Truth]] = {
    "synthetic_aro": synthetic_aro,
    "synthetic_retrieval": synthetic_retrieval,
    "synthetic_sugarcrepe": synthetic_sugarcrepe,
    "synthetic_winoground": synthetic_winoground,
    "synthetic_zeroshot": synthetic_zeroshot,
}


# ----- the tests -----------------------------------------------------------------------------------------------
def truth_case(name: str) -> Callable[[Path], Truth] | None:
    """The truth builder of a registered benchmark (zero-shot tasks share one; synthetic ones use the world)."""
    if name in CASES:
        fn = CASES[name]
        return (lambda root: fn(root, name)) if fn in (truth_karpathy, truth_negbench) else fn
    if name.startswith("zs-"):
        return lambda root: truth_zeroshot(root, name)
    return None


ALL = BENCHMARKS.names()


def has_truth(name: str) -> bool:
    return truth_case(name) is not None or name in SYNTHETIC


def test_every_registered_benchmark_has_a_truth_case():
    missing = [n for n in ALL if not has_truth(n)]
    assert not missing, f"registered benchmarks without a known-score truth case in {__file__}: {missing}"


def check(name: str, truth: Truth, data_root: Path) -> None:
    from fsc_clip.evaluation.runner import run_benchmark

    res = run_benchmark(name, TruthEmbedder(truth.book), data_root)  # the runner's path: check(), then run()
    out = BenchmarkOutput(res["scores"], res["counts"], res["score"], res["extra"])
    assert out.counts == truth.counts, f"{name}: items per sub-score differ"
    assert set(out.scores) == set(truth.scores)
    tol = TOL_F32 if BENCHMARKS.get(name).task in ("retrieval", "zeroshot") else TOL
    for k, v in truth.scores.items():
        assert out.scores[k] == pytest.approx(v, abs=tol), f"{name}: {k}"
    assert out.score == pytest.approx(truth.score, abs=tol), f"{name}: benchmark score"
    for k, v in truth.extra.items():
        assert out.extra[k] == v, f"{name}: extra[{k!r}]"
    # the fixture has teeth: some but not all items are made wrong, and (multiple choice) no sub-score is 50 %,
    # which a loader swapping right and wrong would leave unchanged
    assert any(0 < v < 100 for v in truth.scores.values()), f"{name}: no sub-score mixes right and wrong items"
    if len(truth.scores) > 2:  # an aggregate over the wrong columns must change the benchmark score
        assert len(set(truth.scores.values())) > 1, f"{name}: all sub-scores are equal"
    if BENCHMARKS.get(name).task in ("image_to_text", "text_to_image", "mixed"):
        assert all(v != 50.0 for v in truth.scores.values()), f"{name}: a 50 % sub-score is blind to swaps"


@pytest.mark.parametrize("name", [n for n in ALL if not n.startswith("synthetic_")])
def test_benchmark_scores_match_known_truth(name: str, tmp_path: Path):
    build = truth_case(name)
    if build is None:
        pytest.fail(f"{name} is registered but has no truth case in {__file__}")
    check(name, build(tmp_path), tmp_path)


@pytest.mark.parametrize("name", [n for n in ALL if n.startswith("synthetic_")])
def test_synthetic_benchmark_scores_match_known_truth(name: str, world: Path):
    if name not in SYNTHETIC:
        pytest.fail(f"{name} is registered but has no truth case in {__file__}")
    check(name, SYNTHETIC[name](Book(world), world, name), world)


def test_every_writer_fixture_is_covered():
    from eval_fixtures import WRITERS_2025

    assert set(WRITERS) | set(WRITERS_2025) <= set(CASES), "a shared fixture writer has no truth case"


# ----- boundaries: a tie is never a success, in each task type ---------------------------------------------------
def _tie_book(tmp_path: Path) -> tuple[Book, list[Path]]:
    book = Book(tmp_path)
    paths = [write_png(tmp_path / f"{i}.png", i) for i in range(3)]
    for p in paths:
        book.key(p)
    return book, paths


def test_a_tie_is_never_a_success_multiple_choice_and_group(tmp_path: Path):
    from fsc_clip.evaluation.base import GroupItem, ImageToTextItem, TextToImageItem
    from fsc_clip.evaluation.tasks import score_items

    book, paths = _tie_book(tmp_path)
    a, b, c = (book.key(p) for p in paths)
    book.set(a, "right", 1.0)
    book.set(a, "tied", 1.0)  # image a: the right text ties with a wrong one
    book.set(b, "query", 1.0)
    book.set(c, "query", 1.0)  # text "query": the right image b ties with image c
    for cap, img, v in (("c0", a, 1.0), ("c1", a, 1.0), ("c1", b, 2.0)):  # captions 0 and 1 tie on image 0
        book.set(img, cap, v)
    refs = [ImageRef(p) for p in paths]
    items = [
        ImageToTextItem(refs[0], ["right", "tied"], 0),
        ImageToTextItem(refs[0], ["right", "other"], 0),  # control: strictly higher
        TextToImageItem("query", [refs[1], refs[2]], 0),
        TextToImageItem("query", [refs[1], refs[0]], 0),  # control
        GroupItem((refs[0], refs[1]), ("c0", "c1")),
    ]
    out = score_items(items, TruthEmbedder(book))
    assert out["correct"][:4] == [False, True, False, True]
    assert (out["text"][4], out["image"][4], out["group"][4]) == (False, True, False)


def test_a_tie_is_never_a_success_retrieval_and_zeroshot(tmp_path: Path):
    from fsc_clip.evaluation.tasks.retrieval import retrieval_scores
    from fsc_clip.evaluation.tasks.zeroshot import top1_accuracy

    book, paths = _tie_book(tmp_path)
    keys = [book.key(p) for p in paths]
    captions = [("cap0", 0), ("cap1", 1), ("cap2", 2)]
    for text, owner in captions:
        book.set(keys[owner], text, 1.0)
    book.set(keys[0], "cap1", 1.0)  # image 0 ties its own caption with image 1's: I2T R@1 miss; cap1 T2I R@1 miss
    emb = TruthEmbedder(book)
    img = emb.images([ImageRef(p) for p in paths])
    txt = emb.texts([t for t, _ in captions])
    got = retrieval_scores(img, txt, torch.tensor([o for _, o in captions]))
    assert got["i2t/R@1"] == pytest.approx(200 / 3) and got["t2i/R@1"] == pytest.approx(200 / 3)
    assert got["i2t/R@5"] == 100.0 and got["t2i/R@5"] == 100.0
    probs = torch.tensor([[0.5, 0.5], [0.7, 0.3]])  # a tied top class is wrong, even if it is the label
    assert top1_accuracy(probs, torch.tensor([0, 0])) == 0.5


def test_an_empty_subset_is_reported_as_none_with_count_0(tmp_path: Path):
    """SVO-Probes with no downloadable image for any object-negative row: the sub-score is None (count 0), the
    others are unchanged and the benchmark column is None (never a partial mean)."""
    write_fixture("svo_probes", tmp_path, scale=3)
    path = tmp_path / "svo_probes" / "svo_probes.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row["obj_neg"] == "True":
            row["pos_image_id"] = "img_dead"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    truth = svo_truth(tmp_path)
    assert "svo_probes::obj_neg" not in truth.counts
    out = BENCHMARKS.get("svo_probes")().run(tmp_path, TruthEmbedder(truth.book))
    assert out.scores["svo_probes::obj_neg"] is None and out.counts["svo_probes::obj_neg"] == 0
    assert out.score is None
    for k, v in truth.scores.items():
        assert out.scores[k] == pytest.approx(v, abs=TOL) and out.counts[k] == truth.counts[k]


def test_truth_embedder_realises_the_score_matrix_exactly(tmp_path: Path):
    book, paths = _tie_book(tmp_path)
    keys = [book.key(p) for p in paths]
    values = {("a", 0): 1.0, ("a", 1): -1.0, ("b", 1): 3.0, ("b", 2): 2.0, ("c", 0): 1.0}
    for (text, i), v in values.items():
        book.set(keys[i], text, v)
    emb = TruthEmbedder(book)
    img = emb.images([ImageRef(p) for p in paths])  # [3, D]
    txt = emb.texts(["a", "b", "c", "unknown"])  # [4, D]
    assert torch.allclose(txt.norm(dim=1), torch.ones(4)) and torch.equal(img.norm(dim=1), torch.ones(3))
    want = torch.tensor([[values.get((t, i), 0.0) for i in range(3)] for t in ("a", "b", "c", "unknown")])
    assert torch.equal(txt @ img.t(), SCALE * want)  # exact, ties included
    with pytest.raises(AssertionError, match="does not know"):
        emb.images([ImageRef(write_png(tmp_path / "other.png", 9))])
