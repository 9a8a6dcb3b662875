"""ARO (mertyg/vision-language-models-are-bows): VG-Relation, VG-Attribution, COCO-Order, Flickr30k-Order.

Source: github.com/mertyg/vision-language-models-are-bows @ 81fdd20dc5b6f434aa5a4a971717bc80d1cedb0d
(``dataset_zoo/aro_datasets.py``, ``notebooks/Replicate ARO! VG-Relation, VG-Attribution.ipynb``).

Layout under ``<data_root>/aro/`` (each part is optional, see below):

- ``visual_genome_relation.json``, ``visual_genome_attribution.json`` (records with ``image_path``,
  ``bbox_x/y/w/h``, ``true_caption``, ``false_caption``, ``relation_name`` | ``attributes``) and the images
  in ``images/<image_path>`` (from ``vgr_vga_images.zip``);
- ``coco_karpathy_test.json`` + COCO 2014 images at ``<image>`` (e.g. ``val2014/COCO_val2014_....jpg``);
- ``flickr30k_test.json`` + ``flickr30k-images/<id>.jpg``.
(Options ``coco_root`` / ``flickr_root`` point the Order subsets at image roots elsewhere.)

Parts: a part whose annotation file is absent is skipped with a warning naming it (the Flickr30k images need a
manual request); its sub-score is ``None`` (count 0) and the ``aro`` column ``None``, never a mean of the parts
present.

Protocol (as ARO's code): VG-R / VG-A: the bbox crop (PIL ``crop``, padded past the border) vs
``[false, true]``. VG-R = macro accuracy over ``relation_name`` after dropping the notebook's 157 "symmetric"
relations (no count filter); VG-A = macro accuracy over ordered attribute pairs ``"<a0>_<a1>"`` with >= 25
items. Order: one item per caption, the pre-processed caption vs 4 seeded spaCy perturbations; plain (pooled)
accuracy. A perturbation identical to the caption is dropped: it is no negative, and ARO's ``argmax`` counts such
a tie for the caption (index 0), which dropping reproduces under our strict tie policy.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import field, read_json
from fsc_clip.evaluation.tasks import macro_accuracy, pooled_accuracy

log = logging.getLogger(__name__)

NOUN_TAGS = ("NN", "NNS", "NNP", "NNPS")
ADJ_TAGS = ("JJ", "JJR", "JJS")
SUBSETS = ("VG_Relation", "VG_Attribute", "Flickr30k_Order", "COCO_Order")
# part -> (annotation file, other paths the part needs); a part is present iff its annotation file is.
PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "VG_Relation": ("visual_genome_relation.json", ("images/",)),
    "VG_Attribute": ("visual_genome_attribution.json", ("images/",)),
    "Flickr30k_Order": ("flickr30k_test.json", ()),
    "COCO_Order": ("coco_karpathy_test.json", ()),
}
VG_FIELDS = {"VG_Relation": "relation_name", "VG_Attribute": "attributes"}
ORDER_ROOT_OPTION = {"Flickr30k_Order": "flickr_root", "COCO_Order": "coco_root"}


def pre_caption(caption: str, max_words: int = 30) -> str:
    """BLIP/ARO caption cleaning: lower-case, drop ``.!"()*#:;~``, squeeze spaces, keep ``max_words`` words."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption).rstrip("\n").strip(" ")
    words = caption.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else caption


def _trigrams(tokens: Sequence[str]) -> list[list[str]]:
    return [list(tokens[i : i + 3]) for i in range(0, len(tokens), 3)]


def perturb(doc: Any, np_rng: Any, py_rng: random.Random) -> list[str]:
    """ARO's four Order perturbations of one parsed caption, in ARO's order.

    1. shuffle nouns among nouns and adjectives among adjectives; 2. shuffle everything but nouns and
    adjectives; 3. shuffle within each trigram; 4. shuffle the trigrams. Tokens are spaCy's (ARO uses
    ``nltk.word_tokenize`` for 3-4; both split punctuation the Penn way).
    """
    import numpy as np

    tokens = np.array([t.text for t in doc], dtype=object)
    tags = [t.tag_ for t in doc]
    out = []
    a = tokens.copy()
    nouns = [i for i, tag in enumerate(tags) if tag in NOUN_TAGS]
    adjs = [i for i, tag in enumerate(tags) if tag in ADJ_TAGS]
    a[nouns] = np_rng.permutation(a[nouns])
    a[adjs] = np_rng.permutation(a[adjs])
    out.append(" ".join(a))
    b = tokens.copy()
    keep = set(nouns) | set(adjs)
    rest = [i for i in range(len(b)) if i not in keep]
    b[rest] = np_rng.permutation(b[rest])
    out.append(" ".join(b))
    tri = _trigrams(list(tokens))
    for t in tri:
        py_rng.shuffle(t)
    out.append(" ".join(" ".join(t) for t in tri))
    tri = _trigrams(list(tokens))
    py_rng.shuffle(tri)
    out.append(" ".join(" ".join(t) for t in tri))
    return out


def load_spacy() -> Any:
    """The shared spaCy pipeline of the negatives area (``en_core_web_sm`` or its republication)."""
    from fsc_clip.negatives.resources import load_spacy as _load

    return _load()


def excluded_relations() -> set[str]:
    """Relations the ARO code drops before macro-averaging VG-Relation (package data)."""
    text = (resources.files("fsc_clip") / "resources/evaluation/aro_vg_relation_excluded.txt").read_text()
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


