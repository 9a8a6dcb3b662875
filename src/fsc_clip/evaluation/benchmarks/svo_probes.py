"""SVO-Probes (deepmind/svo_probes): a sentence vs a positive and a negative image (subject / verb / object).

Layout under ``<data_root>/svo_probes/``: ``svo_probes.csv`` (columns ``sentence, pos_image_id, neg_image_id,
subj_neg, verb_neg, obj_neg, ...``) and the downloaded images ``images/<image_id>.<jpg|jpeg|png>`` (the
dataset ships only URLs; fetch them yourself, many are dead). Rows whose images are missing are skipped and
counted in the result (``extra.skipped_missing_images``), as the published numbers also use the downloadable
subset. Correct iff s(sentence, pos) > s(sentence, neg) (UNVERIFIED rule for CLIP, BENCHMARKS.md §1.8).
"""

from __future__ import annotations

import csv
from pathlib import Path

from fsc_clip.evaluation.base import TEXT_TO_IMAGE, Benchmark, ImageRef, TextToImageItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import find_image

TYPES = ("subj_neg", "verb_neg", "obj_neg")


def _true(value: str) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


@BENCHMARKS.register("svo_probes")
class SVOProbes(Benchmark):
    name = "svo_probes"
    task = TEXT_TO_IMAGE
    description = "SVO-Probes: sentence vs positive / negative image differing in subject, verb or object"
    expected_files = ("svo_probes.csv", "images/")
    obtain = "Get svo_probes.csv from github.com/deepmind/svo_probes and download its image URLs into images/<id>.jpg."
    sub_scores = TYPES

    def load(self, data_root: str | Path) -> list[TextToImageItem]:
        root = self.check(data_root)
        image_dir = root / "images"
        found: dict[str, Path | None] = {}
        items, skipped = [], 0
        with (root / "svo_probes.csv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                kinds = [t for t in TYPES if _true(row.get(t, ""))]
                if len(kinds) != 1:
                    continue
                paths = []
                for key in ("pos_image_id", "neg_image_id"):
                    image_id = str(row[key]).strip()
                    if image_id not in found:
                        found[image_id] = find_image(image_dir, image_id)
                    paths.append(found[image_id])
                if None in paths:
                    skipped += 1
                    continue
                items.append(TextToImageItem(row["sentence"], [ImageRef(p) for p in paths], 0, kinds[0]))
        self._extra = {"skipped_missing_images": skipped}
        return items
