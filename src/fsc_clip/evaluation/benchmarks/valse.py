"""VALSE (Heidelberg-NLP/VALSE): caption vs foil on 11 pieces, annotator-validated samples only.

Source: github.com/Heidelberg-NLP/VALSE @ 2152d90d4aecd11f7f74cf03420abcb63efff9c5 (``data/*.json``, README,
``lxmert_valse_eval.py``: ``if foil["mturk"]["caption"] >= 2``).

Layout under ``<data_root>/valse/``: ``data/<piece>.json`` (dict ``id -> {dataset, image_file, caption, foil,
mturk: {caption, foil, other}, ...}``) and the source images in ``images/<folder>/<image_file>`` (falling back
to ``images/<image_file>``). ``<folder>`` follows the record's ``dataset`` field, whose released values are
``visual7w``, ``coco2017`` (plurals), ``coco_2017`` (relations), ``SWiG``, ``VisDial_v1.0`` and ``FOIL dataset``
(with a space); each value is looked up under the folder names in :data:`IMAGE_FOLDERS` (first found wins).
Only samples with ``mturk.caption >= 2`` are used (every released record has ``mturk``; a record without it is a
schema error). The benchmark column is the mean of 7 pieces (counting, action and coreference averaged first; §0).
A piece whose JSON is absent is skipped with a warning; the ``valse`` column is then ``None``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, read_json, records

log = logging.getLogger(__name__)

PIECES = (
    "existence", "plurals", "counting-hard", "counting-small-quant", "counting-adversarial", "relations",
    "action-replacement", "actant-swap", "coreference-standard", "coreference-hard", "foil-it",
)  # fmt: skip
GROUPS = (
    ("existence",),
    ("plurals",),
    ("counting-hard", "counting-small-quant", "counting-adversarial"),
    ("relations",),
    ("action-replacement", "actant-swap"),
    ("coreference-standard", "coreference-hard"),
    ("foil-it",),
)


# ``dataset`` field value (as released) -> folder names under ``images/`` searched for its images, in order.
# The official config.py points these at visual7w/images, plurals|relations/test_images (COCO 2017),
# actions/images_512 (SWiG), VisDial images and COCO val2014 (FOIL-it).
IMAGE_FOLDERS: dict[str, tuple[str, ...]] = {
    "visual7w": ("visual7w",),
    "coco2017": ("coco2017", "coco_2017"),
    "coco_2017": ("coco2017", "coco_2017"),
    "SWiG": ("SWiG", "swig", "images_512"),
    "VisDial_v1.0": ("VisDial_v1.0", "visdial"),
    "FOIL dataset": ("FOIL dataset", "FOIL_dataset", "foil", "val2014"),
}


def image_folders(dataset: str) -> tuple[str, ...]:
    """Folders under ``images/`` searched for a record whose ``dataset`` field is ``dataset``."""
    return IMAGE_FOLDERS.get(dataset, (dataset,))


def folder_help() -> str:
    """One line naming the folders searched per ``dataset`` value (for errors and ``fsc-clip list``)."""
    return "; ".join(f"{ds!r} -> images/{{{', '.join(fs)}}}/" for ds, fs in IMAGE_FOLDERS.items())


def validated(rec: dict, threshold: int = 2, path: Path = Path("?"), key: str = "?") -> bool:
    """VALSE's validity filter: at least ``threshold`` of 3 annotators chose the caption (README, eval scripts)."""
    mturk = field(rec, "mturk", path, key, "valse")
    votes = field(mturk, "caption", path, f"{key}.mturk", "valse")
    try:
        return int(votes) >= threshold
    except (TypeError, ValueError) as err:
        raise SchemaError(f"valse: {path}: record {key!r}: mturk.caption={votes!r} is not a vote count.") from err


@BENCHMARKS.register("valse")
class VALSE(Benchmark):
    name = "valse"
    task = IMAGE_TO_TEXT
    description = "VALSE: caption vs foil on 11 linguistic pieces (validated samples; 7-piece mean)"
    expected_files = ("data/", "images/")
    obtain = (
        "Get data/*.json from github.com/Heidelberg-NLP/VALSE and the source images into valse/images/<folder>/, "
        "folder per record `dataset` field: " + folder_help() + " (or directly in valse/images/). Each piece is "
        "optional: a missing one is skipped and the `valse` column is then None."
    )
    sub_scores = PIECES

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        present = [p for p in PIECES if (root / "data" / f"{p}.json").is_file()]
        if not present:
            raise DataNotFoundError(f"{self.name}: no piece data/<piece>.json under {root}. {self.obtain}")
        missing = [p for p in PIECES if p not in present]
        if missing:
            log.warning(
                "%s: piece(s) %s missing under %s: skipped; their sub-scores are None and the `%s` column is None.",
                self.name, ", ".join(missing), root / "data", self.name,
            )  # fmt: skip
        self._extra = {"missing_parts": missing}
        items = []
        for piece in present:
            path = root / "data" / f"{piece}.json"
            for rec in records(read_json(path, self.name)):
                key = str(rec.get("_id", "?"))
                if not validated(rec, path=path, key=key):
                    continue
                image = self._image(root / "images", rec, path, key)
                texts = [field(rec, "caption", path, key, self.name), field(rec, "foil", path, key, self.name)]
                items.append(ImageToTextItem(ImageRef(image), texts, 0, piece))
        return items

    def _image(self, image_dir: Path, rec: dict, path: Path, key: str) -> Path:
        """``images/<folder>/<image_file>`` for the record's ``dataset`` folders, else ``images/<image_file>``."""
        name = field(rec, "image_file", path, key, self.name)
        dataset = str(field(rec, "dataset", path, key, self.name))
        cands = [image_dir / f / name for f in image_folders(dataset)] + [image_dir / name]
        found = next((p for p in cands if p.is_file()), None)
        if found is None:
            searched = ", ".join(str(c.parent) + "/" for c in cands)
            raise DataNotFoundError(
                f"{self.name}: {path}: record {key!r} (dataset {dataset!r}): image {name} not found in any of "
                f"{searched}. {self.obtain}"
            )
        return found

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        """Mean of the 7 groups' means; ``None`` if a piece is missing."""
        return mean(mean(scores.get(f"{cls.name}::{p}") for p in group) for group in GROUPS)
