"""Image-text retrieval: COCO Karpathy 5k test, Flickr30k 1k test, COCO-Counterfactuals.

Sub-scores ``<benchmark>::{i2t,t2i}/R@{1,5,10}`` exactly as the published tables (``coco_karpathy::i2t/R@1``);
the benchmark-level score is the mean of I2T and T2I R@1. Protocol and chunked computation:
:mod:`fsc_clip.evaluation.tasks.retrieval`.

Layouts (under ``<data_root>/<benchmark>/``; option ``image_root`` overrides where image paths are resolved):

- ``coco_karpathy/``: ``coco_karpathy_test.json``, a JSON list of ``{"image": "val2014/COCO_val2014_....jpg",
  "caption": [5+ captions]}`` (the BLIP / ARO Karpathy test split: 5000 images, 25010 captions), with the
  images at ``coco_karpathy/val2014/...``. Karpathy's own ``dataset_coco.json`` (``{"images": [{"filepath",
  "filename", "split", "sentences": [{"raw", ...}]}]}``, records with ``split == "test"``) is read if the BLIP
  file is absent.
- ``flickr30k/``: ``flickr30k_test.json`` (``{"image": "flickr30k-images/<id>.jpg", "caption": [5]}``, 1000
  images, 5000 captions) with ``flickr30k/flickr30k-images/``; or Karpathy's ``dataset_flickr30k.json`` (no
  ``filepath``: images are looked up in ``flickr30k-images/``).

Karpathy-format captions are cleaned with BLIP's ``pre_caption(max_words=30)`` (lower case, ``.!"()*#:;~`` to
spaces, at most 30 words), as both official loaders of these files do: BLIP ``coco_karpathy_retrieval_eval`` /
``flickr30k_retrieval_eval`` (salesforce/BLIP@056a169437371659074aa2732649d5de3bffb4a8, ``data/``) and ARO
``COCO_Retrieval`` / ``Flickr30k_Retrieval`` (``dataset_zoo/retrieval.py`` of
mertyg/vision-language-models-are-bows@81fdd20dc5b6f434aa5a4a971717bc80d1cedb0d). Option ``raw_captions=True``
keeps them as written. Images listed but absent are an error naming how many and which (the protocol is the full
split); option ``allow_partial=True`` drops them (and their captions) with a warning and reports
``missing_images`` in the result's ``extra``. Karpathy split layout (``images``, ``split``, ``filename``,
``sentences``): karpathy/neuraltalk@c36bd0aa23907638a1217f03a13bdba5e1a8cada ``imagernn/data_provider.py``.

- ``coco_counterfactuals/``: ``examples.jsonl`` from HF ``Intel/COCO-Counterfactuals`` (one object per line with
  ``id``, ``image_0``, ``image_1`` (file names, extension optional), ``caption_0``, ``caption_1``) and the
  extracted ``images.zip`` in ``images/``. **Subset** (FSC-CLIP appendix A.2): a seeded random 30 % of the
  examples (5,223 of 17,410), option ``fraction=1`` for the full pool; see :class:`CocoCounterfactuals`. **Pool**
  (the published construction is unknown; docs/evaluation.md, "Unverified choices"): every selected example
  contributes both of its images
  and both of its captions to one shared pool; ``caption_k`` belongs to ``image_k`` only. So each image's
  counterfactual caption (and each caption's counterfactual image) is a hard distractor among all the others:
  2N images x 2N captions, one caption per image.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from fsc_clip.errors import DataNotFoundError, UserError
from fsc_clip.evaluation.aggregate import Headline, add_headline, mean
from fsc_clip.evaluation.base import Benchmark, BenchmarkOutput, Embedder, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, find_image, read_json, records
from fsc_clip.evaluation.benchmarks.aro import pre_caption

logger = logging.getLogger(__name__)

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

        from fsc_clip.evaluation.stats import retrieval_table
        from fsc_clip.evaluation.tasks.retrieval import DEFAULT_KS, competitors, scores_from_competitors

        images, captions, owner = self.load_pool(data_root)
        limit = self.options.get("limit")
        if limit and int(limit) < len(images):
            keep = [j for j, i in enumerate(owner) if i < int(limit)]
            images, captions, owner = images[: int(limit)], [captions[j] for j in keep], [owner[j] for j in keep]
        img = embedder.images(images, desc=self.name)  # [N_img, D]
        txt = embedder.texts(captions, desc=self.name)  # [N_txt, D]
        chunk = int(self.options.get("chunk_size", 1024))
        owner_t = torch.tensor(owner, dtype=torch.long)
        i2t_count, t2i_count = competitors(img.float(), txt.float(), owner_t, chunk)
        raw = scores_from_competitors(i2t_count, t2i_count)
        scores: dict[str, float | None] = {self.full(k): v for k, v in raw.items()}
        counts = {self.full(k): (len(images) if k.startswith("i2t") else len(captions)) for k in raw}
        extra: dict[str, Any] = {"n_images": len(images), "n_captions": len(captions), **self.extra_info()}
        if limit:
            extra["limit"] = int(limit)
        per_item = [retrieval_table(self.name, i2t_count.numpy(), t2i_count.numpy(), owner_t.numpy(), DEFAULT_KS)]
        return BenchmarkOutput(scores=scores, counts=counts, score=self.aggregate(scores), extra=extra,
                               per_item=per_item)  # fmt: skip

    @classmethod
    def aggregate(cls, scores: Mapping[str, float | None]) -> float | None:
        return mean([scores[f"{cls.name}::i2t/R@1"], scores[f"{cls.name}::t2i/R@1"]])


class KarpathyRetrieval(RetrievalBenchmark):
    """A Karpathy-split test set: BLIP's JSON (a list of ``{"image": path, "caption": [captions]}``) or Karpathy's
    ``dataset_*.json`` (``images`` with ``split == "test"``).

    Options (besides the shared ones):
        raw_captions: Keep captions as written instead of BLIP's ``pre_caption(max_words=30)``.
        allow_partial: Drop listed images that are missing (with a warning) instead of raising.
    """

    annotation: ClassVar[str] = ""  # BLIP's test JSON
    karpathy_annotation: ClassVar[str] = ""  # Karpathy's dataset_*.json (all splits)
    image_dir: ClassVar[str] = ""  # image folder under the benchmark root (unless the option image_root is set)

    def annotation_path(self, root: Path) -> Path:
        """BLIP's file if present, else Karpathy's; a DataNotFoundError naming both if neither is there."""
        for name in (self.annotation, self.karpathy_annotation):
            if (root / name).is_file():
                return root / name
        raise DataNotFoundError(
            f"{self.name}: expected {root / self.annotation} (or Karpathy's {self.karpathy_annotation}) but neither "
            f"exists. {self.obtain} (run `fsc-clip list benchmarks` for the expected layout)."
        )

    def check(self, data_root: str | Path) -> Path:
        root = self.root(data_root)
        self.annotation_path(root)
        if "image_root" not in self.options:
            self.require(root / self.image_dir)
        return root

    def _read_blip(self, path: Path) -> list[tuple[str, list]]:
        """``(image path relative to the image root, captions)`` per record of BLIP's list."""
        rows = []
        for n, rec in enumerate(records(read_json(path, self.name))):
            caps = field(rec, "caption", path, n, self.name)
            rows.append((str(field(rec, "image", path, n, self.name)), caps if isinstance(caps, list) else [caps]))
        return rows

    def _read_karpathy(self, path: Path) -> list[tuple[str, list]]:
        """The ``split == "test"`` images of Karpathy's ``dataset_*.json``, captions from ``sentences[].raw``."""
        data = read_json(path, self.name)
        images = field(data if isinstance(data, dict) else {}, "images", path, "top level", self.name)
        rows = []
        for n, rec in enumerate(images):
            if field(rec, "split", path, f"images[{n}]", self.name) != "test":
                continue
            folder = rec.get("filepath") or self.image_dir  # COCO: "val2014"; Flickr30k has no filepath
            sentences = field(rec, "sentences", path, f"images[{n}]", self.name)
            caps = [field(x, "raw", path, f"images[{n}].sentences[{k}]", self.name) for k, x in enumerate(sentences)]
            rows.append((f"{folder}/{field(rec, 'filename', path, f'images[{n}]', self.name)}", caps))
        return rows

    def _keep_present(self, rows: list[tuple[Path, list]], ann: Path) -> list[tuple[Path, list]]:
        missing = [str(p) for p, _ in rows if not p.is_file()]
        if not missing:
            return rows
        msg = f"{self.name}: {len(missing)} of the {len(rows)} images listed in {ann} are missing, e.g. {missing[:3]}"
        if not self.options.get("allow_partial"):
            raise DataNotFoundError(
                f"{msg}. The protocol scores the full test split. {self.obtain} Or pass the option "
                "allow_partial=True to drop the missing images and their captions."
            )
        logger.warning("%s; dropping them and their captions (allow_partial)", msg)
        self._extra = {**getattr(self, "_extra", {}), "missing_images": len(missing)}
        return [(p, caps) for p, caps in rows if p.is_file()]

    def load_pool(self, data_root: str | Path) -> tuple[list[ImageRef], list[str], list[int]]:
        root = self.check(data_root)
        image_root = self.image_root(root)
        ann = self.annotation_path(root)
        listed = self._read_blip(ann) if ann.name == self.annotation else self._read_karpathy(ann)
        if not listed:
            raise SchemaError(f"{self.name}: {ann} lists no test images. {self.obtain}")
        rows = self._keep_present([(image_root / rel, caps) for rel, caps in listed], ann)
        raw = bool(self.options.get("raw_captions"))
        self._extra = {**getattr(self, "_extra", {}), "annotation": ann.name,
                       "captions": "raw" if raw else "pre_caption(max_words=30)"}  # fmt: skip
        images: list[ImageRef] = []
        captions: list[str] = []
        owner: list[int] = []
        for path, caps in rows:
            images.append(ImageRef(path))
            captions.extend(str(c) if raw else pre_caption(str(c), 30) for c in caps)
            owner.extend([len(images) - 1] * len(caps))
        return images, captions, owner


