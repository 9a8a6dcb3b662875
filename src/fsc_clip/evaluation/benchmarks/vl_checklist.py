"""VL-CheckList (om-ai-lab/VL-CheckList): object / attribute / relation phrases, positive vs negative.

Source: github.com/om-ai-lab/VL-CheckList at commit 6f8d6a3281c401b89e4e154f46c6974ec2df3a82
(``vl_checklist/data_loader.py`` ``load_itc_samples``, ``vl_checklist/evaluate.py`` ITC branch, ``corpus.json``,
``configs/sample.yaml`` ``MAX_NUM: 2000``).

Layout under ``<data_root>/vl_checklist/``: the repository's ``corpus/v1/<Type>/.../<source>.yaml`` files
(``ANNO_PATH`` relative to ``vl_checklist/``, ``IMG_ROOT`` relative to ``vl_checklist/images/``), the
``data/**.json`` they point to (lists of ``[image_rel_path, {"POS": [...], "NEG": [...]}]``) and the images
(``images/vg/``, ``images/swig/``, ``images/hake/``, ...).

Protocol (official ITC with ``MAX_NUM: 2000``): per file the first 1000 items whose image exists, ``POS[0]`` vs
``NEG[0]``, correct iff strictly greater. A column (e.g. ``Object_Location_center`` from
``corpus/v1/Object/Location/center/``) is the mean over source corpora (yaml stem before ``_``: vg, swig, hake,
vaw) of the mean over that corpus' files, with the files of ``corpus.json`` (:data:`COLUMN_FILES`); the benchmark
column is mean(Object, Attribute, Relation) of the column means (§0).

Partial data: a yaml whose annotation file is absent, or none of whose images exist, is skipped with a warning; a
column missing one of its :data:`COLUMN_FILES` is reported as None (with the count of the items it did score)
rather than as a partial mean, and the benchmark column is then None. Items with an empty ``POS`` or ``NEG``
list are dropped (the official loader would fail on them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, read_json
from fsc_clip.evaluation.tasks import as_hit

log = logging.getLogger(__name__)

COLUMNS = (
    "Object_Location_center", "Object_Location_margin", "Object_Location_mid",
    "Object_Size_large", "Object_Size_medium", "Object_Size_small",
    "Attribute_action", "Attribute_color", "Attribute_material", "Attribute_size", "Attribute_state",
    "Relation_action", "Relation_spatial",
)  # fmt: skip
MAX_ITEMS = 1000
_OBJECT_FILES = ("vg_obj", "vg_subj", "swig_agent", "swig_destination", "swig_item", "swig_tool", "hake")
# The yaml stems each column averages over, as grouped in the official corpus.json.
COLUMN_FILES: dict[str, tuple[str, ...]] = {
    **{c: _OBJECT_FILES for c in COLUMNS if c.startswith("Object_")},
    **{c: ("vg", "vaw") for c in COLUMNS if c.startswith("Attribute_")},
    "Relation_action": ("vg", "swig", "hake"),
    "Relation_spatial": ("vg",),
}


def corpus_entries(corpus_dir: Path) -> list[tuple[str, str, Path]]:
    """``(column, source_file_key, yaml path)`` for every yaml under ``corpus/v1``, sorted for determinism."""
    out = []
    for path in sorted(corpus_dir.rglob("*.yaml")):
        column = "_".join(path.relative_to(corpus_dir).parent.parts)
        out.append((column, path.stem, path))
    return out


def _texts(record: Any, path: Path, index: int) -> tuple[str, dict]:
    """``(image_rel_path, {"POS": [...], "NEG": [...]})`` of one record, or a SchemaError naming it."""
    if not (isinstance(record, (list, tuple)) and len(record) == 2 and isinstance(record[1], dict)):
        raise SchemaError(
            f'vl_checklist: {path}: record {index} should be [image_path, {{"POS": [...], "NEG": [...]}}], '
            f"got {str(record)[:80]!r}. Re-copy data/ from github.com/om-ai-lab/VL-CheckList."
        )
    field(record[1], "POS", path, index, "vl_checklist")
    field(record[1], "NEG", path, index, "vl_checklist")
    return str(record[0]), record[1]


@BENCHMARKS.register("vl_checklist")
class VLCheckList(Benchmark):
    """Options: ``max_items`` per file (default 1000)."""

    name = "vl_checklist"
    task = IMAGE_TO_TEXT
    description = "VL-CheckList: object / attribute / relation phrase vs negative (per-source means)"
    expected_files = ("corpus/v1/", "data/", "images/")
    obtain = "Copy data/ and corpus/ from github.com/om-ai-lab/VL-CheckList; images per its DATASETS.md into images/."
    sub_scores = COLUMNS

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        limit = int(self.options.get("max_items", MAX_ITEMS))
        items: list[Item] = []
        skipped: list[str] = []
        for column, stem, path in corpus_entries(root / "corpus" / "v1"):
            if stem not in COLUMN_FILES.get(column, ()):
                log.warning("vl_checklist: %s is not in the official corpus.json grouping; ignored", path)
                continue
            found = self._file_items(root, column, stem, path, limit)
            if not found:
                skipped.append(f"{column}/{stem}")
            items.extend(found)
        self._extra = {"skipped_files": skipped}
        return items

    def _file_items(self, root: Path, column: str, stem: str, path: Path, limit: int) -> list[ImageToTextItem]:
        """The first ``limit`` items of one yaml's file whose image exists ([] with a warning if none can be read)."""
        import yaml

        spec = yaml.safe_load(path.read_text()) or {}
        anno = root / str(field(spec, "ANNO_PATH", path, "yaml", self.name))
        image_root = root / "images" / str(spec.get("IMG_ROOT", ""))
        if not anno.is_file():
            log.warning("vl_checklist: %s (from %s) not found: %s/%s skipped", anno, path, column, stem)
            return []
        category = f"{stem.split('_')[0]}/{stem}"  # "<source>/<file key>" for the per-source means in score()
        items: list[ImageToTextItem] = []
        for n, record in enumerate(read_json(anno, self.name)):
            if len(items) >= limit:
                break
            image_rel, texts = _texts(record, anno, n)
            image = image_root / image_rel
            if not image.is_file() or not texts["POS"] or not texts["NEG"]:
                continue  # the official loader drops items whose image is missing
            items.append(ImageToTextItem(ImageRef(image), [texts["POS"][0], texts["NEG"][0]], 0, column, category))
        if not items:
            log.warning("vl_checklist: no image of %s found under %s: %s/%s skipped", anno, image_root, column, stem)
        return items

    def score(self, items: Sequence[Item], outcomes: Mapping[str, Sequence]) -> tuple[dict, dict]:
        # column -> source -> file -> [hits, n]
        acc: dict[str, dict[str, dict[str, list[int]]]] = {}
        for i, it in enumerate(items):
            source, file = it.category.split("/", 1)
            cell = acc.setdefault(it.subset, {}).setdefault(source, {}).setdefault(file, [0, 0])
            cell[0] = cell[0] + as_hit(outcomes["correct"][i])  # a bool, or bootstrap replicates (stats)
            cell[1] += 1
        scores: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        for column in [c for c in COLUMNS if c in acc]:
            present = {file for files in acc[column].values() for file in files}
            missing = [f for f in COLUMN_FILES[column] if f not in present]
            counts[self.full(column)] = sum(n for files in acc[column].values() for _, n in files.values())
            if missing:  # never a partial mean: the column is None, the items it had are still counted
                log.warning("vl_checklist: %s lacks file(s) %s: reported as None", column, ", ".join(missing))
                scores[self.full(column)] = None
                continue
            per_source = [mean(100.0 * h / n for h, n in files.values()) for files in acc[column].values()]
            scores[self.full(column)] = mean(per_source)
        return scores, counts

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        group = lambda prefix: mean(scores.get(f"{cls.name}::{c}") for c in COLUMNS if c.startswith(prefix))  # noqa: E731
        return mean([group("Object_"), group("Attribute_"), group("Relation_")])
