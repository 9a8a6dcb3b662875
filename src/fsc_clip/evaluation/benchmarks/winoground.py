"""Winoground (HF facebook/winoground) and ColorSwap (Top34051/colorswap): 2 images x 2 captions.

Winoground layout under ``<data_root>/winoground/``: ``data/examples.jsonl`` and ``data/images/<image_id>.png``.
ColorSwap layout under ``<data_root>/colorswap/``: ``data/test.json`` (records with ``caption_1, caption_2,
image_1, image_2``; the image paths, e.g. ``images/img_0_1.png``, are relative to ``colorswap/`` or
``colorswap/data/``). Text / image / group scores with strict ``>``; the benchmark column is the group score.
"""

from __future__ import annotations

from pathlib import Path

from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import find_image, read_json, records


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
        items = []
        for rec in records(read_json(root / "data" / "examples.jsonl", self.name)):
            paths = []
            for key in ("image_0", "image_1"):
                path = find_image(image_dir, str(rec[key]))
                paths.append(ImageRef(self.require(path or image_dir / f"{rec[key]}.png")))
            items.append(GroupItem((paths[0], paths[1]), (rec["caption_0"], rec["caption_1"])))
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
    obtain = "Download the gated HF dataset stanfordnlp/colorswap (data/test.json and data/images.zip -> images/)."
    sub_scores = ("text", "image", "group")

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        items = []
        for rec in records(read_json(root / "data" / "test.json", self.name)):
            refs = []
            for key in ("image_1", "image_2"):
                rel = rec[key]
                path = next((p for p in (root / rel, root / "data" / rel) if p.is_file()), root / rel)
                refs.append(ImageRef(self.require(path)))
            items.append(GroupItem((refs[0], refs[1]), (rec["caption_1"], rec["caption_2"])))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::group"]
