"""VL-CheckList (om-ai-lab/VL-CheckList): object / attribute / relation phrases, positive vs negative.

Layout under ``<data_root>/vl_checklist/``: the repository's ``corpus/v1/<Type>/.../<source>.yaml`` files
(``ANNO_PATH`` relative to ``vl_checklist/``, ``IMG_ROOT`` relative to ``vl_checklist/images/``), the
``data/**.json`` they point to (lists of ``[image_rel_path, {"POS": [...], "NEG": [...]}]``) and the images
(``images/vg/``, ``images/swig/``, ``images/hake/``, ...).

Protocol (official ITC with ``MAX_NUM: 2000``): per file the first 1000 items whose image exists, ``POS[0]`` vs
``NEG[0]``. A column (e.g. ``Object_Location_center`` from ``corpus/v1/Object/Location/center/``) is the mean
over source corpora (yaml stem before ``_``: vg, swig, hake, vaw) of the mean over that corpus' files; the
benchmark column is mean(Object, Attribute, Relation) of the column means (§0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import read_json

COLUMNS = (
    "Object_Location_center", "Object_Location_margin", "Object_Location_mid",
    "Object_Size_large", "Object_Size_medium", "Object_Size_small",
    "Attribute_action", "Attribute_color", "Attribute_material", "Attribute_size", "Attribute_state",
    "Relation_action", "Relation_spatial",
)  # fmt: skip
MAX_ITEMS = 1000


def corpus_entries(corpus_dir: Path) -> list[tuple[str, str, Path]]:
    """``(column, source_file_key, yaml path)`` for every yaml under ``corpus/v1``, sorted for determinism."""
    out = []
    for path in sorted(corpus_dir.rglob("*.yaml")):
        column = "_".join(path.relative_to(corpus_dir).parent.parts)
        out.append((column, path.stem, path))
    return out


@BENCHMARKS.register("vl_checklist")
class VLCheckList(Benchmark):
    """Options: ``max_items`` per file (default 1000)."""

    name = "vl_checklist"
    task = IMAGE_TO_TEXT
    description = "VL-CheckList: object / attribute / relation phrase vs negative (per-source means)"
    expected_files = ("corpus/v1/", "data/", "images/")
    obtain = "Copy data/ and corpus/ from github.com/om-ai-lab/VL-CheckList; images per its DATASETS.md into images/."
    sub_scores = COLUMNS

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        import yaml

        root = self.check(data_root)
        limit = int(self.options.get("max_items", MAX_ITEMS))
        items = []
        for column, stem, path in corpus_entries(root / "corpus" / "v1"):
            spec = yaml.safe_load(path.read_text()) or {}
            anno = root / str(spec["ANNO_PATH"])
            image_root = root / "images" / str(spec.get("IMG_ROOT", ""))
            kept = 0
            for image_rel, texts in read_json(anno, self.name):
                if kept >= limit:
                    break
                image = image_root / image_rel
                if not image.is_file() or not texts.get("POS") or not texts.get("NEG"):
                    continue  # the official loader drops items whose image is missing
                kept += 1
                # category = "<source>/<file key>" for the per-source means in score()
                cat = f"{stem.split('_')[0]}/{stem}"
                items.append(ImageToTextItem(ImageRef(image), [texts["POS"][0], texts["NEG"][0]], 0, column, cat))
            if kept == 0:
                self.require(image_root)
        return items

    def score(self, items: Sequence[Item], outcomes: dict[str, Sequence]) -> tuple[dict, dict]:
        # column -> source -> file -> [hits, n]
        acc: dict[str, dict[str, dict[str, list[int]]]] = {}
        for i, it in enumerate(items):
            source, file = it.category.split("/", 1)
            cell = acc.setdefault(it.subset, {}).setdefault(source, {}).setdefault(file, [0, 0])
            cell[0] += int(bool(outcomes["correct"][i]))
            cell[1] += 1
        scores, counts = {}, {}
        for column in [c for c in COLUMNS if c in acc] + sorted(c for c in acc if c not in COLUMNS):
            per_source = [mean(100.0 * h / n for h, n in files.values()) for files in acc[column].values()]
            scores[self.full(column)] = mean(per_source)
            counts[self.full(column)] = sum(n for files in acc[column].values() for _, n in files.values())
        return scores, counts

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        group = lambda prefix: mean(scores[f"{cls.name}::{c}"] for c in COLUMNS if c.startswith(prefix))  # noqa: E731
        return mean([group("Object_"), group("Attribute_"), group("Relation_")])