@BENCHMARKS.register("aro")
class ARO(Benchmark):
    """Options: ``seed`` (Order perturbations, default 1 as in ARO), ``coco_root``, ``flickr_root``,
    ``min_attribute_count`` (default 25). Parts whose annotation file is absent are skipped (column ``None``)."""

    name = "aro"
    task = IMAGE_TO_TEXT
    description = "ARO: VG-Relation / VG-Attribution (bbox crops, macro) + COCO / Flickr30k Order (seeded spaCy)"
    expected_files: ClassVar[tuple[str, ...]] = (
        "visual_genome_relation.json",
        "visual_genome_attribution.json",
        "coco_karpathy_test.json",
        "flickr30k_test.json",
        "images/",
    )
    obtain = (
        "See github.com/mertyg/vision-language-models-are-bows (VG json + vgr_vga_images.zip -> images/; Karpathy "
        "test json from the BLIP bucket; COCO val2014/ and flickr30k-images/ under aro/). Each part is optional: "
        "a missing one is skipped and the `aro` column is then None."
    )
    sub_scores: ClassVar[tuple[str, ...]] = SUBSETS

    def parts(self, root: Path) -> list[str]:
        """The parts (of ``sub_scores``) whose annotation file is under ``root``."""
        return [p for p in self.sub_scores if (root / PARTS[p][0]).is_file()]

    def check(self, data_root: str | Path) -> Path:
        """At least one part must be present, and each present part complete; return the root."""
        root = self.root(data_root)
        present = self.parts(root)
        if not present:
            files = ", ".join(PARTS[p][0] for p in self.sub_scores)
            raise DataNotFoundError(
                f"{self.name}: none of its annotation files ({files}) is under {root}. {self.obtain} "
                "(run `fsc-clip list benchmarks` for the expected layout)."
            )
        for part in present:
            for rel in PARTS[part][1]:
                self.require(root / rel)
        return root

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        present = self.parts(root)
        missing = [p for p in self.sub_scores if p not in present]
        self._extra = {"missing_parts": missing}
        if missing:
            log.warning(
                "%s: part(s) %s missing (%s not under %s): skipped; their sub-scores are None and the `%s` column "
                "is None.", self.name, ", ".join(missing), ", ".join(PARTS[p][0] for p in missing), root, self.name,
            )  # fmt: skip
        items: list[Item] = []
        seed = int(self.options.get("seed", 1))
        for part in present:
            path = root / PARTS[part][0]
            if part in VG_FIELDS:
                items.extend(self._vg_items(read_json(path, self.name), root, path, part))
            else:
                image_root = Path(self.options.get(ORDER_ROOT_OPTION[part], root))
                items.extend(self._order_items(read_json(path, self.name), image_root, part, seed, path))
        return items

    def _vg_items(self, annotation: list[dict], root: Path, path: Path, subset: str) -> list[ImageToTextItem]:
        items = []
        for i, rec in enumerate(annotation):
            bbox = tuple(float(field(rec, k, path, i, self.name)) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
            image = self.require(root / "images" / field(rec, "image_path", path, i, self.name))
            cat = field(rec, VG_FIELDS[subset], path, i, self.name)
            cat = "_".join(cat) if isinstance(cat, list) else str(cat)  # ARO: f"{attributes[0]}_{attributes[1]}"
            texts = [field(rec, "false_caption", path, i, self.name), field(rec, "true_caption", path, i, self.name)]
            items.append(ImageToTextItem(ImageRef(image, bbox=bbox), texts, 1, subset, cat))  # type: ignore[arg-type]
        return items

    def _order_items(
        self, annotation: list[dict], image_root: Path, subset: str, seed: int, path: Path
    ) -> list[ImageToTextItem]:
        import numpy as np

        np_rng, py_rng = np.random.RandomState(seed), random.Random(seed)
        pairs = [
            (field(rec, "image", path, i, self.name), cap)
            for i, rec in enumerate(annotation)
            for cap in field(rec, "caption", path, i, self.name)
        ]
        nlp = load_spacy()
        items = []
        refs: dict[str, ImageRef] = {}
        for (image, caption), doc in zip(pairs, nlp.pipe([c for _, c in pairs], batch_size=256)):
            if image not in refs:
                refs[image] = ImageRef(self.require(image_root / image))
            positive = pre_caption(caption)
            negatives = [pre_caption(p) for p in perturb(doc, np_rng, py_rng)]
            texts = [positive, *(n for n in negatives if n != positive)]
            items.append(ImageToTextItem(refs[image], texts, 0, subset))
        return items

    def score(self, items: Sequence[Item], outcomes: Mapping[str, Sequence]) -> tuple[dict, dict]:
        min_attr = int(self.options.get("min_attribute_count", 25))
        excluded = excluded_relations()
        rel_idx = [i for i, it in enumerate(items) if it.subset == "VG_Relation" and it.category not in excluded]
        att_idx = [i for i, it in enumerate(items) if it.subset == "VG_Attribute"]
        order_idx = [i for i, it in enumerate(items) if it.subset.endswith("_Order")]
        scores, counts = {}, {}
        for idx, fn in ((rel_idx, lambda its, oc: macro_accuracy(self.name, its, oc)),
                        (att_idx, lambda its, oc: macro_accuracy(self.name, its, oc, min_count=min_attr)),
                        (order_idx, lambda its, oc: pooled_accuracy(self.name, its, oc))):  # fmt: skip
            sub_items = [items[i] for i in idx]
            sub_out = {k: [v[i] for i in idx] for k, v in outcomes.items()}
            s, c = fn(sub_items, sub_out)
            scores.update(s)
            counts.update(c)
        order = [self.full(s) for s in SUBSETS if self.full(s) in scores]
        return {k: scores[k] for k in order}, {k: counts[k] for k in order}
