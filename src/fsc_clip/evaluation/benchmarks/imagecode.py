"""ImageCoDe (McGill-NLP/imagecode), validation split: one description vs the 10 images of its set.

Source: github.com/McGill-NLP/imagecode @ 609f07611aed2599f946c30d730f40a41af1079b (README, ``baselines/clip/
zero_shot.py``).

Layout under ``<data_root>/imagecode/``: ``data/valid_data.json`` (``set_dir -> {img_idx: description}``) and the
image sets ``<set_dir>/img<k>.jpg`` from ``image-sets.zip``, 10 per set, ordered by int(k); the target ``img_idx``
is the position in that order and the description is stripped (as in the official zero-shot script). The sets are
looked for, in this order, in ``image-sets/``, ``data/image-sets/`` and ``data/`` (the official README unzips
``image-sets.zip`` into ``data/``). Sub-scores ``videos`` and ``static`` (sets whose name contains
``open-images``); the benchmark column pools them over the published sizes (1872 + 430).
"""

from __future__ import annotations

import re
from pathlib import Path

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import pooled
from fsc_clip.evaluation.base import TEXT_TO_IMAGE, Benchmark, ImageRef, TextToImageItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, read_json

SIZES = {"videos": 1872, "static": 430}
_IMG = re.compile(r"^img(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
IMAGE_ROOTS = ("image-sets", "data/image-sets", "data")  # where the unzipped sets may be, first found wins


@BENCHMARKS.register("imagecode")
class ImageCoDe(Benchmark):
    name = "imagecode"
    task = TEXT_TO_IMAGE
    description = "ImageCoDe (valid): a description vs the 10 near-identical images of its set (video / static)"
    expected_files = ("data/valid_data.json",)
    obtain = (
        "Get data/valid_data.json from github.com/McGill-NLP/imagecode and unzip image-sets.zip (Zenodo 6518944) "
        "so that the set folders are in imagecode/image-sets/ or imagecode/data/ (the official README's layout)."
    )
    sub_scores = ("videos", "static")

    def load(self, data_root: str | Path) -> list[TextToImageItem]:
        root = self.check(data_root)
        path = root / "data" / "valid_data.json"
        data = read_json(path, self.name)
        if not isinstance(data, dict):
            raise SchemaError(f"{self.name}: {path}: expected an object set_dir -> {{img_idx: description}}.")
        image_root = self._image_root(root, list(data))
        items = []
        for set_dir, descriptions in data.items():
            if not isinstance(descriptions, dict):
                raise SchemaError(f"{self.name}: {path}: record {set_dir!r} is not an object img_idx -> description.")
            refs = self._set_images(image_root / set_dir)
            subset = "static" if "open-images" in set_dir else "videos"
            for img_idx, text in descriptions.items():
                try:
                    label = int(img_idx)  # position in the sorted set, as in the official zero-shot script
                except ValueError as err:
                    raise SchemaError(
                        f"{self.name}: {path}: record {set_dir!r}: key {img_idx!r} is not an image index."
                    ) from err
                if not 0 <= label < len(refs):
                    self.require(image_root / set_dir / f"img{img_idx}.jpg")
                items.append(TextToImageItem(str(text).strip(), refs, label, subset))
        return items

    def _image_root(self, root: Path, set_dirs: list[str]) -> Path:
        """The first of :data:`IMAGE_ROOTS` that holds the first set folder."""
        probe = set_dirs[0] if set_dirs else ""
        for rel in IMAGE_ROOTS:
            if probe and (root / rel / probe).is_dir():
                return root / rel
        searched = ", ".join(f"{root / rel}/" for rel in IMAGE_ROOTS)
        raise DataNotFoundError(
            f"{self.name}: image set folder {probe!r} not found in any of {searched}. Unzip image-sets.zip so that "
            f"its set folders (e.g. {probe}/img0.jpg) are directly inside {root / 'image-sets'}/ or {root / 'data'}/."
        )

    def _set_images(self, folder: Path) -> list[ImageRef]:
        folder = self.require(folder)
        frames = sorted(
            ((int(m.group(1)), p) for p in folder.iterdir() if (m := _IMG.match(p.name))), key=lambda kp: kp[0]
        )
        if len(frames) != 10:
            raise DataNotFoundError(
                f"{self.name}: expected 10 images img<k>.jpg in {folder}, found {len(frames)}. {self.obtain}"
            )
        return [ImageRef(p) for _, p in frames]

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return pooled({k: scores[f"{cls.name}::{k}"] for k in SIZES}, SIZES)