@BENCHMARKS.register("coco_karpathy")
class CocoKarpathy(KarpathyRetrieval):
    name = "coco_karpathy"
    description = "COCO Karpathy 5k test retrieval: I2T / T2I R@1/5/10 (5000 images, 25010 captions)"
    annotation = "coco_karpathy_test.json"
    karpathy_annotation = "dataset_coco.json"
    image_dir = "val2014"
    expected_files: ClassVar[tuple[str, ...]] = ("coco_karpathy_test.json", "val2014/")
    obtain = (
        "Get coco_karpathy_test.json (BLIP's sfr-vision-language-research datasets bucket; or Karpathy's "
        "dataset_coco.json) and the COCO 2014 val images into val2014/ (or pass the option image_root)."
    )


@BENCHMARKS.register("flickr30k")
class Flickr30k(KarpathyRetrieval):
    name = "flickr30k"
    description = "Flickr30k 1k test retrieval: I2T / T2I R@1/5/10 (1000 images, 5000 captions)"
    annotation = "flickr30k_test.json"
    karpathy_annotation = "dataset_flickr30k.json"
    image_dir = "flickr30k-images"
    expected_files: ClassVar[tuple[str, ...]] = ("flickr30k_test.json", "flickr30k-images/")
    obtain = (
        "Get flickr30k_test.json (BLIP's sfr-vision-language-research datasets bucket; or Karpathy's "
        "dataset_flickr30k.json) and the Flickr30k images (manual request) into flickr30k-images/ (or pass the "
        "option image_root)."
    )


