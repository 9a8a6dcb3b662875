"""MMVP-VLM (tsb0601/MMVP, HF MMVP/MMVP_VLM): 135 pairs of images + statements in 9 visual patterns.

Layout under ``<data_root>/mmvp_vlm/``: ``Questions.csv`` (``Question ID, Type, Statement``) and
``MLLM_VLM Images/<Type>/<Question ID>.jpg`` (``MMVP_VLM_Images/`` is accepted too). Consecutive rows form a
pair; the pair's category is ``CATEGORIES[pair_index // 15]``; statements get the official ``"a photo of "``
prefix. Text / image / group per category; the benchmark column is the mean of the 9 group scores.

Source: github.com/tsb0601/MMVP at commit 763500597e65c3446f09047837ceda76f4e264bf (``scripts/evaluate_vlm.py``):
both images of a pair are read from the first row's ``Type`` folder; a statement's own image is the pair's first
image iff its Question ID is odd (``gt = "img1" if qid % 2 == 1``), which fixes which caption goes with which
image here. The official "pair accuracy" (both statements pick their image) is our *image* score; vl_compo's
column uses *group*. A row with fewer than 3 columns or a non-integer ID raises a SchemaError naming the line.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, find_image

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


def _row(row: list[str], path: Path, line: int) -> tuple[int, str, str]:
    """``(question id, type folder, statement)`` of one CSV row, or a SchemaError naming the line."""
    if len(row) < 3:
        raise SchemaError(f"mmvp_vlm: {path}: line {line} has {len(row)} column(s); expected Question ID, Type, "
                          "Statement. Re-download Questions.csv from the HF dataset MMVP/MMVP_VLM.")  # fmt: skip
    try:
        return int(row[0]), row[1], row[2]
    except ValueError as err:
        raise SchemaError(f"mmvp_vlm: {path}: line {line}: Question ID {row[0]!r} is not an integer.") from err


@BENCHMARKS.register("mmvp_vlm")
class MMVPVLM(Benchmark):
    name = "mmvp_vlm"
    task = GROUP
    description = "MMVP-VLM: 9 visual patterns x 15 pairs of images/statements (group score per pattern)"
    expected_files = ("Questions.csv",)
    obtain = "Download the HF dataset MMVP/MMVP_VLM (Questions.csv and the 'MLLM_VLM Images' folder)."
    sub_scores = tuple(f"{c}::{m}" for c in CATEGORIES for m in ("text", "image", "group"))

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), root / IMAGE_DIRS[0])
        self.require(image_dir)
        path = root / "Questions.csv"
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = [_row(r, path, n) for n, r in enumerate(csv.reader(f), start=1) if n > 1]
        items: list[Item] = []
        for pair in range(len(rows) // 2):
            (qid1, qtype, s1), (qid2, _, s2) = rows[2 * pair], rows[2 * pair + 1]
            if qid1 % 2 == qid2 % 2:
                raise SchemaError(
                    f"mmvp_vlm: {path}: pair {pair} has IDs {qid1} and {qid2}; the official script expects one odd "
                    "(first image) and one even (second image) Question ID per pair."
                )
            refs = []
            for qid in (qid1, qid2):  # both images live in the first row's Type folder (official script)
                found = find_image(image_dir / qtype, str(qid))
                refs.append(ImageRef(self.require(found or image_dir / qtype / f"{qid}.jpg")))
            texts = (f"a photo of {s1}", f"a photo of {s2}")
            if qid1 % 2 == 0:  # statement 1 belongs to the pair's second image (official gt by ID parity)
                texts = texts[::-1]
            category = CATEGORIES[min(pair // 15, len(CATEGORIES) - 1)]
            items.append(GroupItem((refs[0], refs[1]), texts, category))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        return mean(scores.get(f"{cls.name}::{c}::group") for c in CATEGORIES)
