"""NegBench multiple-choice tasks (m1k2zoo/negbench): pick the right caption of an image among ones wrong by negation.

Source: github.com/m1k2zoo/negbench @ 2ac009b5adfb18d1d7c185c466b2bced10f43f6a:

- ``datasets.md``: the CSVs under ``data/images/`` (downloaded from the Google Drive folder it links; their
  ``image_path`` column holds the authors' paths, which it tells the user to rewrite to their own images);
- ``benchmarks/src/training/data.py``: ``CsvMCQDataset`` reads ``image_path``, ``caption_0..3``, ``correct_answer``
  (index of the right caption) and ``correct_answer_template`` (``positive`` / ``negative`` / ``hybrid``: the right
  answer affirms, negates, or both); ``CsvBinaryMCQDataset`` reads ``image_path``, ``caption_0``, ``caption_1``,
  ``correct_answer`` (no template);
- ``benchmarks/src/evaluation/mcq.py``: ``evaluate_model`` / ``evaluate_binary_mcq_model``: argmax over the
  image-caption cosine similarities; accuracy over all items and per template (``is_synthetic`` only changes the
  wrong-answer diagnostics, which are not reported here);
- ``results/mcq/1_baseline_{total,breakdown}.csv``: the published COCO and VOC2007 accuracies. Every published
  accuracy is a ratio over the same denominators, which give the item counts recorded below (COCO 5,914 = 2,032
  positive + 1,870 negative + 2,012 hybrid; VOC2007 5,031 = 682 + 2,121 + 2,228).

Benchmarks, all under ``<data_root>/negbench/`` (the repository's ``data/`` layout):

- ``negbench``: ``data/images/COCO_val_mcq_llama3.1_rephrased.csv`` and ``VOC2007_mcq_llama3.1_rephrased.csv``
  (the "main" experiment of ``benchmarks/scripts/evaluate_images.sh``); column = mean of the two totals.
- ``negbench_syn``: ``data/images/synthetic_mcq_llama3.1_rephrased.csv`` (the synthetic "HardNeg-Syn" MCQ, same
  columns); column = its total. ``datasets.md`` gives no download for its Stable Diffusion images (an earlier
  revision, ec4875121b5711ed2220bd54ae1345b6204e9a01, said they "will be uploaded shortly").
- ``negbench_chexpert``: ``data/images/chexpert_binary_mcq.csv`` and ``chexpert_binary_mcq_control.csv`` (two
  captions; CheXpert images from Kaggle); column = the accuracy on ``chexpert_binary_mcq.csv``.

An ``image_path`` is used as written if it exists, else relative to ``negbench/``; option ``image_dir`` instead
looks up the file name in one folder. Sub-scores ``<part>::total`` and, for templated CSVs,
``<part>::positive|negative|hybrid``. One difference from ``mcq.py``: its ``torch.argmax`` takes the first of tied
maxima, so a tie won by an earlier right caption counts; here a tie is never a success. Not scorable here: the
MSR-VTT video MCQ (``.mp4`` files; the official code samples frames from the video at evaluation time).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field

TEMPLATES = ("positive", "negative", "hybrid")
CSV_DIR = "data/images"
# published item counts, from the denominators of results/mcq/1_baseline_breakdown.csv (see the module docstring)
N_ITEMS_PUBLISHED = {"COCO": {"total": 5914, "positive": 2032, "negative": 1870, "hybrid": 2012},
                     "VOC2007": {"total": 5031, "positive": 682, "negative": 2121, "hybrid": 2228}}  # fmt: skip


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a comma-separated file with a header, as dicts."""
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def resolve(root: Path, raw: str, image_dir: str | None = None) -> Path:
    """An image path of a NegBench CSV: ``image_dir/<file name>`` if given, else ``raw`` as written if it exists,
    else ``raw`` relative to the benchmark folder (so ``/data/VOC2007/x.jpg`` finds ``negbench/data/VOC2007/x.jpg``)."""
    if image_dir:
        return Path(image_dir).expanduser() / Path(raw).name
    direct = Path(raw).expanduser()
    return direct if direct.is_file() else root / raw.lstrip("/")


