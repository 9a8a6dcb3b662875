"""SugarCrepe (RAIVNLab/sugar-crepe): 7 subsets of COCO val2017 images with one hard-negative caption each.

Source: github.com/RAIVNLab/sugar-crepe @ 0047054b243992f0fad63d6f64f7544862daf846 (``data/*.json``,
``main_eval.py``: ``1 if pos_score > neg_score else 0``); the released files hold exactly the sizes below.

Layout under ``<data_root>/sugarcrepe/``: ``data/<subset>.json`` (dict ``idx -> {filename, caption,
negative_caption}``) and ``val2017/<filename>`` (COCO 2017 validation images).
Score: correct iff s(caption) > s(negative) strictly; benchmark column = mean of the REPLACE / SWAP / ADD
category accuracies, each pooled over its examples (published sizes; checked against vl_compo individual_results.csv).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from fsc_clip.evaluation.aggregate import mean, pooled
from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import field, read_json, records

SUBSETS = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att")
# Published subset sizes (also the pooling weights of the benchmark column).
SIZES = {"replace_obj": 1652, "replace_att": 788, "replace_rel": 1406, "swap_obj": 245, "swap_att": 666,
         "add_obj": 2062, "add_att": 692}  # fmt: skip
CATEGORIES = {"replace": SUBSETS[:3], "swap": SUBSETS[3:5], "add": SUBSETS[5:]}


@BENCHMARKS.register("sugarcrepe")
class SugarCrepe(Benchmark):
    name = "sugarcrepe"
    task = IMAGE_TO_TEXT
    description = "SugarCrepe: image vs caption / hard negative (replace, swap, add x obj, att, rel)"
    expected_files: ClassVar[tuple[str, ...]] = (*(f"data/{s}.json" for s in SUBSETS), "val2017/")
    obtain = (
        "Get data/*.json from github.com/RAIVNLab/sugar-crepe and COCO val2017 images (cocodataset.org) into val2017/."
    )
    sub_scores = SUBSETS

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        image_dir = Path(self.options.get("image_dir", root / "val2017"))
        items = []
        for subset in SUBSETS:
            path = root / "data" / f"{subset}.json"
            for i, rec in enumerate(records(read_json(path, self.name))):
                key = rec.get("_id", i)
                ref = ImageRef(image_dir / field(rec, "filename", path, key, self.name))
                texts = [field(rec, k, path, key, self.name) for k in ("caption", "negative_caption")]
                items.append(ImageToTextItem(ref, texts, 0, subset))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        cats = []
        for subs in CATEGORIES.values():
            cats.append(pooled({s: scores[f"{cls.name}::{s}"] for s in subs}, {s: SIZES[s] for s in subs}))
        return mean(cats)
