"""COLA (arijitray1993/COLA): attribute-object binding, as text-to-image retrieval. Two settings, two benchmarks.

Source: github.com/arijitray1993/COLA @ 1fa52fba9cff4e6ffb7bfcf3550838748347273b (README, ``scripts/eval.py``).

``cola``, the multi-object setting (``data/COLA_multiobjects_matching_benchmark.json``: a list of 210
``[image_1_url, caption_1, image_2_url, caption_2]``, caption k belongs to image k; ``ColaMultiObjAcc``). The image
URLs end in ``<visual genome id>.jpg`` (``https://cs-people.bu.edu/array/data/vg_gqa_images/2414605.jpg``). Layout
under ``<data_root>/cola/``: the JSON under ``data/`` and ``images/<vg id>.jpg`` (the files the URLs name, saved under
their own names). Score: ``ColaMultiObjAcc`` is *text-to-image* matching: an item is right iff
``s(c0, i0) > s(c0, i1)`` and ``s(c1, i1) > s(c1, i0)`` (strict; a tie is never a success), which is the Winoground
*image* score of the 2x2 item. The column is that accuracy (``image``); the Winoground ``text`` and ``group`` scores of
the same items are reported beside it.

``cola_single``, the single-object setting (GQA / CLEVR / PACO, mAP on hard images): see :class:`ColaSingle`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from fsc_clip.evaluation.base import GROUP, Benchmark, BenchmarkOutput, Embedder, GroupItem, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, read_json, require_images
from fsc_clip.evaluation.stats import RESCORERS, OutcomeTable, Replicates

log = logging.getLogger(__name__)

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


# ----- single-object setting ------------------------------------------------------------------------------------
SINGLE_PARTS = ("GQA", "CLEVR", "PACO")
SINGLE_FILE = "data/COLA_singleobjects_benchmark_{}.json"
N_LABELS_PUBLISHED = 320  # README "Single Objects setting": the 320 multi-attribute object classes


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Binary average precision ``sum_i (R_i - R_{i-1}) P_i`` over the distinct scores, from the highest down.

    Tied scores form one threshold (they are retrieved together), as in ``torchmetrics.functional.average_precision``
    (binary), which ``ColaSingleObjAP`` calls, and in scikit-learn's ``average_precision_score``.

    Args:
        scores: ``[N]`` image scores of one class query.
        labels: ``[N]`` 0/1, whether the class is in the image; at least one 1.
    """
    order = np.argsort(-scores, kind="stable")
    ordered, hits = scores[order], labels[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]  # last position of each distinct score
    tp = np.cumsum(hits)[last]
    fp = np.cumsum(1.0 - hits)[last]
    precision, recall = tp / (tp + fp), tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def class_aps(scores: np.ndarray, labels: np.ndarray, hard: np.ndarray) -> tuple[list[float], dict[str, int]]:
    """``ColaSingleObjAP`` before its mean: per class, the AP over the class's hard images.

    Args:
        scores: ``[N_img, C]`` image-class similarities.
        labels: ``[N_img, C]`` 0/1 class present.
        hard: ``[N_img, C]`` 0/1 the image is in the class's hard set.

    Returns:
        The APs of the scored classes and how many classes were skipped, by reason: ``no_image`` (no image has the
        class) and ``no_hard`` (no hard image), both skipped by ``ColaSingleObjAP``, and ``no_positive`` (no hard
        image has the class: AP is undefined there; the official code would average a NaN).
    """
    aps: list[float] = []
    skipped = {"no_image": 0, "no_hard": 0, "no_positive": 0}
    for c in range(scores.shape[1]):
        rows = np.flatnonzero(hard[:, c] == 1)
        reason = "no_image" if labels[:, c].sum() == 0 else "no_hard" if not len(rows) else ""
        if not reason and labels[rows, c].sum() == 0:
            reason = "no_positive"
        if reason:
            skipped[reason] += 1
            continue
        aps.append(average_precision(scores[rows, c], labels[rows, c]))
    return aps, skipped


def single_image_path(root: Path, raw: str, image_dir: str | None) -> Path:
    """Where an ``image_file`` of the single-object files is: ``image_dir/<name>`` if given; a URL's file in
    ``images/``; else the path as written if it exists, relative to ``cola/`` if that exists, else ``images/<name>``."""
    name = Path(urlparse(raw).path).name
    if image_dir:
        return Path(image_dir).expanduser() / name
    if urlparse(raw).scheme in ("http", "https"):
        return root / "images" / name
    for cand in (Path(raw).expanduser(), root / raw.lstrip("/")):
        if cand.is_file():
            return cand
    return root / "images" / name