@BENCHMARKS.register("coco_counterfactuals")
class CocoCounterfactuals(RetrievalBenchmark):
    """COCO-Counterfactuals (HF ``Intel/COCO-Counterfactuals``, loader ``COCO-Counterfactuals.py`` at 22a3b9c:
    ``examples.jsonl`` lines with ``id``, ``image_0`` / ``image_1`` = file stems joined to the extracted
    ``images.zip``, and the two captions).

    Protocol (FSC-CLIP appendix A.2): a random 30 % of the examples (17,410 -> 5,223 examples = 10,446 images and
    10,446 captions). The authors' selection code is unpublished (ytaek-oh/fsc-clip@604015d calls the unreleased
    ``vl_compo`` package), so ours is: ``round(fraction * N)`` examples drawn without replacement by
    ``random.Random(seed)`` over the file's line order, kept in file order. The seed, the fraction and the selected
    example ids are written to the result's ``extra`` (``subset_seed``, ``subset_fraction``, ``subset_ids``).

    Options: ``fraction`` (default 0.3; 1 = the full pool), ``seed`` (default 0), plus those of
    :class:`RetrievalBenchmark`. Images are looked up in ``images/`` and, if the zip kept its folder,
    ``images/images/``.
    """

    name = "coco_counterfactuals"
    description = "COCO-Counterfactuals retrieval: seeded 30 % of the examples (FSC-CLIP), 2 images + 2 captions each"
    expected_files: ClassVar[tuple[str, ...]] = ("examples.jsonl", "images/")
    obtain = "Get data/examples.jsonl and data/images.zip (extract into images/) from HF Intel/COCO-Counterfactuals."
    fraction: ClassVar[float] = 0.3  # FSC-CLIP appendix A.2

    def select(self, n: int) -> list[int]:
        """Indices of the evaluated examples among ``n`` (seeded, in file order)."""
        fraction = float(self.options.get("fraction", self.fraction))
        if not 0.0 < fraction <= 1.0:
            raise UserError(f"{self.name}: option fraction must be in (0, 1], got {fraction}")
        k = min(n, math.floor(fraction * n + 0.5))
        if k == n:
            return list(range(n))
        return sorted(random.Random(int(self.options.get("seed", 0))).sample(range(n), k))

    def load_pool(self, data_root: str | Path) -> tuple[list[ImageRef], list[str], list[int]]:
        root = self.check(data_root)
        image_dir = Path(self.options.get("image_root", root / "images")).expanduser()
        ann = root / "examples.jsonl"
        examples = records(read_json(ann, self.name))
        chosen = self.select(len(examples))
        images, captions, owner, ids = [], [], [], []
        for n in chosen:
            rec = examples[n]
            fields = next((f for f in CAPTION_FIELDS if isinstance(rec, dict) and all(k in rec for k in f)), None)
            for k in (0, 1):
                stem = str(field(rec, f"image_{k}", ann, f"line {n + 1}", self.name))
                path = find_image(image_dir, stem) or find_image(image_dir / "images", stem)
                if path is None:
                    raise DataNotFoundError(f"{self.name}: image {stem!r} (line {n + 1}) not found in {image_dir}")
                images.append(ImageRef(path))
                key = fields[k] if fields else f"caption_{k}"
                captions.append(str(field(rec, key, ann, f"line {n + 1}", self.name)))
                owner.append(len(images) - 1)
            ids.append(rec.get("id", n))
        self._extra = {"n_examples_total": len(examples), "n_examples": len(chosen), "subset_ids": ids,
                       "subset_fraction": float(self.options.get("fraction", self.fraction)),
                       "subset_seed": int(self.options.get("seed", 0))}  # fmt: skip
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
