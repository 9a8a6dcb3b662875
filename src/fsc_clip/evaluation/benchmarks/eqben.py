"""EqBen (Wangt-CN/EqBen): 2 images x 2 captions with "visual-minimal" changes, 7 subsets.

Layout under ``<data_root>/eqben/`` (UNVERIFIED file names; formats are those of the official subset loaders):

- ``ann_json/eqben<subset>.json`` for subset in ag, youcook2, gebc, kubric_loc, kubric_cnt, kubric_attr, sd:
  ag = ``{video: {subject: [{image0, caption0: [..], image1, caption1: [..]}]}}`` (first caption used);
  youcook2 / gebc = ``{video: [{image0, caption0, image1, caption1}]}``; kubric_* / sd = a list of such records.
- ``image/<image path as in the records>``; YouCook2 frames are ``.npy`` BGR arrays.

Sub-scores ``eqben<subset>::text|image|group``; the benchmark column is the mean over youcook2, gebc, ag, sd and
kubric (= mean of the 3 kubric subsets) of the **group** score (BENCHMARKS.md §0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import read_json

SUBSETS = ("youcook2", "gebc", "ag", "kubric_loc", "kubric_cnt", "kubric_attr", "sd")


def _first(caption: Any) -> str:
    return caption[0] if isinstance(caption, list) else caption


def _pair_records(subset: str, data: Any) -> list[dict]:
    """Flatten the subset's native nesting into a list of {image0, caption0, image1, caption1}."""
    if subset == "ag":
        return [r for subjects in data.values() for recs in subjects.values() for r in recs]
    if subset in ("youcook2", "gebc"):
        return [r for recs in data.values() for r in recs]
    return list(data)


@BENCHMARKS.register("eqben")
class EqBen(Benchmark):
    """Options: ``subsets`` (default: all 7), ``image_dir`` (default ``eqben/image``)."""

    name = "eqben"
    task = GROUP
    description = "EqBen: 2 images x 2 captions with minimal visual change (7 subsets; group score)"
    expected_files = (*(f"ann_json/eqben{s}.json" for s in SUBSETS), "image/")
    obtain = "Request/download the EqBen test set (github.com/Wangt-CN/EqBen) into eqben/ann_json/ and eqben/image/."
    sub_scores = tuple(f"eqben{s}::{m}" for s in SUBSETS for m in ("text", "image", "group"))

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        image_dir = Path(self.options.get("image_dir", root / "image"))
        items = []
        for subset in self.options.get("subsets", SUBSETS):
            data = read_json(root / "ann_json" / f"eqben{subset}.json", self.name)
            for rec in _pair_records(subset, data):
                npy = subset == "youcook2"
                refs = tuple(ImageRef(self.require(image_dir / rec[k]), bgr=npy) for k in ("image0", "image1"))
                texts = (_first(rec["caption0"]), _first(rec["caption1"]))
                items.append(GroupItem(refs, texts, f"eqben{subset}"))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        g = lambda s: scores[f"{cls.name}::eqben{s}::group"]  # noqa: E731
        kubric = mean(g(s) for s in ("kubric_loc", "kubric_cnt", "kubric_attr"))
        return mean([g("youcook2"), g("gebc"), g("ag"), g("sd"), kubric])