@BENCHMARKS.register("cola_single")
class ColaSingle(Benchmark):
    """COLA single-object setting: text-to-image retrieval of multi-attribute object classes, mAP on hard images.

    Source: github.com/arijitray1993/COLA @ 1fa52fba9cff4e6ffb7bfcf3550838748347273b (README "Single Objects setting";
    ``scripts/eval.py: ColaSingleObjAP`` and its ``__main__`` example). Files
    ``data/COLA_singleobjects_benchmark_{GQA,CLEVR,PACO}.json``: the README describes a JSON with keys ``labels`` (the
    class names, e.g. "square white plate") and ``data``; ``eval.py`` indexes the same file as ``[labels, data]``;
    both are read. A ``data`` entry is ``[image_file, objects_attributes_annotation, label, hard_list]``
    (``label`` / ``hard_list``: 0/1 per class); the README says the annotation is absent in the PACO file, so a
    3-entry ``[image_file, label, hard_list]`` is read too.

    Score (``ColaSingleObjAP``): every image scored against every class name (cosine similarity); per class, the AP
    (:func:`average_precision`) of the class's scores over the images whose ``hard_list`` is 1; the mean over classes,
    skipping a class that no image has or that has no hard image, as the official code does. A class whose hard
    images all lack it has no defined AP: it is skipped too and counted in ``extra`` (the official code would
    average a NaN). Sub-scores ``<part>::mAP`` (percent; count = classes averaged); the column is the mean of the
    three (the paper reports them side by side). A part whose file is absent is skipped with a warning (its
    sub-score None, and the column None). Bootstrap intervals resample the *images* of each part (an image keeps its
    labels and hard flags; a class whose hard positives are all left out of a replicate is left out of that
    replicate's mean), rescored by :func:`rescore_class_ap`.

    Layout under ``<data_root>/cola/``: the three JSON files under ``data/`` and the images they name: a URL's file
    (or a path that does not exist as written) is looked up by file name in ``images/``; option ``image_dir``
    looks every image up by file name there.
    """

    name = "cola_single"
    subdir = "cola"
    task = "retrieval"
    kind = "compositional_2025"
    description = "COLA single-object: text-to-image mAP of attribute-object classes on hard images (GQA, CLEVR, PACO)"
    expected_files = tuple(SINGLE_FILE.format(p) for p in SINGLE_PARTS)
    obtain = (
        "Get data/COLA_singleobjects_benchmark_{GQA,CLEVR,PACO}.json from github.com/arijitray1993/COLA into "
        "cola/data/ and the images they name (Visual Genome, CLEVR, PACO) into cola/images/ (or pass the option "
        "image_dir)."
    )
    sub_scores = tuple(f"{p}::mAP" for p in SINGLE_PARTS)

    def check(self, data_root: str | Path) -> Path:
        root = self.root(data_root)
        if not any((root / f).is_file() for f in self.expected_files):
            self.require(root / self.expected_files[0])
        return root

    def read_part(self, root: Path, part: str) -> tuple[list[str], list[ImageRef], np.ndarray, np.ndarray]:
        """``(class names, images, labels [N_img, C], hard [N_img, C])`` of one file."""
        path = root / SINGLE_FILE.format(part)
        data = read_json(path, self.name)
        if isinstance(data, dict) and "labels" in data and "data" in data:
            names, rows = data["labels"], data["data"]
        elif isinstance(data, list) and len(data) == 2 and all(isinstance(x, list) for x in data):
            names, rows = data
        else:
            raise SchemaError(f"{self.name}: {path} is neither {{'labels': [...], 'data': [...]}} nor [labels, data]. "
                              "Re-download it from github.com/arijitray1993/COLA.")  # fmt: skip
        if not (names and all(isinstance(n, str) for n in names)):
            raise SchemaError(f"{self.name}: {path}: 'labels' is not a non-empty list of class names.")
        refs: dict[Path, ImageRef] = {}
        images, labels, hard = [], [], []
        for i, row in enumerate(rows):
            if not (isinstance(row, list) and len(row) in (3, 4) and isinstance(row[0], str)):
                raise SchemaError(f"{self.name}: {path}: data[{i}] is not [image_file, objects_attributes_annotation, "
                                  f"label, hard_list] (got {str(row)[:120]!r}).")  # fmt: skip
            image = single_image_path(root, row[0], self.options.get("image_dir"))
            images.append(refs.setdefault(image, ImageRef(image)))
            labels.append(self._vector(row[-2], len(names), path, i, "label"))
            hard.append(self._vector(row[-1], len(names), path, i, "hard_list"))
        return list(names), images, np.array(labels, dtype=np.int64), np.array(hard, dtype=np.int64)

    def _vector(self, value: Any, n: int, path: Path, index: int, what: str) -> list[int]:
        if not (isinstance(value, list) and len(value) == n and all(v in (0, 1) for v in value)):
            raise SchemaError(f"{self.name}: {path}: data[{index}] {what} is not a list of {n} 0/1 values (one per "
                              f"class in 'labels'; got {str(value)[:80]!r}).")  # fmt: skip
        return [int(v) for v in value]

    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        root = self.check(data_root)
        present = [p for p in SINGLE_PARTS if (root / SINGLE_FILE.format(p)).is_file()]
        if len(present) < len(SINGLE_PARTS):
            missing = [SINGLE_FILE.format(p) for p in SINGLE_PARTS if p not in present]
            log.warning("%s: %s not under %s: skipped (sub-score None, column None)", self.name, ", ".join(missing),
                        root)  # fmt: skip
        parts = {p: self.read_part(root, p) for p in present}
        require_images([img for _, imgs, _, _ in parts.values() for img in imgs], self.name, self.obtain)
        scores: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        extra: dict[str, Any] = {}
        per_item: list[OutcomeTable] = []
        for part, (names, images, labels, hard) in parts.items():
            img = embedder.images(images, desc=f"{self.name} {part}").double()  # [N_img, D]
            txt = embedder.texts(names, desc=f"{self.name} {part}").double()  # [C, D]
            sims = (img @ txt.t()).numpy()  # [N_img, C] similarities
            aps, skipped = class_aps(sims, labels, hard)
            key = self.full(f"{part}::mAP")
            per_item.append(class_ap_table(key, part, sims, labels, hard))
            scores[key], counts[key] = (100.0 * float(np.mean(aps)) if aps else None), len(aps)
            extra[part] = {"n_images": len(images), "n_labels": len(names), "classes_skipped": skipped}
            if len(names) != N_LABELS_PUBLISHED:  # recorded in the result: not the released file
                extra["n_labels_published"] = N_LABELS_PUBLISHED
        out = self.finish(scores, counts, extra)
        out.per_item = per_item
        return out


