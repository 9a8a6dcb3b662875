"""ImageCoDe (McGill-NLP/imagecode), validation split: one description vs the 10 images of its set.

Layout under ``<data_root>/imagecode/``: ``data/valid_data.json`` (``set_dir -> {img_idx: description}``) and
``image-sets/<set_dir>/img<k>.jpg`` (from ``image-sets.zip``), 10 per set, ordered by int(k); the target
``img_idx`` is the position in that order (as in the official zero-shot script).
Sub-scores ``videos`` (video sets) and ``static`` (``open-images-*`` sets); the benchmark column pools them
over the published sizes (1872 + 430).
"""

from __future__ import annotations

import re
from pathlib import Path

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import pooled
from fsc_clip.evaluation.base import TEXT_TO_IMAGE, Benchmark, ImageRef, TextToImageItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import read_json

SIZES = {"videos": 1872, "static": 430}
_IMG = re.compile(r"^img(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


@BENCHMARKS.register("imagecode")
class ImageCoDe(Benchmark):
    name = "imagecode"
    task = TEXT_TO_IMAGE
    description = "ImageCoDe (valid): a description vs the 10 near-identical images of its set (video / static)"
    expected_files = ("data/valid_data.json", "image-sets/")
    obtain = "Get data/valid_data.json from github.com/McGill-NLP/imagecode and image-sets.zip (Zenodo 6518944)."
    sub_scores = ("videos", "static")

    def load(self, data_root: str | Path) -> list[TextToImageItem]:
        root = self.check(data_root)
        items = []
        for set_dir, descriptions in read_json(root / "data" / "valid_data.json", self.name).items():
            folder = self.require(root / "image-sets" / set_dir)
            frames = sorted(
                ((int(m.group(1)), p) for p in folder.iterdir() if (m := _IMG.match(p.name))), key=lambda kp: kp[0]
            )
            if len(frames) != 10:
                raise DataNotFoundError(
                    f"{self.name}: expected 10 images img<k>.jpg in {folder}, found {len(frames)}. {self.obtain}"
                )
            refs = [ImageRef(p) for _, p in frames]
            subset = "static" if set_dir.startswith("open-images") else "videos"
            for img_idx, text in descriptions.items():
                label = int(img_idx)  # position in the sorted set, as in the official zero-shot script
                if not 0 <= label < len(refs):
                    self.require(folder / f"img{img_idx}.jpg")
                items.append(TextToImageItem(text, refs, label, subset))
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return pooled({k: scores[f"{cls.name}::{k}"] for k in SIZES}, SIZES)
