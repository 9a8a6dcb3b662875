"""NegBench MCQ (m1k2zoo/negbench): pick the right one of four captions, three of them wrong through negation.

Source: github.com/m1k2zoo/negbench @ 2ac009b5adfb18d1d7c185c466b2bced10f43f6a (``datasets.md``: the CSVs under
``data/images/``; ``benchmarks/src/training/data.py: CsvMCQDataset`` reads the columns ``image_path``,
``caption_0..3``, ``correct_answer`` (index of the right caption) and ``correct_answer_template`` (``positive`` /
``negative`` / ``hybrid``: the right answer affirms, negates, or both); ``benchmarks/src/evaluation/mcq.py:
evaluate_model``: argmax over the four image-caption cosine similarities; ``results/mcq/1_baseline_*.csv``: the
published COCO and VOC2007 total and per-template accuracies). The CSVs are downloaded from the Google Drive folder
that ``datasets.md`` links; their ``image_path`` column holds the authors' paths, which ``datasets.md`` tells the user
to rewrite to their own copy of COCO val2017 / VOC2007 test.

Layout under ``<data_root>/negbench/``: ``data/images/COCO_val_mcq_llama3.1_rephrased.csv`` and
``data/images/VOC2007_mcq_llama3.1_rephrased.csv`` (the "main" experiment of ``scripts/evaluate_images.sh``). An
``image_path`` is used as written if it exists, else relative to ``negbench/``; option ``image_dir`` instead looks up
the file name in one folder.

Scores: ``<dataset>::total`` and ``<dataset>::positive|negative|hybrid`` (accuracy over the items whose right answer
has that template); the column is the mean of the COCO and VOC2007 totals. One difference from ``mcq.py``: its
``torch.argmax`` takes the first of tied maxima, so a tie won by an earlier right caption counts; here a tie is never
a success. The synthetic MCQ, the CheXpert binary MCQ, the video MCQ and the retrieval tasks are not implemented.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field

FILES = {"COCO": "data/images/COCO_val_mcq_llama3.1_rephrased.csv",
         "VOC2007": "data/images/VOC2007_mcq_llama3.1_rephrased.csv"}  # fmt: skip
TEMPLATES = ("positive", "negative", "hybrid")
N_OPTIONS = 4


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@BENCHMARKS.register("negbench")
class NegBench(Benchmark):
    name = "negbench"
    task = IMAGE_TO_TEXT
    description = "NegBench MCQ (COCO, VOC2007): 1 of 4 captions; affirmed / negated / hybrid right answers"
    expected_files = tuple(FILES.values())
    obtain = (
        "Download the NegBench CSVs (Google Drive folder linked in github.com/m1k2zoo/negbench datasets.md) into "
        "negbench/data/images/, with COCO val2017 and VOC2007 test images; point their image_path column at your "
        "images (absolute, or relative to negbench/), as datasets.md says."
    )
    kind = "compositional_2025"
    sub_scores = tuple(f"{d}::{s}" for d in FILES for s in ("total", *TEMPLATES))
    required_sub_scores = tuple(f"{d}::total" for d in FILES)

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        image_dir = self.options.get("image_dir")
        refs: dict[str, ImageRef] = {}
        items = []
        for dataset, rel in FILES.items():
            path = root / rel
            for i, row in enumerate(read_csv_rows(path)):
                raw = str(field(row, "image_path", path, i, self.name))
                image = Path(image_dir) / Path(raw).name if image_dir else self.resolve(root, raw)
                texts = [str(field(row, f"caption_{k}", path, i, self.name)) for k in range(N_OPTIONS)]
                label = self.label(field(row, "correct_answer", path, i, self.name), path, i)
                template = field(row, "correct_answer_template", path, i, self.name)
                if template not in TEMPLATES:
                    raise SchemaError(f"{self.name}: {path}: row {i} has correct_answer_template {template!r}, "
                                      f"expected one of {TEMPLATES}.")  # fmt: skip
                ref = refs.setdefault(str(image), ImageRef(image))
                items.append(ImageToTextItem(ref, texts, label, dataset, template))
        return items

    @staticmethod
    def resolve(root: Path, raw: str) -> Path:
        """``raw`` as written if it exists, else relative to the benchmark folder."""
        direct = Path(raw).expanduser()
        return direct if direct.is_file() else root / raw.lstrip("/")

    def label(self, value: Any, path: Path, index: int) -> int:
        try:
            label = int(str(value).strip())
        except ValueError:
            label = -1
        if not 0 <= label < N_OPTIONS:
            raise SchemaError(f"{self.name}: {path}: row {index} has correct_answer {value!r}; expected an index "
                              f"0..{N_OPTIONS - 1} of caption_0..caption_{N_OPTIONS - 1}.")  # fmt: skip
        return label

    def score(self, items: Sequence[Item], outcomes: Mapping[str, Sequence[bool]]) -> tuple[dict, dict]:
        """Accuracy per dataset (``item.subset``): over all items and per template (``item.category``)."""
        from fsc_clip.evaluation.tasks import as_hit

        hits: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for i, it in enumerate(items):
            for sub in (f"{it.subset}::total", f"{it.subset}::{it.category}"):
                full = self.full(sub)
                counts[full] = counts.get(full, 0) + 1
                hits[full] = hits.get(full, 0) + as_hit(outcomes["correct"][i])
        return {k: 100.0 * hits[k] / counts[k] for k in counts}, counts

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return (scores[f"{cls.name}::COCO::total"] + scores[f"{cls.name}::VOC2007::total"]) / 2
