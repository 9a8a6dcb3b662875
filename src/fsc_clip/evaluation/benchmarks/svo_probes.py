"""SVO-Probes (deepmind/svo_probes): a sentence vs a positive and a negative image (subject / verb / object).

Layout under ``<data_root>/svo_probes/``: ``svo_probes.csv`` (columns ``sentence, pos_image_id, neg_image_id,
subj_neg, verb_neg, obj_neg, ...``) and the downloaded images ``images/<image_id>.<jpg|jpeg|png>`` (the
dataset ships only URLs; fetch them yourself, many are dead). Rows whose images are missing are skipped and
counted in the result (``extra.skipped_missing_images``), as the published numbers also use the downloadable
subset. Correct iff s(sentence, pos) > s(sentence, neg) (UNVERIFIED rule for CLIP: see "Unverified choices" in
docs/evaluation.md).

Source: github.com/deepmind/svo_probes at commit 206219e2afd9640b8bbe6ef95f49b52b0d4ed350 (README, the notebook
``probing_image_text_models.ipynb``): the columns above; a row's type is the one of ``subj_neg / verb_neg /
obj_neg`` that is True while the other two are False (the notebook's filter), rows with another combination are
dropped; images are identified by ``pos_image_id`` / ``neg_image_id`` and rows whose images were not obtained are
dropped (the notebook drops rows without scores). A type with no row left (e.g. no image of that negative type
downloaded) is reported with count 0 and score None, and the ``svo_probes`` column is then None (warned).
A row lacking a column raises a SchemaError naming the file, the row and the column.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fsc_clip.evaluation.base import TEXT_TO_IMAGE, Benchmark, ImageRef, Item, TextToImageItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import field, find_image

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

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        image_dir = root / "images"
        found: dict[str, Path | None] = {}
        items: list[Item] = []
        skipped = 0
        path = root / "svo_probes.csv"
        with path.open(newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):  # record = line number (line 1 is the header)
                kinds = [t for t in TYPES if _true(field(row, t, path, f"line {n}", self.name))]
                if len(kinds) != 1:
                    continue
                paths: list[Path | None] = []
                for key in ("pos_image_id", "neg_image_id"):
                    image_id = str(field(row, key, path, f"line {n}", self.name)).strip()
                    if image_id not in found:
                        found[image_id] = find_image(image_dir, image_id)
                    paths.append(found[image_id])
                refs = [ImageRef(p) for p in paths if p is not None]
                if len(refs) < 2:
                    skipped += 1
                    continue
                sentence = str(field(row, "sentence", path, f"line {n}", self.name))
                items.append(TextToImageItem(sentence, refs, 0, kinds[0]))
        self._extra = {"skipped_missing_images": skipped}
        return items
