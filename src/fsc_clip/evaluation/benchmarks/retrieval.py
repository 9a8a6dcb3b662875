"""Image-text retrieval: COCO Karpathy 5k test, Flickr30k 1k test, COCO-Counterfactuals.

Sub-scores ``<benchmark>::{i2t,t2i}/R@{1,5,10}`` exactly as the published tables (``coco_karpathy::i2t/R@1``);
the benchmark-level score is the mean of I2T and T2I R@1. Protocol and chunked computation:
:mod:`fsc_clip.evaluation.tasks.retrieval`.

Layouts (under ``<data_root>/<benchmark>/``; option ``image_root`` overrides where image paths are resolved):

- ``coco_karpathy/``: ``coco_karpathy_test.json``, a JSON list of ``{"image": "val2014/COCO_val2014_....jpg",
  "caption": [5+ captions]}`` (the BLIP / ARO Karpathy test split: 5000 images, 25010 captions), with the
  images at ``coco_karpathy/val2014/...``.
- ``flickr30k/``: ``flickr30k_test.json`` (``{"image": "flickr30k-images/<id>.jpg", "caption": [5]}``, 1000
  images, 5000 captions) with ``flickr30k/flickr30k-images/``.
- ``coco_counterfactuals/``: ``examples.jsonl`` from HF ``Intel/COCO-Counterfactuals`` (one object per line with
  ``id``, ``image_0``, ``image_1`` (file names, extension optional), ``caption_0``, ``caption_1``) and the
  extracted ``images.zip`` in ``images/``. **Pool** (the published construction is unknown, BENCHMARKS.md §2):
  every example contributes both of its images and both of its captions to one shared pool; ``caption_k``
  belongs to ``image_k`` only. So each image's counterfactual caption (and each caption's counterfactual image)
  is a hard distractor among all the others: 2N images x 2N captions, one caption per image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import Headline, add_headline, mean
from fsc_clip.evaluation.base import Benchmark, BenchmarkOutput, Embedder, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import find_image, read_json, records

RETRIEVAL = "retrieval"
SUBS = tuple(f"{d}/R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10))
CAPTION_FIELDS = (("caption_0", "caption_1"), ("text_0", "text_1"), ("caption0", "caption1"))


class RetrievalBenchmark(Benchmark):
    """Shared run(): build the pool, embed, chunked recall. Subclasses implement :meth:`load_pool`.

    Options:
        image_root: Folder that image paths are relative to (default: the benchmark folder).
        chunk_size: Image rows per similarity chunk (default 1024).
        limit: Use only the first ``limit`` images (and their captions), for quick checks.
    """

    task = RETRIEVAL
    kind = RETRIEVAL
    sub_scores = SUBS

    def image_root(self, root: Path) -> Path:
        return Path(self.options.get("image_root", root)).expanduser()

    def load_pool(self, data_root: str | Path) -> tuple[list[ImageRef], list[str], list[int]]:
        """``(images, captions, image index of each caption)``."""
        raise NotImplementedError

    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        import torch

        from fsc_clip.evaluation.tasks.retrieval import retrieval_scores

        images, captions, owner = self.load_pool(data_root)
        limit = self.options.get("limit")
        if limit and int(limit) < len(images):
            keep = [j for j, i in enumerate(owner) if i < int(limit)]
            images, captions, owner = images[: int(limit)], [captions[j] for j in keep], [owner[j] for j in keep]
        img = embedder.images(images, desc=self.name)  # [N_img, D]
        txt = embedder.texts(captions, desc=self.name)  # [N_txt, D]
        chunk = int(self.options.get("chunk_size", 1024))
        raw = retrieval_scores(img, txt, torch.tensor(owner, dtype=torch.long), chunk_size=chunk)
        scores = {self.full(k): v for k, v in raw.items()}
        counts = {self.full(k): (len(images) if k.startswith("i2t") else len(captions)) for k in raw}
        extra: dict[str, Any] = {"n_images": len(images), "n_captions": len(captions)}
        if limit:
            extra["limit"] = int(limit)
        return BenchmarkOutput(scores=scores, counts=counts, score=self.aggregate(scores), extra=extra)

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return mean([scores[f"{cls.name}::i2t/R@1"], scores[f"{cls.name}::t2i/R@1"]])


class KarpathyRetrieval(RetrievalBenchmark):
    """A Karpathy-format test JSON: a list of ``{"image": path, "caption": [captions]}``."""

    annotation: ClassVar[str] = ""
    image_dir: ClassVar[str] = ""  # image folder under the benchmark root (unless the option image_root is set)

    def check(self, data_root: str | Path) -> Path:
        root = self.root(data_root)
        self.require(root / self.annotation)
        if "image_root" not in self.options:
            self.require(root / self.image_dir)
        return root

    def load_pool(self, data_root: str | Path) -> tuple[list[ImageRef], list[str], list[int]]:
        root = self.check(data_root)
        image_root = self.image_root(root)
        images, captions, owner = [], [], []
        for n, rec in enumerate(records(read_json(root / self.annotation, self.name))):
            if "image" not in rec or "caption" not in rec:
                raise DataNotFoundError(f"{self.name}: record {n} of {root / self.annotation} lacks image/caption")
            caps = rec["caption"] if isinstance(rec["caption"], list) else [rec["caption"]]
            path = image_root / rec["image"]
            if not path.is_file():
                raise DataNotFoundError(f"{self.name}: image {path} (record {n}) does not exist. {self.obtain}")
            images.append(ImageRef(path))
            captions.extend(str(c) for c in caps)
            owner.extend([len(images) - 1] * len(caps))
        return images, captions, owner


@BENCHMARKS.register("coco_karpathy")
class CocoKarpathy(KarpathyRetrieval):
    name = "coco_karpathy"
    description = "COCO Karpathy 5k test retrieval: I2T / T2I R@1/5/10 (5000 images, 25010 captions)"
    annotation = "coco_karpathy_test.json"
    image_dir = "val2014"
    expected_files: ClassVar[tuple[str, ...]] = ("coco_karpathy_test.json", "val2014/")
    obtain = (
        "Get coco_karpathy_test.json (BLIP's sfr-vision-language-research datasets bucket) and the COCO 2014 "
        "val images into val2014/ (or pass the option image_root)."
    )


@BENCHMARKS.register("flickr30k")
class Flickr30k(KarpathyRetrieval):
    name = "flickr30k"
    description = "Flickr30k 1k test retrieval: I2T / T2I R@1/5/10 (1000 images, 5000 captions)"
    annotation = "flickr30k_test.json"
    image_dir = "flickr30k-images"
    expected_files: ClassVar[tuple[str, ...]] = ("flickr30k_test.json", "flickr30k-images/")
    obtain = (
        "Get flickr30k_test.json (BLIP's sfr-vision-language-research datasets bucket) and the Flickr30k images "
        "(manual request) into flickr30k-images/ (or pass the option image_root)."
    )


@BENCHMARKS.register("coco_counterfactuals")
class CocoCounterfactuals(RetrievalBenchmark):
    name = "coco_counterfactuals"
    description = "COCO-Counterfactuals retrieval over one pool of all 2N images / 2N captions (I2T / T2I R@k)"
    expected_files: ClassVar[tuple[str, ...]] = ("examples.jsonl", "images/")
    obtain = "Get data/examples.jsonl and data/images.zip (extract into images/) from HF Intel/COCO-Counterfactuals."

    def load_pool(self, data_root: str | Path) -> tuple[list[ImageRef], list[str], list[int]]:
        root = self.check(data_root)
        image_dir = Path(self.options.get("image_root", root / "images")).expanduser()
        images, captions, owner = [], [], []
        for n, rec in enumerate(records(read_json(root / "examples.jsonl", self.name))):
            fields = next((f for f in CAPTION_FIELDS if all(k in rec for k in f)), None)
            if fields is None or "image_0" not in rec or "image_1" not in rec:
                raise DataNotFoundError(
                    f"{self.name}: line {n + 1} of {root / 'examples.jsonl'} lacks image_0/image_1/caption_0/caption_1"
                )
            for k in (0, 1):
                path = find_image(image_dir, str(rec[f"image_{k}"]))
                if path is None:
                    raise DataNotFoundError(f"{self.name}: image {rec[f'image_{k}']!r} not found in {image_dir}")
                images.append(ImageRef(path))
                captions.append(str(rec[fields[k]]))
                owner.append(len(images) - 1)
        return images, captions, owner


# ----- headline columns (profiles are defined in fsc_clip.evaluation.aggregate) -------------------------------
RETRIEVAL_SETS = ("coco_karpathy", "flickr30k", "coco_counterfactuals")


def mean_recall_present(direction: str, sets: tuple[str, ...] = RETRIEVAL_SETS):
    """Headline: mean R@1 of ``direction`` over the retrieval sets that have results (None if none has)."""

    def compute(_columns: dict, subscores: dict) -> float | None:
        vals = [subscores[f"{s}::{direction}/R@1"] for s in sets if f"{s}::{direction}/R@1" in subscores]
        return mean(vals) if vals else None

    return compute


def mean_recall_all(direction: str, sets: tuple[str, ...]):
    """Headline: mean R@1 of ``direction`` over exactly ``sets`` (None if one is missing)."""
    return lambda _columns, subscores: mean(subscores.get(f"{s}::{direction}/R@1") for s in sets)


def subscore(key: str):
    """Headline equal to one published sub-score (None if absent)."""
    return lambda _columns, subscores: subscores.get(key)


def _register_headlines() -> None:
    add_headline("fsc", Headline("I2T", mean_recall_present("i2t"), "mean I2T R@1 over the retrieval sets present"))
    add_headline("fsc", Headline("T2I", mean_recall_present("t2i"), "mean T2I R@1 over the retrieval sets present"))
    for col, key in (("coco_i2t", "coco_karpathy::i2t/R@1"), ("coco_t2i", "coco_karpathy::t2i/R@1"),
                     ("flickr_i2t", "flickr30k::i2t/R@1"), ("flickr_t2i", "flickr30k::t2i/R@1")):  # fmt: skip
        add_headline("vl_compo", Headline(col, subscore(key), f"= {key}"))
    pair = ("coco_karpathy", "flickr30k")
    add_headline("vl_compo", Headline("i2t_avg", mean_recall_all("i2t", pair), "mean(coco_i2t, flickr_i2t)"))
    add_headline("vl_compo", Headline("t2i_avg", mean_recall_all("t2i", pair), "mean(coco_t2i, flickr_t2i)"))


_register_headlines()
