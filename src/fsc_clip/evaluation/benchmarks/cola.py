"""COLA multi-object setting (arijitray1993/COLA): 2 Visual Genome images x 2 captions with swapped attributes.

Source: github.com/arijitray1993/COLA @ 1fa52fba9cff4e6ffb7bfcf3550838748347273b
(``data/COLA_multiobjects_matching_benchmark.json``: a list of 210 ``[image_1_url, caption_1, image_2_url,
caption_2]``, caption k belongs to image k; ``scripts/eval.py``, ``ColaMultiObjAcc``). The image URLs end in
``<visual genome id>.jpg`` (``https://cs-people.bu.edu/array/data/vg_gqa_images/2414605.jpg``).

Layout under ``<data_root>/cola/``: ``data/COLA_multiobjects_matching_benchmark.json`` and ``images/<vg id>.jpg`` (the
files the URLs name, saved under their own names).

Score: ``ColaMultiObjAcc`` is *text-to-image* matching: an item is right iff ``s(c0, i0) > s(c0, i1)`` and
``s(c1, i1) > s(c1, i0)`` (strict; a tie is never a success), which is the Winoground *image* score of the 2x2 item.
The benchmark column is that accuracy (``image``); the Winoground ``text`` and ``group`` scores of the same items are
reported beside it. The single-object setting (mAP over 320 classes on GQA / CLEVR / PACO) is not implemented.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, read_json

FILE = "data/COLA_multiobjects_matching_benchmark.json"
N_ITEMS = 210  # the released file


@BENCHMARKS.register("cola")
class Cola(Benchmark):
    name = "cola"
    task = GROUP
    description = "COLA multi-object: 210 items, 2 images x 2 captions; column = text-to-image (image) accuracy"
    expected_files = (FILE, "images/")
    obtain = (
        "Get data/COLA_multiobjects_matching_benchmark.json from github.com/arijitray1993/COLA and download the "
        "images its URLs name into images/ (keeping the file names, e.g. images/2414605.jpg)."
    )
    kind = "compositional_2025"
    sub_scores = ("text", "image", "group")
    required_sub_scores = ("image",)

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        image_dir = root / "images"
        path = root / FILE
        refs: dict[str, ImageRef] = {}
        items = []
        for i, rec in enumerate(read_json(path, self.name)):
            if not (isinstance(rec, list) and len(rec) == 4 and all(isinstance(v, str) for v in rec)):
                raise SchemaError(
                    f"{self.name}: {path}: record {i} is not [image_1_url, caption_1, image_2_url, caption_2] "
                    f"(got {str(rec)[:120]!r}). Re-download the file from github.com/arijitray1993/COLA."
                )
            pair = []
            for url in (rec[0], rec[2]):
                name = Path(urlparse(url).path).name
                if not name:
                    raise SchemaError(f"{self.name}: {path}: record {i}: image URL {url!r} names no file.")
                pair.append(refs.setdefault(name, ImageRef(image_dir / name)))
            items.append(GroupItem((pair[0], pair[1]), (rec[1], rec[3])))
        if len(items) != N_ITEMS:  # recorded in the result: not the released file
            self._extra = {"n_items_published": N_ITEMS}
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::image"]