def class_ap_table(key: str, part: str, sims: np.ndarray, labels: np.ndarray, hard: np.ndarray) -> OutcomeTable:
    """Outcome table of one COLA single-object part: units are images (resampled together with their flags)."""
    arrays: dict[str, np.ndarray] = {
        "scores": sims.astype(np.float64),  # [N_img, C]: needed to rescore, so always saved (not candidate-only)
        "labels": labels.astype(np.int8),
        "hard": hard.astype(np.int8),
    }
    return OutcomeTable("class_ap", np.zeros(len(sims), dtype=np.int64), arrays, {"key": key}, name=part)


def _class_ap_plan(table: OutcomeTable) -> dict[str, np.ndarray]:
    """Per class, the images in descending score order (non-hard images last) and where each one's tie group ends.

    Computed once per table: a replicate only changes how often each image occurs, never the order, so AP of any
    resample is a weighted cumulative sum over this fixed order.
    """
    cached = table.meta.get("_plan")
    if cached is not None:
        return cached
    a = table.arrays
    hard = a["hard"].astype(bool)
    scores = np.where(hard, a["scores"], -np.inf)  # [N, C]
    order = np.argsort(-scores, axis=0, kind="stable")  # [N, C]
    ordered = np.take_along_axis(scores, order, axis=0)
    n = len(scores)
    is_end = np.ones_like(ordered, dtype=bool)
    is_end[:-1] = ordered[:-1] != ordered[1:]  # last position of each run of equal scores
    ends = np.where(is_end, np.arange(n)[:, None], n)
    group_end = np.minimum.accumulate(ends[::-1], axis=0)[::-1]  # [N, C] end of each position's tie group
    positive = (a["labels"].astype(bool) & hard)[order, np.arange(scores.shape[1])]
    negative = (~a["labels"].astype(bool) & hard)[order, np.arange(scores.shape[1])]
    scored = np.array([bool(((a["labels"][:, c] == 1) & hard[:, c]).any()) for c in range(scores.shape[1])])
    plan = {"order": order, "group_end": group_end, "positive": positive, "negative": negative, "scored": scored}
    table.meta["_plan"] = plan
    return plan


@RESCORERS.register("class_ap")
def rescore_class_ap(_bench: Any, table: OutcomeTable, idx: np.ndarray) -> Replicates:
    """mAP (percent) of each resample ``idx [r, N]`` of images, with tie groups as :func:`average_precision`."""
    plan = _class_ap_plan(table)
    n = table.n_units
    out = np.empty(len(idx))
    for row, draw in enumerate(idx):
        weight = np.bincount(draw, minlength=n).astype(np.float64)[plan["order"]]  # [N, C] multiplicity, ranked
        tp = np.cumsum(weight * plan["positive"], axis=0)  # [N, C]
        fp = np.cumsum(weight * plan["negative"], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.take_along_axis(tp / (tp + fp), np.minimum(plan["group_end"], n - 1), axis=0)
            hits = weight * plan["positive"]
            ap = np.where(hits > 0, hits * precision, 0.0).sum(axis=0) / tp[-1]  # [C]; NaN where no positive drawn
        ap = ap[plan["scored"] & (tp[-1] > 0)]
        out[row] = 100.0 * ap.mean() if len(ap) else np.nan
    return {table.meta["key"]: out}
