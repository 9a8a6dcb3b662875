"""NegBench retrieval with negation (m1k2zoo/negbench): COCO val2017 text-to-image retrieval, original vs negated
captions.

Source: github.com/m1k2zoo/negbench @ 2ac009b5adfb18d1d7c185c466b2bced10f43f6a:

- ``datasets.md`` and ``benchmarks/scripts/evaluate_images.sh`` (the "main" experiment):
  ``data/images/COCO_val_retrieval.csv`` (``--coco-retrieval``) and
  ``data/images/COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv`` (``--coco-negated-retrieval``);
- ``benchmarks/src/training/data.py: CsvImageCaptionDataset``: one row per image, column ``filepath`` (the image)
  and ``captions`` (a Python list literal of its captions, read with ``eval``);
- ``benchmarks/src/evaluation/retrieval.py``: one pool per file (the rows are the images, every caption of every row
  a query), cosine similarity, ``recall_at_k`` with k in (1, 5); the published keys are
  ``coco-image_retrieval_recall@{1,5}`` and ``coco-negated-image_retrieval_recall@{1,5}`` (text-to-image). The
  image-to-text recall it computes alongside (any own caption among the k best texts) is not published.

Layout under ``<data_root>/negbench/``: the two CSVs under ``data/images/``; a ``filepath`` is used as written if it
exists, else relative to ``negbench/`` (option ``image_dir``: the file name in one folder), as for the MCQ CSVs.

Sub-scores ``<part>::t2i/R@{1,5}`` (published) and ``<part>::i2t/R@{1,5}`` for the parts ``COCO`` and
``COCO-negated``; the column is ``COCO-negated::t2i/R@5``. Each row is one image of the pool, as in the official
dataset (a path listed twice is two pool entries; the count is recorded as ``duplicate_image_rows``). Recall by
:mod:`fsc_clip.evaluation.tasks.retrieval`: a tie is never a success (the official ``torch.topk`` breaks ties
arbitrarily). Not scorable here: MSR-VTT (negated) retrieval (``.mp4`` videos; frames are sampled at evaluation
time) and ``synthetic_retrieval_v{1,2}.csv`` (the released code has no reader or scorer for them:
``evaluate_images.sh`` passes ``--synthetic-retrieval`` flags that ``params.py`` does not define).
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

from fsc_clip.evaluation.base import Benchmark, BenchmarkOutput, Embedder, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, require_images
from fsc_clip.evaluation.benchmarks.negbench import CSV_DIR, read_csv_rows, resolve

log = logging.getLogger(__name__)

PARTS = {"COCO": "COCO_val_retrieval.csv",
         "COCO-negated": "COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv"}  # fmt: skip
KS = (1, 5)  # retrieval_eval: recall_k_list=[1, 5]


def parse_captions(value: str, path: Path, index: int, what: str) -> list[str]:
    """The ``captions`` cell: a Python list literal of strings (``ast.literal_eval``, never ``eval``)."""
    try:
        caps = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        caps = None
    if not (isinstance(caps, list | tuple) and caps and all(isinstance(c, str) for c in caps)):
        raise SchemaError(f"{what}: {path}: row {index} has captions {value[:80]!r}; expected a non-empty Python list "
                          "of strings, e.g. \"['a dog on a sofa', 'a sofa with no cat']\".")  # fmt: skip
    return list(caps)


@BENCHMARKS.register("negbench_retrieval")
class NegBenchRetrieval(Benchmark):
    """Options: ``image_dir`` (look images up by file name there), ``chunk_size`` (image rows per similarity chunk)."""

    name = "negbench_retrieval"
    subdir = "negbench"
    task = "retrieval"
    kind = "compositional_2025"
    description = "NegBench retrieval: COCO val2017 text-to-image R@1/5 with original vs negated captions"
    expected_files = tuple(f"{CSV_DIR}/{n}" for n in PARTS.values())
    obtain = (
        "Download COCO_val_retrieval.csv and COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv (Google "
        "Drive folder linked in github.com/m1k2zoo/negbench datasets.md) into negbench/data/images/, with the COCO "
        "val2017 images; point their filepath column at your images (absolute, or relative to negbench/)."
    )
    sub_scores = tuple(f"{p}::{d}/R@{k}" for p in PARTS for d in ("t2i", "i2t") for k in KS)
    required_sub_scores = ("COCO-negated::t2i/R@5",)

    def load_pool(self, root: Path, part: str) -> tuple[list[ImageRef], list[str], list[int]]:
        """``(images, captions, image index of each caption)`` of one CSV: one image per row."""
        path = root / CSV_DIR / PARTS[part]
        images: list[ImageRef] = []
        captions: list[str] = []
        owner: list[int] = []
        for i, row in enumerate(read_csv_rows(path)):
            raw = str(field(row, "filepath", path, i, self.name))
            images.append(ImageRef(resolve(root, raw, self.options.get("image_dir"))))
            caps = parse_captions(str(field(row, "captions", path, i, self.name)), path, i, self.name)
            captions.extend(caps)
            owner.extend([i] * len(caps))
        if not images:
            raise SchemaError(f"{self.name}: {path} has no rows. {self.obtain}")
        return images, captions, owner

    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        import torch

        from fsc_clip.evaluation.stats import retrieval_table
        from fsc_clip.evaluation.tasks.retrieval import competitors, scores_from_competitors

        root = self.check(data_root)
        pools = {part: self.load_pool(root, part) for part in PARTS}
        require_images([r for images, _, _ in pools.values() for r in images], self.name, self.obtain)
        scores: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        extra: dict[str, Any] = {}
        tables = []
        for part, (images, captions, owner) in pools.items():
            img = embedder.images(images, desc=f"{self.name} {part}")  # [N_img, D]
            txt = embedder.texts(captions, desc=f"{self.name} {part}")  # [N_txt, D]
            owner_t = torch.tensor(owner, dtype=torch.long)
            i2t, t2i = competitors(img.float(), txt.float(), owner_t, int(self.options.get("chunk_size", 1024)))
            for key, value in scores_from_competitors(i2t, t2i, KS).items():
                scores[self.full(f"{part}::{key}")] = value
                counts[self.full(f"{part}::{key}")] = len(images) if key.startswith("i2t") else len(captions)
            table = retrieval_table(self.full(part), i2t.numpy(), t2i.numpy(), owner_t.numpy(), KS)
            table.name = part
            tables.append(table)
            extra[part] = {"n_images": len(images), "n_captions": len(captions)}
            duplicates = len(images) - len({str(r.path) for r in images})
            if duplicates:
                log.warning("%s: %d image row(s) of %s repeat a path; each row stays its own pool entry, as in the "
                            "official dataset", self.name, duplicates, PARTS[part])  # fmt: skip
                extra[part]["duplicate_image_rows"] = duplicates
        order = [self.full(s) for s in self.sub_scores]  # published order: t2i first
        out = self.finish({k: scores[k] for k in order}, {k: counts[k] for k in order}, extra)
        out.per_item = tables
        return out

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::COCO-negated::t2i/R@5"]
