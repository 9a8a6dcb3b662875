"""Writers of tiny benchmark fixtures in each benchmark's real native layout (file names, fields, folders).

``write_all(root)`` writes every compositional benchmark under ``root`` and returns the expected item counts
per full sub-score name. Used by the tests and by ``benchmarks/eval.py`` (``scale`` multiplies item counts).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

Expected = dict[str, int]


class _Images:
    """Writes small random images (deterministic per call order)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, path: Path, size: tuple[int, int] = (40, 32)) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        w, h = size
        base = self.rng.integers(0, 256, size=3)
        arr = np.clip(base + self.rng.integers(-40, 40, size=(h, w, 3)), 0, 255).astype(np.uint8)
        if path.suffix == ".npy":
            np.save(path, arr[..., ::-1].copy())  # BGR, as EqBen YouCook2 frames
        else:
            Image.fromarray(arr).save(path)
        return path


def write_png(path: Path, seed: int = 0) -> Path:
    """A random 8x8 RGB PNG at ``path`` (parents created), deterministic per ``seed``; shared by the tests."""
    arr = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _dump(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_aro(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "aro"
    rel = []
    for i, (relation, n) in enumerate([("on", 3 * scale), ("eating", 2 * scale), ("sitting next to", 2)]):
        for k in range(n):
            img(d / "images" / f"{i}_{k}.jpg", (60, 50))
            rel.append({"image_path": f"{i}_{k}.jpg", "bbox_x": 5, "bbox_y": 4, "bbox_w": 30, "bbox_h": 30,
                        "relation_name": relation, "true_caption": f"the cup is {relation} the table",
                        "false_caption": f"the table is {relation} the cup"})  # fmt: skip
    _dump(d / "visual_genome_relation.json", rel)
    att = []
    for pair, n in ((["red", "blue"], 25 + scale), (["big", "small"], 3)):
        for k in range(n):
            att.append({"image_path": "0_0.jpg", "bbox_x": k, "bbox_y": 1, "bbox_w": 20 + k % 7, "bbox_h": 20,
                        "attributes": pair, "true_caption": f"the {pair[0]} car and the {pair[1]} door",
                        "false_caption": f"the {pair[1]} car and the {pair[0]} door"})  # fmt: skip
    _dump(d / "visual_genome_attribution.json", att)
    caps = ["A man riding a brown horse on the beach.", "Two dogs play with a red ball.", "A small cat.",
            "A woman holds an umbrella in the rain.", "cat"]  # fmt: skip
    for file, folder, prefix in (("coco_karpathy_test.json", "val2014", "COCO_val2014_"),
                                 ("flickr30k_test.json", "flickr30k-images", "")):  # fmt: skip
        anns = []
        for k in range(2 * scale):
            rel_path = f"{folder}/{prefix}{k:012d}.jpg"
            img(d / rel_path)
            anns.append({"image": rel_path, "caption": caps})
        _dump(d / file, anns)
    return {"aro::VG_Relation": 5 * scale, "aro::VG_Attribute": 25 + scale,
            "aro::Flickr30k_Order": 10 * scale, "aro::COCO_Order": 10 * scale}  # fmt: skip


def write_colorswap(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "colorswap"
    recs = []
    for i in range(3 * scale):
        for j in (1, 2):
            img(d / "images" / f"img_{i}_{j}.png")
        recs.append({"id": i, "caption_1": f"a yellow umbrella and a white dress {i}",
                     "caption_2": f"a white umbrella and a yellow dress {i}",
                     "image_1": f"images/img_{i}_1.png", "image_2": f"images/img_{i}_2.png",
                     "image_source": "midjourney", "caption_source": "human"})  # fmt: skip
    _dump(d / "data" / "test.json", recs)
    return {f"colorswap::{m}": 3 * scale for m in ("text", "image", "group")}


def write_crepe(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "crepe"
    img(d / "VG_100K" / "10.jpg", (64, 48))
    img(d / "VG_100K_2" / "11.jpg", (64, 48))
    files = {"atom": ["complexity_4", "complexity_5"], "swap": ["complexity_4"], "negate": ["all"]}
    expected = {}
    for kind, tails in files.items():
        n = 0
        for tail in tails:
            path = d / "prod_hard_negatives" / kind / f"prod_vg_hard_negs_{kind}_{tail}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["image_id", "x", "y", "width", "height", "caption", "hard_negs"])
                for k in range(2 * scale):
                    caption = f"a dog on grass {kind} {k}"
                    negs = [f"a {kind} negative {k} {j}" for j in range(3)]
                    if kind == "swap" and k == 0:  # real quirk: some swap rows list the caption among hard_negs
                        negs.insert(1, caption)
                    w.writerow([10 + k % 2, 2, 3, 30, 20, caption, repr(negs)])
                    n += 1
        expected[f"crepe::{kind}"] = n
    return expected


def write_eqben(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "eqben"
    expected = {}

    def pair(subset: str, k: int, ext: str = ".jpg", listcap: bool = False) -> dict:
        p0, p1 = f"eqben{subset}/{k}_0{ext}", f"eqben{subset}/{k}_1{ext}"
        img(d / "image" / p0)
        img(d / "image" / p1)
        c0, c1 = f"a person opens the door {subset} {k}", f"a person closes the door {subset} {k}"
        return {"image0": p0, "caption0": [c0, "x"] if listcap else c0, "image1": p1,
                "caption1": [c1, "y"] if listcap else c1}  # fmt: skip

    n = 2 * scale
    _dump(d / "ann_json" / "eqbenag.json", {"vid1": {"subj1": [pair("ag", k, listcap=True) for k in range(n)]}})
    _dump(d / "ann_json" / "eqbenyoucook2.json", {"vid1": [pair("youcook2", k, ".npy") for k in range(n)]})
    _dump(d / "ann_json" / "eqbengebc.json", {"vid1": [pair("gebc", k) for k in range(n)]})
    for s in ("kubric_loc", "kubric_cnt", "kubric_attr", "sd"):
        _dump(d / "ann_json" / f"eqben{s}.json", [pair(s, k) for k in range(n)])
    for s in ("youcook2", "gebc", "ag", "kubric_loc", "kubric_cnt", "kubric_attr", "sd"):
        for m in ("text", "image", "group"):
            expected[f"eqben::eqben{s}::{m}"] = n
    return expected


def write_imagecode(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "imagecode"
    sets = {"video-clip-1": {"3": "the frame where the man turns left", "7": "hand is up"},
            "open-images-1815_f91d6f546e63f20d": {"5": "a deer head mounted next to a painting"}}  # fmt: skip
    data = {}
    for copy in range(scale):
        for name, descs in sets.items():
            set_name = f"{name}-{copy}" if copy else name
            frames = [0, 3, 5, 7, 12, 20, 25, 31, 40, 52] if name.startswith("video") else list(range(10))
            for k in frames:
                img(d / "image-sets" / set_name / f"img{k}.jpg")
            data[set_name] = descs
    _dump(d / "data" / "valid_data.json", data)
    return {"imagecode::videos": 2 * scale, "imagecode::static": scale}


def write_mmvp(root: Path, img: _Images, scale: int = 1) -> Expected:
    from fsc_clip.evaluation.benchmarks.mmvp import CATEGORIES

    d = root / "mmvp_vlm"
    rows = [["Question ID", "Type", "Statement"]]
    # 270 image files in the native layout; at scale 1 symlinks to 8 distinct images keep the tests cheap
    # (the embedding cache keys on the resolved path, so each distinct image is encoded once).
    bases = [img(d / "_base" / f"{k}.jpg", (24, 24)) for k in range(8)]
    for pair in range(135):
        folder = CATEGORIES[pair // 15].split()[0]
        for j in (1, 2):
            qid = 2 * pair + j
            path = d / "MLLM_VLM Images" / folder / f"{qid}.jpg"
            if scale > 1:  # throughput runs: real distinct files
                img(path, (24, 24))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.symlink_to(bases[qid % 8].resolve())
            rows.append([str(qid), folder, f"the object is facing {'left' if j == 1 else 'right'} {pair}"])
    d.mkdir(parents=True, exist_ok=True)
    with (d / "Questions.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return {f"mmvp_vlm::{c}::{m}": 15 for c in CATEGORIES for m in ("text", "image", "group")}


def write_sugarcrepe(root: Path, img: _Images, scale: int = 1) -> Expected:
    from fsc_clip.evaluation.benchmarks.sugarcrepe import SUBSETS

    d = root / "sugarcrepe"
    for k in range(3):
        img(d / "val2017" / f"{k:012d}.jpg")
    expected = {}
    for s in SUBSETS:
        n = 2 * scale
        _dump(d / "data" / f"{s}.json", {str(k): {"filename": f"{k % 3:012d}.jpg", "caption": f"a dog {s} {k}",
                                                  "negative_caption": f"a cat {s} {k}"} for k in range(n)})  # fmt: skip
        expected[f"sugarcrepe::{s}"] = n
    return expected


def write_svo(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "svo_probes"
    for k in range(4):
        img(d / "images" / f"img{k}.jpg")
    cols = ["sentence", "pos_triplet", "neg_triplet", "subj_neg", "verb_neg", "obj_neg", "pos_url", "neg_url",
            "pos_image_id", "neg_image_id"]  # fmt: skip
    rows = []
    flags = {"subj_neg": (True, False, False), "verb_neg": (False, True, False), "obj_neg": (False, False, True)}
    for k in range(2 * scale):
        for kind, (s, v, o) in flags.items():
            rows.append([f"a man {kind} rides a horse {k}", "man,ride,horse", "x,y,z", s, v, o, "u", "u",
                         f"img{k % 4}", f"img{(k + 1) % 4}"])  # fmt: skip
    rows.append(["a missing image", "a,b,c", "a,b,d", False, False, True, "u", "u", "img0", "img_dead"])
    d.mkdir(parents=True, exist_ok=True)
    with (d / "svo_probes.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows(rows)
    return {f"svo_probes::{t}": 2 * scale for t in flags}


def write_valse(root: Path, img: _Images, scale: int = 1) -> Expected:
    from fsc_clip.evaluation.benchmarks.valse import PIECES

    d = root / "valse"
    img(d / "images" / "visual7w" / "v7w_1.jpg")
    img(d / "images" / "coco_2017" / "c_1.jpg")
    img(d / "images" / "FOIL dataset" / "c_1.jpg")
    # the released files spell COCO 2017 both ways (plurals: coco2017, relations: coco_2017) and FOIL with a space
    coco = {"plurals": "coco2017", "foil-it": "FOIL dataset"}
    expected = {}
    for piece in PIECES:
        data = {}
        for k in range(2 * scale + 1):
            ds, file = ("visual7w", "v7w_1.jpg") if k % 2 else (coco.get(piece, "coco_2017"), "c_1.jpg")
            votes = 1 if k == 0 else 3  # the first sample is not validated
            data[f"{piece}_{k}"] = {"dataset": ds, "image_file": file, "caption": f"There are {k} people. {piece}",
                                    "foil": f"There are no people. {piece} {k}",
                                    "mturk": {"caption": votes, "foil": 3 - votes, "other": 0}}  # fmt: skip
        _dump(d / "data" / f"{piece}.json", data)
        expected[f"valse::{piece}"] = 2 * scale
    return expected


def write_vl_checklist(root: Path, img: _Images, scale: int = 1) -> Expected:
    from fsc_clip.evaluation.benchmarks.vl_checklist import COLUMNS

    d = root / "vl_checklist"
    for src in ("vg", "swig", "hake", "vaw"):
        img(d / "images" / src / "VG_100K" / "1.jpg")
        img(d / "images" / src / "VG_100K" / "2.jpg")
    objects = ["vg_obj", "vg_subj", "swig_agent", "swig_destination", "swig_item", "swig_tool", "hake"]  # corpus.json
    sources = {c: objects if c.startswith("Object") else
               ["vg", "vaw"] if c.startswith("Attribute") else ["vg", "swig", "hake"] if c == "Relation_action"
               else ["vg"] for c in COLUMNS}  # fmt: skip
    expected = {}
    for column, stems in sources.items():
        parts = column.split("_")
        n_total = 0
        for stem in stems:
            anno = f"data/{'/'.join(parts)}/{stem}.json"
            n = 2 * scale + (stem == "vg")
            items = [[f"VG_100K/{1 + k % 2}.jpg", {"POS": [f"brown knob {k}", "x"], "NEG": [f"teal knob {k}"]}]
                     for k in range(n)]  # fmt: skip
            items.append(["VG_100K/missing.jpg", {"POS": ["p"], "NEG": ["n"]}])  # dropped: image missing
            _dump(d / anno, items)
            yaml_path = d / "corpus" / "v1" / Path(*parts) / f"{stem}.yaml"
            yaml_path.parent.mkdir(parents=True, exist_ok=True)
            src = stem.split("_")[0]
            yaml_path.write_text(f'ANNO_PATH: "{anno}"\nIMG_ROOT: "{src}/"\nTYPE: "TUPLE_JSON"\n')
            n_total += n
        expected[f"vl_checklist::{column}"] = n_total
    return expected


def write_whatsup(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "whatsup"
    expected = {}
    for subset, file, folder in (("WhatsUp_A", "controlled_images_dataset.json", "controlled_images"),
                                 ("WhatsUp_B", "controlled_clevr_dataset.json", "controlled_clevr")):  # fmt: skip
        recs = []
        for k in range(2 * scale):
            name = f"mug_{'on' if k % 2 else 'under'}_table{k}.jpeg"
            img(d / folder / name)
            opts = [f"A mug {p} a table {k}" for p in ("on", "under", "left of", "right of")]
            recs.append({"image_path": f"data/{folder}/{name}", "caption_options": opts})
        _dump(d / file, recs)
        expected[f"whatsup::{subset}"] = 2 * scale
    for subset, file, folder, fmt in (("COCO_QA_ONE", "coco_qa_one_obj.json", "val2017", "{:012d}"),
                                      ("COCO_QA_TWO", "coco_qa_two_obj.json", "val2017", "{:012d}"),
                                      ("VG_QA_ONE", "vg_qa_one_obj.json", "vg_images", "{}"),
                                      ("VG_QA_TWO", "vg_qa_two_obj.json", "vg_images", "{}")):  # fmt: skip
        recs = []
        for k in range(2 * scale):
            image_id = 139 + k
            img(d / folder / f"{fmt.format(image_id)}.jpg")
            recs.append([image_id, f"a dog to the left of a cat {k}", f"a dog to the right of a cat {k}"])
        _dump(d / file, recs)
        expected[f"whatsup::{subset}"] = 2 * scale
    return expected


def write_winoground(root: Path, img: _Images, scale: int = 1) -> Expected:
    d = root / "winoground" / "data"
    lines = []
    for i in range(3 * scale):
        img(d / "images" / f"ex_{i}_0.png")
        img(d / "images" / f"ex_{i}_1.png")
        lines.append(json.dumps({"id": i, "image_0": f"ex_{i}_0", "image_1": f"ex_{i}_1",
                                 "caption_0": f"an adult is flexing beside a child {i}",
                                 "caption_1": f"a child is flexing beside an adult {i}", "tag": "Noun",
                                 "secondary_tag": "", "num_main_preds": 1, "collapsed_tag": "Object"}))  # fmt: skip
    (d / "examples.jsonl").write_text("\n".join(lines) + "\n")
    return {f"winoground::{m}": 3 * scale for m in ("text", "image", "group")}


def write_spec(root: Path, img: _Images, scale: int = 1) -> Expected:
    from fsc_clip.evaluation.benchmarks.spec import SUBSETS

    d = root / "spec"
    expected = {}
    for s in SUBSETS:
        for k in range(3):
            img(d / s / "images" / f"{k}.jpg")
        n = 2 * scale
        i2t = [{"query": f"images/{k % 3}.jpg", "keys": [f"{s} caption {j}" for j in range(3)], "label": k % 3}
               for k in range(n)]  # fmt: skip
        t2i = [{"query": f"{s} caption {k}", "keys": [f"images/{j}.jpg" for j in range(3)], "label": k % 3}
               for k in range(n)]  # fmt: skip
        _dump(d / s / "image2text.json", i2t)
        _dump(d / s / "text2image.json", t2i)
        expected[f"spec::{s}::i2t"] = n
        expected[f"spec::{s}::t2i"] = n
    return expected


WRITERS: dict[str, Callable[[Path, _Images, int], Expected]] = {
    "aro": write_aro,
    "colorswap": write_colorswap,
    "crepe": write_crepe,
    "eqben": write_eqben,
    "imagecode": write_imagecode,
    "mmvp_vlm": write_mmvp,
    "spec": write_spec,
    "sugarcrepe": write_sugarcrepe,
    "svo_probes": write_svo,
    "valse": write_valse,
    "vl_checklist": write_vl_checklist,
    "whatsup": write_whatsup,
    "winoground": write_winoground,
}


def write_fixture(name: str, root: Path, scale: int = 1, seed: int = 0) -> Expected:
    """Write one benchmark's fixture under ``root``; return the expected counts per sub-score."""
    return WRITERS[name](Path(root), _Images(seed), scale)


def write_all(root: Path, scale: int = 1, seed: int = 0) -> dict[str, Expected]:
    """Write every fixture under ``root``."""
    img = _Images(seed)
    return {name: fn(Path(root), img, scale) for name, fn in WRITERS.items()}


# ----- compositional_2025 (kind "compositional_2025"; not in WRITERS, which is the paper's 13) -------------------
SCPP_SUBSETS = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")


def write_sugarcrepe_pp(root: Path, img: _Images, scale: int = 1) -> Expected:
    """Sri-Harsha/scpp ``data/<subset>.json`` (list of {id, filename, caption, caption2, negative_caption}) and
    the COCO images flat in ``images/``. Quirks of the release: images shared across records, and a record whose
    negative caption equals its caption (swap_obj id 2 of the release)."""
    d = root / "sugarcrepe_pp"
    shared = img(d / "images" / "000000000001.jpg")
    exp: Expected = {}
    for k, subset in enumerate(SCPP_SUBSETS):
        recs = []
        for i in range(scale * (2 + k % 3)):
            name = shared.name if i % 3 == 0 else f"0000{k:04d}{i:04d}.jpg"
            if i % 3:
                img(d / "images" / name)
            recs.append({"id": i, "filename": name, "caption": f"{subset} p1 {i}", "caption2": f"{subset} p2 {i}",
                         "negative_caption": f"{subset} p1 {i}" if (subset, i) == ("swap_obj", 1) else
                         f"{subset} neg {i}"})  # fmt: skip
        _dump(d / "data" / f"{subset}.json", recs)
        exp[f"sugarcrepe_pp::ITT::{subset}"] = exp[f"sugarcrepe_pp::TOT::{subset}"] = len(recs)
    return exp


def write_cola(root: Path, img: _Images, scale: int = 1) -> Expected:
    """arijitray1993/COLA ``data/COLA_multiobjects_matching_benchmark.json`` ([url1, caption1, url2, caption2]) and
    the images the URLs name in ``images/``; one image appears in two items, as in the release."""
    d = root / "cola"
    recs = []
    for i in range(5 * scale):
        a, b = 2400000 + i, 2400000 + (i + 1 if i % 4 == 3 else 500 + i)
        for vg in (a, b):
            if not (d / "images" / f"{vg}.jpg").exists():
                img(d / "images" / f"{vg}.jpg")
        url = "https://cs-people.bu.edu/array/data/vg_gqa_images/{}.jpg"
        caps = (f"red cube left of blue ball {i}", f"blue cube left of red ball {i}")
        recs.append([url.format(a), caps[0], url.format(b), caps[1]])
    _dump(d / "data" / "COLA_multiobjects_matching_benchmark.json", recs)
    return {f"cola::{m}": len(recs) for m in ("text", "image", "group")}


BIVLC_TYPES = ("replace", "swap", "add")


def write_bivlc(root: Path, img: _Images, scale: int = 1) -> Expected:
    """HF imirandam/BiVLC: ``data/test-0000k-of-00002.parquet`` shards, the images as HF ``Image`` structs
    ``{bytes, path}`` (COCO JPEGs; generated negatives PNG here), columns image, caption, negative_caption,
    negative_image, type, subtype. Needs pyarrow."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    d = root / "bivlc" / "data"
    d.mkdir(parents=True, exist_ok=True)
    scratch = root / "_bivlc_src"
    counts: dict[str, int] = {}
    n = 0
    for shard in range(2):
        rows = []
        for _ in range(4 * scale + shard):
            typ = BIVLC_TYPES[(n + shard) % 3]
            enc = []
            for kind, fmt in (("pos", "JPEG"), ("neg", "PNG")):
                buf = io.BytesIO()
                with Image.open(img(scratch / f"{n}_{kind}.png")) as im:
                    im.save(buf, format=fmt)
                enc.append({"bytes": buf.getvalue(), "path": None})
            rows.append({"image": enc[0], "caption": f"a dog on a mat {n}", "negative_caption": f"a mat on a dog {n}",
                         "negative_image": enc[1], "type": typ, "subtype": ("obj", "att", "rel")[n % 3]})  # fmt: skip
            counts[typ] = counts.get(typ, 0) + 1
            n += 1
        pq.write_table(pa.Table.from_pylist(rows), d / f"test-{shard:05d}-of-00002.parquet")
    exp = {f"bivlc::{m}": n for m in ("I2T", "T2I", "group")}
    for typ, c in counts.items():
        exp.update({f"bivlc::{typ}::{m}": c for m in ("I2T", "T2I", "group")})
    return exp


NEGBENCH_TEMPLATES = ("positive", "negative", "hybrid")


def write_negbench(root: Path, img: _Images, scale: int = 1) -> Expected:
    """m1k2zoo/negbench ``data/images/{COCO_val,VOC2007}_mcq_llama3.1_rephrased.csv`` (image_path, caption_0..3,
    correct_answer, correct_answer_template). COCO rows carry absolute paths that exist (rewritten by the user, as
    datasets.md says); VOC2007 rows keep an authors'-style absolute path, found relative to ``negbench/``."""
    d = root / "negbench"
    exp: Expected = {}
    for ds, name in (("COCO", "COCO_val"), ("VOC2007", "VOC2007")):
        rows = []
        for i in range(6 * scale + (ds == "VOC2007")):
            template = NEGBENCH_TEMPLATES[i % 3]
            if ds == "COCO":
                path = str(img(d / "coco" / "val2017" / f"{i % 5:012d}.jpg").resolve())  # shared images
            else:
                img(d / "data" / "VOC2007" / "JPEGImages" / f"{i:06d}.jpg")
                path = f"/data/VOC2007/JPEGImages/{i:06d}.jpg"
            caps = [f"{ds} {i} option {k}, no dog" if k % 2 else f"{ds} {i} option {k}" for k in range(4)]
            rows.append({"image_path": path, **{f"caption_{k}": c for k, c in enumerate(caps)},
                         "correct_answer": (i * 7) % 4, "correct_answer_template": template})  # fmt: skip
            for sub in ("total", template):
                exp[f"negbench::{ds}::{sub}"] = exp.get(f"negbench::{ds}::{sub}", 0) + 1
        path = d / "data" / "images" / f"{name}_mcq_llama3.1_rephrased.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return exp


WRITERS_2025: dict[str, Callable[[Path, _Images, int], Expected]] = {
    "sugarcrepe_pp": write_sugarcrepe_pp,
    "cola": write_cola,
    "bivlc": write_bivlc,
    "negbench": write_negbench,
}


def write_fixture_2025(name: str, root: Path, scale: int = 1, seed: int = 0) -> Expected:
    """Write one compositional_2025 benchmark's fixture under ``root``; return the expected counts."""
    return WRITERS_2025[name](Path(root), _Images(seed), scale)


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_negbench_syn(root: Path, img: _Images, scale: int = 1) -> Expected:
    """m1k2zoo/negbench ``data/images/synthetic_mcq_llama3.1_rephrased.csv``: the MCQ columns of the COCO CSV; image
    paths relative to ``negbench/`` (the synthetic images have no published location)."""
    d = root / "negbench"
    rows, exp = [], {}
    for i in range(5 * scale + 1):
        template = NEGBENCH_TEMPLATES[(i + 1) % 3]
        img(d / "data" / "synthetic" / f"{i:05d}.png")
        caps = [f"a synthetic scene {i} with a {k} cat" if k % 2 else f"no dog in synthetic scene {i} ({k})"
                for k in range(4)]  # fmt: skip
        rows.append({"image_path": f"data/synthetic/{i:05d}.png", **{f"caption_{k}": c for k, c in enumerate(caps)},
                     "correct_answer": (i * 3) % 4, "correct_answer_template": template})  # fmt: skip
        for sub in ("total", template):
            exp[f"negbench_syn::synthetic::{sub}"] = exp.get(f"negbench_syn::synthetic::{sub}", 0) + 1
    _write_csv(d / "data" / "images" / "synthetic_mcq_llama3.1_rephrased.csv", rows)
    return exp


def write_negbench_chexpert(root: Path, img: _Images, scale: int = 1) -> Expected:
    """m1k2zoo/negbench ``data/images/chexpert_binary_mcq{,_control}.csv`` (``CsvBinaryMCQDataset``: image_path,
    caption_0, caption_1, correct_answer; no template). Both files ask about the same X-rays, with absolute paths
    the user rewrote to existing files."""
    d = root / "negbench"
    exp = {}
    paths = [str(img(d / "chexpert" / "valid" / f"patient{60000 + i}" / "study1" / "view1_frontal.jpg").resolve())
             for i in range(3 * scale)]  # fmt: skip
    for part, phrase in (("binary_mcq", "no {} is seen"), ("binary_mcq_control", "{} is seen")):
        rows = []
        for i in range(4 * scale + (part == "binary_mcq")):
            finding = ("effusion", "edema", "pneumothorax")[i % 3]
            caps = [phrase.format(finding) + f" ({i})", phrase.format("cardiomegaly") + f" ({i})"]
            rows.append({"image_path": paths[i % len(paths)], "caption_0": caps[0], "caption_1": caps[1],
                         "correct_answer": i % 2})  # fmt: skip
        _write_csv(d / "data" / "images" / f"chexpert_{part}.csv", rows)
        exp[f"negbench_chexpert::{part}::total"] = len(rows)
    return exp


def write_negbench_retrieval(root: Path, img: _Images, scale: int = 1) -> Expected:
    """m1k2zoo/negbench ``data/images/COCO_val_retrieval.csv`` and
    ``COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv`` (``CsvImageCaptionDataset``: ``filepath`` and
    ``captions``, the Python list literal pandas writes for a list). The same images in both; 4 to 6 captions each
    (one with an apostrophe, so its literal uses double quotes; commas force CSV quoting); absolute authors'-style
    paths, found relative to ``negbench/``."""
    d = root / "negbench"
    n = 4 * scale + 2
    for i in range(n):
        img(d / "data" / "coco" / "val2017" / f"{i:012d}.jpg")
    exp = {}
    for part, name in (("COCO", "COCO_val_retrieval.csv"),
                       ("COCO-negated", "COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv")):  # fmt: skip
        rows, n_caps = [], 0
        for i in range(n):
            caps = [f"a dog on a sofa, photo {i} caption {j}" for j in range(4 + i % 3)]
            if part == "COCO-negated":
                caps = [c.replace("a sofa", "a sofa with no cat") for c in caps]
                caps[0] = f"there's no cat, only a dog {i}"
            rows.append({"filepath": f"/data/coco/val2017/{i:012d}.jpg", "captions": repr(caps)})
            n_caps += len(caps)
        _write_csv(d / "data" / "images" / name, rows)
        exp.update({f"negbench_retrieval::{part}::i2t/R@{k}": n for k in (1, 5)})
        exp.update({f"negbench_retrieval::{part}::t2i/R@{k}": n_caps for k in (1, 5)})
    return exp


COLA_SINGLE_PARTS = ("GQA", "CLEVR", "PACO")


def write_cola_single(root: Path, img: _Images, scale: int = 1) -> Expected:
    """arijitray1993/COLA ``data/COLA_singleobjects_benchmark_{GQA,CLEVR,PACO}.json``: class names and
    ``[image_file, objects_attributes_annotation, label, hard_list]`` rows. GQA as the README describes it
    (``{"labels", "data"}``, Visual Genome URLs), CLEVR as ``eval.py`` indexes it (``[labels, data]``, paths relative
    to ``cola/``), PACO without the annotation (3-entry rows, authors' absolute paths: found in ``images/``). Every
    class has a positive among its hard images, except a class no image has and one without hard images (both
    skipped by ``ColaSingleObjAP``). Returns the number of classes averaged per part."""
    d = root / "cola"
    exp = {}
    for p, part in enumerate(COLA_SINGLE_PARTS):
        names = [f"{c} {a} {o}" for c, a, o in zip(("white", "red", "blue", "green", "round", "tall"),
                                                   ("square", "small", "shiny", "wooden", "large", "metal"),
                                                   ("plate", "cube", "cup", "table", "sphere", "lamp"))]  # fmt: skip
        names = [f"{n} {part.lower()}" for n in names[: 4 + p]]
        rows = []
        for i in range(5 * scale + 2 * p):
            stem = f"{part}_{i:05d}"
            if part == "GQA":
                img(d / "images" / f"{2350000 + i}.jpg")
                image = f"https://cs-people.bu.edu/array/data/vg_gqa_images/{2350000 + i}.jpg"
            elif part == "CLEVR":
                img(d / "CLEVR_v1.0" / "images" / "val" / f"{stem}.png")
                image = f"CLEVR_v1.0/images/val/{stem}.png"
            else:
                img(d / "images" / f"{stem}.jpg")
                image = f"/projectnb/ivc-ml/paco/images/{stem}.jpg"
            label = [int((i + c) % 3 == 0) for c in range(len(names))]
            label[-1] = 0  # the last class: no image has it
            hard = [int((i + 2 * c) % 4 != 1) for c in range(len(names))]
            hard[-2] = 0  # the second last: no hard image
            annotation = {"objects": {"plate": ["white", "square"]}}
            rows.append([image, label, hard] if part == "PACO" else [image, annotation, label, hard])
        data = [names, rows] if part == "CLEVR" else {"labels": names, "data": rows}
        _dump(d / "data" / f"COLA_singleobjects_benchmark_{part}.json", data)
        exp[f"cola_single::{part}::mAP"] = len(names) - 2
    return exp


VISMIN_CATEGORIES = ("object", "attribute", "counting", "relation")


def write_vismin(root: Path, img: _Images, scale: int = 1) -> Expected:
    """HF mair-lab/vismin-bench ``data/``: a ``datasets.save_to_disk`` folder, ``dataset_dict.json`` and
    ``test/data-0000k-of-00003.arrow`` (Arrow IPC streams) with ``state.json``; columns id, image_0, text_0, image_1,
    text_1, text_question_0/1, image_question_0/1, category, the images as HF ``Image`` structs ``{bytes, path}``
    (JPEG). Ids count within each category, as in the release. Needs pyarrow."""
    import io

    import pyarrow as pa

    d = root / "vismin" / "data"
    (d / "test").mkdir(parents=True, exist_ok=True)
    (d / "dataset_dict.json").write_text(json.dumps({"splits": ["test"]}))
    scratch = root / "_vismin_src"
    exp: Expected = {}
    ids: dict[str, int] = {}
    files = []
    for shard in range(3):
        rows = []
        for j in range(3 * scale + shard):
            category = VISMIN_CATEGORIES[(j + shard) % 4]
            n = ids[category] = ids.get(category, -1) + 1
            enc = []
            for k in (0, 1):
                buf = io.BytesIO()
                with Image.open(img(scratch / f"{shard}_{j}_{k}.png")) as im:
                    im.save(buf, format="JPEG")
                enc.append({"bytes": buf.getvalue(), "path": None})
            texts = (f"two {category} dogs {shard}-{j}", f"three {category} dogs {shard}-{j}")
            rows.append(
                {
                    "id": n,
                    "image_0": enc[0],
                    "text_0": texts[0],
                    "image_1": enc[1],
                    "text_1": texts[1],
                    "text_question_0": f"Does this image best match: {texts[0]}?",
                    "text_question_1": f"Does this image best match: {texts[1]}?",
                    "image_question_0": f"Which image better aligns with: {texts[0]}?",
                    "image_question_1": f"Which image better aligns with: {texts[1]}?",
                    "category": category,
                }
            )
            for m in ("text", "image", "group"):
                exp[f"vismin::{category}::{m}"] = exp.get(f"vismin::{category}::{m}", 0) + 1
        table = pa.Table.from_pylist(rows)
        name = f"data-{shard:05d}-of-00003.arrow"
        with pa.OSFile(str(d / "test" / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        files.append({"filename": name})
    (d / "test" / "state.json").write_text(json.dumps({"_data_files": files, "_split": None}))
    return exp


WRITERS_2025.update({
    "negbench_syn": write_negbench_syn,
    "negbench_chexpert": write_negbench_chexpert,
    "negbench_retrieval": write_negbench_retrieval,
    "cola_single": write_cola_single,
    "vismin": write_vismin,
})  # fmt: skip
