"""SPEC (wjpoom/SPEC): 6 subsets x {image->texts, text->images} candidate selection.

Layout under ``<data_root>/spec/``: ``<subset>/image2text.json`` (records ``{query: image path, keys: [captions],
label}``) and ``<subset>/text2image.json`` (``{query: caption, keys: [image paths], label}``); image paths are
relative to ``<subset>/`` (or to ``spec/``). Sub-scores ``<subset>::i2t`` / ``<subset>::t2i``; the benchmark
column (FSC ``spec``) is the mean of the 12 accuracies (§0).
"""

from __future__ import annotations

from pathlib import Path

from fsc_clip.evaluation.base import MIXED, Benchmark, ImageRef, ImageToTextItem, Item, TextToImageItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import read_json, records

SUBSETS = ("absolute_size", "relative_size", "absolute_spatial", "relative_spatial", "existence", "count")


@BENCHMARKS.register("spec")
class SPEC(Benchmark):
    name = "spec"
    task = MIXED
    description = "SPEC: size / spatial / existence / count; image->K texts and text->K images (12 accuracies)"
    expected_files = tuple(f"{s}/{f}" for s in SUBSETS for f in ("image2text.json", "text2image.json"))
    obtain = "Download data.zip of the HF dataset wjpoom/SPEC and unzip it into spec/."
    sub_scores = tuple(f"{s}::{d}" for s in SUBSETS for d in ("i2t", "t2i"))

    def _image(self, root: Path, subset: str, rel: str) -> ImageRef:
        cands = (root / subset / rel, root / rel)
        return ImageRef(self.require(next((p for p in cands if p.is_file()), cands[0])))

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        items: list[Item] = []
        for subset in SUBSETS:
            for rec in records(read_json(root / subset / "image2text.json", self.name)):
                ref = self._image(root, subset, rec["query"])
                items.append(ImageToTextItem(ref, list(rec["keys"]), int(rec["label"]), f"{subset}::i2t"))
            for rec in records(read_json(root / subset / "text2image.json", self.name)):
                refs = [self._image(root, subset, k) for k in rec["keys"]]
                items.append(TextToImageItem(rec["query"], refs, int(rec["label"]), f"{subset}::t2i"))
        return items
