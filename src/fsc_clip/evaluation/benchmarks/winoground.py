"""Winoground (HF facebook/winoground) and ColorSwap (Top34051/colorswap): 2 images x 2 captions.

Winoground layout under ``<data_root>/winoground/``: ``data/examples.jsonl`` and ``data/images/<image_id>.png`` (the
gated HF dataset facebook/winoground releases ``data/examples.jsonl`` + ``data/images.zip``; not readable here, the
fields follow third-party loaders that read the released file).
ColorSwap layout under ``<data_root>/colorswap/``: ``data/test.json`` (records with ``caption_1, caption_2,
image_1, image_2``; the image paths, e.g. ``images/img_0_1.png``, are relative to ``colorswap/`` or
``colorswap/data/``). Text / image / group scores with strict ``>``; the benchmark column is the group score.
"""

from __future__ import annotations

from pathlib import Path

from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import field, find_image, read_json, records


@BENCHMARKS.register("winoground")
class Winoground(Benchmark):
    name = "winoground"
    task = GROUP
    description = "Winoground: 400 items, 2 images x 2 captions (text / image / group)"
    expected_files = ("data/examples.jsonl", "data/images/")
    obtain = "Download the gated HF dataset facebook/winoground (data/examples.jsonl and data/images/)."
    sub_scores = ("text", "image", "group")

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        image_dir = root / "data" / "images"
        file = root / "data" / "examples.jsonl"
        items = []
        for i, rec in enumerate(records(read_json(file, self.name))):
            rid = rec.get("id", i) if isinstance(rec, dict) else i
            paths = []
            for key in ("image_0", "image_1"):
                stem = str(field(rec, key, file, rid, self.name))
                paths.append(ImageRef(self.require(find_image(image_dir, stem) or image_dir / f"{stem}.png")))
            texts = (field(rec, "caption_0", file, rid, self.name), field(rec, "caption_1", file, rid, self.name))
            items.append(GroupItem((paths[0], paths[1]), texts))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::group"]


@BENCHMARKS.register("colorswap")
class ColorSwap(Benchmark):
    name = "colorswap"
    task = GROUP
    description = "ColorSwap (test split, 300 items): 2 images x 2 captions with swapped colours"
    expected_files = ("data/test.json",)
    # Layout as the official README (Top34051/colorswap @ 4f2c9e4) shows it: data/{train,test}.json with records
    # {id, caption_1, caption_2, image_1: "images/img_0_1.png", image_2, ...}, images from data/images.zip.
    obtain = (
        "Download ColorSwap as its README says (Google Drive file, or the gated HF dataset stanfordnlp/colorswap) and "
        "extract it to colorswap/data/ (data/test.json, and data/images.zip unzipped so that data/images/ exists)."
    )
    sub_scores = ("text", "image", "group")

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        items = []
        file = root / "data" / "test.json"
        for index, rec in enumerate(records(read_json(file, self.name))):
            rid = rec.get("id", index) if isinstance(rec, dict) else index
            refs = []
            for key in ("image_1", "image_2"):
                rel = str(field(rec, key, file, rid, self.name))
                path = next((p for p in (root / rel, root / "data" / rel) if p.is_file()), root / rel)
                refs.append(ImageRef(self.require(path)))
            texts = (field(rec, "caption_1", file, rid, self.name), field(rec, "caption_2", file, rid, self.name))
            items.append(GroupItem((refs[0], refs[1]), texts))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::group"]
