"""SPEC (wjpoom/SPEC): 6 subsets x {image->texts, text->images} candidate selection.

Source: github.com/wjpoom/SPEC at commit ad982a42d023581fae256608a7f812ec1c64ef94 (``spec/dataset.py``,
``spec/eval.py``, ``spec/models/clip_wrapper.py``, README "prepare data").

Layout under ``<data_root>/spec/`` (``data.zip`` of the HF dataset ``wjpoom/SPEC`` extracted there; a top-level
``data/`` folder from the zip is accepted too): ``<subset>/image2text.json`` (a JSON list of ``{query: image path,
keys: [captions], label}``) and ``<subset>/text2image.json`` (``{query: caption, keys: [image paths], label}``);
image paths are relative to ``<subset>/`` as in the official ``Image2TextDataset`` (``spec/`` accepted too).
Scoring: the official ``argmax == label`` per subset and direction, with our tie rule (a tie is never a success).
Sub-scores ``<subset>::i2t`` / ``<subset>::t2i``; the benchmark column (FSC ``spec``) is the mean of the 12
accuracies (§0). A subset folder that is absent is skipped with a warning (its two sub-scores are None, and so is
the column); a record lacking ``query`` / ``keys`` / ``label`` raises a SchemaError naming file, record and field.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fsc_clip.evaluation.base import MIXED, Benchmark, ImageRef, ImageToTextItem, Item, TextToImageItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import field, read_json, records

log = logging.getLogger(__name__)

SUBSETS = ("absolute_size", "relative_size", "absolute_spatial", "relative_spatial", "existence", "count")
FILES = ("image2text.json", "text2image.json")


@BENCHMARKS.register("spec")
class SPEC(Benchmark):
    name = "spec"
    task = MIXED
    description = "SPEC: size / spatial / existence / count; image->K texts and text->K images (12 accuracies)"
    expected_files = tuple(f"{s}/{f}" for s in SUBSETS for f in FILES)
    obtain = "Download data.zip of the HF dataset wjpoom/SPEC and unzip it into spec/."
    sub_scores = tuple(f"{s}::{d}" for s in SUBSETS for d in ("i2t", "t2i"))

    def data_dir(self, data_root: str | Path) -> Path:
        """``spec/``, or ``spec/data/`` when the zip was extracted with its top-level folder."""
        root = self.root(data_root)
        nested = root / "data"
        has = lambda d: any((d / s / FILES[0]).is_file() for s in SUBSETS)  # noqa: E731
        return nested if not has(root) and has(nested) else root

    def check(self, data_root: str | Path) -> Path:
        root = self.data_dir(data_root)
        if not any((root / s / f).is_file() for s in SUBSETS for f in FILES):
            self.require(root / SUBSETS[0] / FILES[0])
        return root

    def _image(self, root: Path, subset: str, rel: str) -> ImageRef:
        cands = (root / subset / rel, root / rel)
        return ImageRef(self.require(next((p for p in cands if p.is_file()), cands[0])))

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        items: list[Item] = []
        for subset in SUBSETS:
            if not all((root / subset / f).is_file() for f in FILES):
                log.warning("spec: %s lacks %s: subset skipped (its scores are None)", root / subset, " / ".join(FILES))
                continue
            items.extend(self._subset(root, subset))
        return items

    def _subset(self, root: Path, subset: str) -> list[Item]:
        items: list[Item] = []
        path = root / subset / "image2text.json"
        for n, rec in enumerate(records(read_json(path, self.name))):
            get = lambda k: field(rec, k, path, n, self.name)  # noqa: E731, B023
            ref = self._image(root, subset, str(get("query")))
            items.append(ImageToTextItem(ref, [str(t) for t in get("keys")], int(get("label")), f"{subset}::i2t"))
        path = root / subset / "text2image.json"
        for n, rec in enumerate(records(read_json(path, self.name))):
            get = lambda k: field(rec, k, path, n, self.name)  # noqa: E731, B023
            refs = [self._image(root, subset, str(k)) for k in get("keys")]
            items.append(TextToImageItem(str(get("query")), refs, int(get("label")), f"{subset}::t2i"))
        return items
