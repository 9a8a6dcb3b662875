"""CREPE productivity (RAIVNLab/CREPE): atom / swap / negate hard negatives over Visual Genome region crops.

Layout under ``<data_root>/crepe/``: ``prod_hard_negatives/{atom,swap,negate}/prod_vg_hard_negs_<type>_complexity_
<4..12>.csv`` (from ``data/prod_hard_negatives.zip``; if a folder only has ``..._<type>_all.csv`` that file is
used) with columns ``image_id, x, y, width, height, caption, hard_negs`` (a stringified list); images in
``VG_100K/<image_id>.jpg`` or ``VG_100K_2/<image_id>.jpg`` (option ``vg_root``).
Protocol: the region crop vs ``[caption, *hard_negs]``; R@1 of the caption, pooled over complexities 4-12.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path

from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import find_image

TYPES = ("atom", "swap", "negate")
COMPLEXITIES = range(4, 13)


@BENCHMARKS.register("crepe")
class Crepe(Benchmark):
    name = "crepe"
    task = IMAGE_TO_TEXT
    description = "CREPE productivity: VG region crop vs caption + atom / swap / negate hard negatives (R@1)"
    expected_files = tuple(f"prod_hard_negatives/{t}/" for t in TYPES)
    obtain = (
        "Unzip data/prod_hard_negatives.zip from github.com/RAIVNLab/CREPE into crepe/ and put Visual Genome "
        "images in crepe/VG_100K/ and crepe/VG_100K_2/."
    )
    sub_scores = TYPES

    def files(self, root: Path, kind: str) -> list[Path]:
        folder = root / "prod_hard_negatives" / kind
        per = [folder / f"prod_vg_hard_negs_{kind}_complexity_{c}.csv" for c in COMPLEXITIES]
        per = [p for p in per if p.is_file()]
        if per:
            return per
        return [self.require(folder / f"prod_vg_hard_negs_{kind}_all.csv")]

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        vg_root = Path(self.options.get("vg_root", root))
        items = []
        cache: dict[str, Path] = {}
        for kind in TYPES:
            for path in self.files(root, kind):
                with path.open(newline="", encoding="utf-8") as f:
                    for row in csv.DictReader(f):
                        image_id = str(row["image_id"]).strip()
                        if image_id not in cache:
                            found = find_image(vg_root / "VG_100K", image_id) or find_image(
                                vg_root / "VG_100K_2", image_id
                            )
                            cache[image_id] = self.require(found or vg_root / "VG_100K" / f"{image_id}.jpg")
                        bbox = tuple(float(row[k]) for k in ("x", "y", "width", "height"))
                        negs = [str(n) for n in ast.literal_eval(row["hard_negs"])]
                        items.append(
                            ImageToTextItem(ImageRef(cache[image_id], bbox=bbox), [row["caption"], *negs], 0, kind)
                        )
        return items
