"""MMVP-VLM (tsb0601/MMVP, HF MMVP/MMVP_VLM): 135 pairs of images + statements in 9 visual patterns.

Layout under ``<data_root>/mmvp_vlm/``: ``Questions.csv`` (``Question ID, Type, Statement``) and
``MLLM_VLM Images/<Type>/<Question ID>.jpg`` (``MMVP_VLM_Images/`` is accepted too). Consecutive rows form a
pair; the pair's category is ``CATEGORIES[pair_index // 15]``; statements get the official ``"a photo of "``
prefix. Text / image / group per category; the benchmark column is the mean of the 9 group scores.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import find_image

CATEGORIES = (
    "Orientation and Direction",
    "Presence of Specific Features",
    "State and Condition",
    "Quantity and Count",
    "Positional and Relational Context",
    "Color and Appearance",
    "Structural Characteristics",
    "Texts",
    "Viewpoint and Perspective",
)
IMAGE_DIRS = ("MLLM_VLM Images", "MMVP_VLM_Images")


@BENCHMARKS.register("mmvp_vlm")
class MMVPVLM(Benchmark):
    name = "mmvp_vlm"
    task = GROUP
    description = "MMVP-VLM: 9 visual patterns x 15 pairs of images/statements (group score per pattern)"
    expected_files = ("Questions.csv",)
    obtain = "Download the HF dataset MMVP/MMVP_VLM (Questions.csv and the 'MLLM_VLM Images' folder)."
    sub_scores = tuple(f"{c}::{m}" for c in CATEGORIES for m in ("text", "image", "group"))

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), root / IMAGE_DIRS[0])
        self.require(image_dir)
        with (root / "Questions.csv").open(newline="", encoding="utf-8-sig") as f:
            rows = [r for r in csv.reader(f)][1:]
        items = []
        for pair in range(len(rows) // 2):
            (qid1, qtype, s1), (qid2, _, s2) = rows[2 * pair][:3], rows[2 * pair + 1][:3]
            refs = []
            for qid in (qid1, qid2):  # both images live in the first row's Type folder (official script)
                path = find_image(image_dir / qtype, str(int(qid)))
                refs.append(ImageRef(self.require(path or image_dir / qtype / f"{int(qid)}.jpg")))
            category = CATEGORIES[min(pair // 15, len(CATEGORIES) - 1)]
            items.append(GroupItem((refs[0], refs[1]), (f"a photo of {s1}", f"a photo of {s2}"), category))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return mean(scores[f"{cls.name}::{c}::group"] for c in CATEGORIES)
