"""VALSE (Heidelberg-NLP/VALSE): caption vs foil on 11 pieces, annotator-validated samples only.

Layout under ``<data_root>/valse/``: ``data/<piece>.json`` (dict ``id -> {dataset, image_file, caption, foil,
mturk: {caption, foil, other}, ...}``) and the source images in ``images/<dataset>/<image_file>`` (falling back
to ``images/<image_file>``), where ``<dataset>`` is the record's ``dataset`` field (e.g. ``visual7w``).
Only samples with ``mturk.caption >= 2`` are used (records without ``mturk`` are kept: UNVERIFIED).
The benchmark column is the mean of 7 pieces (counting, action and coreference averaged first; §0).
"""

from __future__ import annotations

from pathlib import Path

from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import read_json, records

PIECES = (
    "existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial", "relations",
    "action-replacement", "actant-swap", "coreference-standard", "coreference-hard", "foil-it",
)  # fmt: skip
GROUPS = (
    ("existence",),
    ("plurals",),
    ("counting-hard", "counting-small-quant", "counting-adversarial"),
    ("relations",),
    ("action-replacement", "actant-swap"),
    ("coreference-standard", "coreference-hard"),
    ("foil-it",),
)


def validated(rec: dict, threshold: int = 2) -> bool:
    """VALSE's validity filter: at least ``threshold`` of 3 annotators chose the caption."""
    mturk = rec.get("mturk")
    if not isinstance(mturk, dict) or "caption" not in mturk:
        return True
    return int(mturk["caption"]) >= threshold


@BENCHMARKS.register("valse")
class VALSE(Benchmark):
    name = "valse"
    task = IMAGE_TO_TEXT
    description = "VALSE: caption vs foil on 11 linguistic pieces (validated samples; 7-piece mean)"
    expected_files = (*(f"data/{p}.json" for p in PIECES), "images/")
    obtain = "Get data/*.json from github.com/Heidelberg-NLP/VALSE and the source images into valse/images/<dataset>/."
    sub_scores = PIECES

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        image_dir = root / "images"
        items = []
        for piece in PIECES:
            for rec in records(read_json(root / "data" / f"{piece}.json", self.name)):
                if not validated(rec):
                    continue
                cands = (image_dir / str(rec.get("dataset", "")) / rec["image_file"], image_dir / rec["image_file"])
                path = next((p for p in cands if p.is_file()), cands[0])
                items.append(ImageToTextItem(ImageRef(self.require(path)), [rec["caption"], rec["foil"]], 0, piece))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return mean(mean(scores[f"{cls.name}::{p}"] for p in group) for group in GROUPS)