class NegBenchMCQ(Benchmark):
    """Reader and scorer shared by the NegBench multiple-choice CSVs; subclasses name their parts.

    Class attributes:
        parts: Part name -> CSV file name under ``data/images/``.
        n_options: Captions per item (``caption_0`` ... ``caption_{n-1}``).
        templated: Whether the CSV has ``correct_answer_template`` (per-template sub-scores).
    """

    subdir = "negbench"
    task = IMAGE_TO_TEXT
    kind = "compositional_2025"
    parts: ClassVar[dict[str, str]] = {}
    n_options: ClassVar[int] = 4
    templated: ClassVar[bool] = True

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        refs: dict[str, ImageRef] = {}
        items = []
        for part, name in self.parts.items():
            path = root / CSV_DIR / name
            for i, row in enumerate(read_csv_rows(path)):
                get = lambda key: field(row, key, path, i, self.name)  # noqa: E731, B023
                image = resolve(root, str(get("image_path")), self.options.get("image_dir"))
                texts = [str(get(f"caption_{k}")) for k in range(self.n_options)]
                label = self.label(get("correct_answer"), path, i)
                template = self.template(get("correct_answer_template"), path, i) if self.templated else ""
                ref = refs.setdefault(str(image), ImageRef(image))
                items.append(ImageToTextItem(ref, texts, label, part, template))
        return items

    def label(self, value: Any, path: Path, index: int) -> int:
        try:
            label = int(str(value).strip())
        except ValueError:
            label = -1
        if not 0 <= label < self.n_options:
            last = self.n_options - 1
            raise SchemaError(f"{self.name}: {path}: row {index} has correct_answer {value!r}; expected an index "
                              f"0..{last} of caption_0..caption_{last}.")  # fmt: skip
        return label

    def template(self, value: Any, path: Path, index: int) -> str:
        if value not in TEMPLATES:
            raise SchemaError(f"{self.name}: {path}: row {index} has correct_answer_template {value!r}, expected "
                              f"one of {TEMPLATES}.")  # fmt: skip
        return str(value)

    def score(self, items: Sequence[Item], outcomes: Mapping[str, Sequence[bool]]) -> tuple[dict, dict]:
        """Accuracy per part (``item.subset``): over all its items and per template (``item.category``)."""
        from fsc_clip.evaluation.tasks import as_hit

        hits: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for i, it in enumerate(items):
            subs = [f"{it.subset}::total"] + ([f"{it.subset}::{it.category}"] if it.category else [])
            for sub in subs:
                full = self.full(sub)
                counts[full] = counts.get(full, 0) + 1
                hits[full] = hits.get(full, 0) + as_hit(outcomes["correct"][i])
        order = [self.full(s) for s in self.sub_scores if self.full(s) in counts]  # published order
        return {k: 100.0 * hits[k] / counts[k] for k in order}, {k: counts[k] for k in order}


def mcq_sub_scores(parts: Iterable[str], templated: bool = True) -> tuple[str, ...]:
    """``<part>::total`` (and ``<part>::<template>`` for templated CSVs) for each part, in published order."""
    return tuple(f"{p}::{s}" for p in parts for s in (("total", *TEMPLATES) if templated else ("total",)))


@BENCHMARKS.register("negbench")
class NegBench(NegBenchMCQ):
    name = "negbench"
    description = "NegBench MCQ (COCO, VOC2007): 1 of 4 captions; affirmed / negated / hybrid right answers"
    parts: ClassVar[dict[str, str]] = {
        "COCO": "COCO_val_mcq_llama3.1_rephrased.csv",
        "VOC2007": "VOC2007_mcq_llama3.1_rephrased.csv",
    }
    expected_files = tuple(f"{CSV_DIR}/{n}" for n in parts.values())
    obtain = (
        "Download the NegBench CSVs (Google Drive folder linked in github.com/m1k2zoo/negbench datasets.md) into "
        "negbench/data/images/, with COCO val2017 and VOC2007 test images; point their image_path column at your "
        "images (absolute, or relative to negbench/), as datasets.md says."
    )
    sub_scores = mcq_sub_scores(parts)
    required_sub_scores = tuple(f"{d}::total" for d in parts)

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        items = super().load(data_root)
        counts = {p: {"total": sum(it.subset == p for it in items),
                      **{t: sum(it.subset == p and it.category == t for it in items) for t in TEMPLATES}}
                  for p in self.parts}  # fmt: skip
        if counts != N_ITEMS_PUBLISHED:  # recorded in the result: not the released files
            self._extra = {"n_items_published": N_ITEMS_PUBLISHED}
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return (scores[f"{cls.name}::COCO::total"] + scores[f"{cls.name}::VOC2007::total"]) / 2


@BENCHMARKS.register("negbench_syn")
class NegBenchSyn(NegBenchMCQ):
    name = "negbench_syn"
    description = "NegBench synthetic MCQ (HardNeg-Syn, Stable Diffusion images): 1 of 4 captions, by template"
    parts: ClassVar[dict[str, str]] = {"synthetic": "synthetic_mcq_llama3.1_rephrased.csv"}
    expected_files = tuple(f"{CSV_DIR}/{n}" for n in parts.values())
    obtain = (
        "Download synthetic_mcq_llama3.1_rephrased.csv (Google Drive folder linked in github.com/m1k2zoo/negbench "
        "datasets.md) into negbench/data/images/ and point its image_path column at the synthetic images "
        "(datasets.md gives no download for them)."
    )
    sub_scores = mcq_sub_scores(parts)
    required_sub_scores = ("synthetic::total",)

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::synthetic::total"]


@BENCHMARKS.register("negbench_chexpert")
class NegBenchCheXpert(NegBenchMCQ):
    name = "negbench_chexpert"
    description = "NegBench CheXpert binary MCQ (chest X-rays): 1 of 2 captions, with and without negation"
    parts: ClassVar[dict[str, str]] = {
        "binary_mcq": "chexpert_binary_mcq.csv",
        "binary_mcq_control": "chexpert_binary_mcq_control.csv",
    }
    n_options = 2
    templated = False
    expected_files = tuple(f"{CSV_DIR}/{n}" for n in parts.values())
    obtain = (
        "Download chexpert_binary_mcq.csv and chexpert_binary_mcq_control.csv (Google Drive folder linked in "
        "github.com/m1k2zoo/negbench datasets.md) into negbench/data/images/, with the CheXpert images (Kaggle "
        "ashery/chexpert); point their image_path column at your images."
    )
    sub_scores = mcq_sub_scores(parts, templated=False)
    required_sub_scores = ("binary_mcq::total",)

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::binary_mcq::total"]
