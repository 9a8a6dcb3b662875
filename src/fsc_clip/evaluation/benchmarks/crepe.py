"""CREPE productivity (RAIVNLab/CREPE): atom / swap / negate hard negatives over Visual Genome region crops.

Source: github.com/RAIVNLab/CREPE @ 1fa81c425f442396fe304f170c8eb6dc0747c814 (``crepe_prod_eval_clip.py``,
``crepe_eval_utils.py``): for each type, the official code evaluates ``<type>/prod_vg_hard_negs_<type>_complexity_
<4..12>.csv`` one file at a time, crops each row's region with ``TF.crop(image, y, x, height, width)`` (a PIL crop,
padded past the border) and ranks ``[caption, *hard_negs]`` (``hard_negs`` is a stringified Python list); R@1 is the
share of rows whose caption ranks first. No row is filtered.

Layout under ``<data_root>/crepe/``: ``prod_hard_negatives/{atom,swap,negate}/`` with the CSVs of
``data/prod_hard_negatives.zip`` (columns ``image_id, x, y, width, height, caption, hard_negs``); images in
``VG_100K/<image_id>.jpg`` or ``VG_100K_2/<image_id>.jpg`` (option ``vg_root``).

Files read (option ``files``): ``"complexity"`` (default, the official code's files) pools every per-complexity
CSV 4-12 present, falling back to ``prod_vg_hard_negs_<type>_all.csv`` when a folder has none; ``"all"`` reads the
``_all`` file. A type whose folder holds neither is skipped with a warning (its sub-score ``None``, the ``crepe``
column ``None``). The complexities read are recorded in the result's ``extra``.

Item counts: the per-complexity CSVs hold 16,727 / 6,652 / 16,336 atom / swap / negate rows, the FSC-CLIP / vl_compo
tables' denominators are 17,698 / 7,405 / 17,303. The official evaluation filters nothing, so no filter of the
per-complexity files can give more rows; the only other released files are the ``_all`` files, the likely source
(not verified: the zip was not readable here; see the docs' fidelity table).

Hard negatives identical to the caption (some swap rows list the caption itself) are dropped: such a candidate is
no negative, and under the strict tie policy it would make the item impossible to get right. The number dropped is
recorded in ``extra["identical_negatives_dropped"]``.
"""

from __future__ import annotations

import ast
import csv
import logging
import re
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError, UserError
from fsc_clip.evaluation.base import IMAGE_TO_TEXT, Benchmark, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, find_image

log = logging.getLogger(__name__)

TYPES = ("atom", "swap", "negate")
COMPLEXITIES = range(4, 13)
FILE_MODES = ("complexity", "all")
_SPACES = re.compile(r"\s+")


def same_text(a: str, b: str) -> bool:
    """Identical captions up to surrounding / repeated whitespace (which no text tokenizer keeps)."""
    return _SPACES.sub(" ", a).strip() == _SPACES.sub(" ", b).strip()


def parse_negatives(value: str, path: Path, index: int, what: str) -> list[str]:
    """The ``hard_negs`` cell (a stringified Python list), or a SchemaError naming file, row and field."""
    try:
        negs = ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise SchemaError(
            f"{what}: {path}: row {index}: field 'hard_negs' is not a Python list literal ({err})."
        ) from err
    if not isinstance(negs, (list, tuple)):
        raise SchemaError(f"{what}: {path}: row {index}: field 'hard_negs' is a {type(negs).__name__}, not a list.")
    return [str(n) for n in negs]


@BENCHMARKS.register("crepe")
class Crepe(Benchmark):
    """Options: ``vg_root`` (Visual Genome image root), ``files`` (``complexity`` | ``all``)."""

    name = "crepe"
    task = IMAGE_TO_TEXT
    description = "CREPE productivity: VG region crop vs caption + atom / swap / negate hard negatives (R@1)"
    expected_files = ("prod_hard_negatives/",)
    obtain = (
        "Unzip data/prod_hard_negatives.zip from github.com/RAIVNLab/CREPE into crepe/ (-> crepe/prod_hard_negatives/"
        "{atom,swap,negate}/*.csv) and put Visual Genome images in crepe/VG_100K/ and crepe/VG_100K_2/. Each type is "
        "optional: a missing one is skipped and the `crepe` column is then None."
    )
    sub_scores = TYPES

    def files(self, root: Path, kind: str) -> tuple[list[Path], list[str]]:
        """The CSVs read for one type and their labels (complexities or ``all``); empty if the type is absent."""
        mode = str(self.options.get("files", "complexity"))
        if mode not in FILE_MODES:
            raise UserError(f"{self.name}: option files={mode!r}; expected one of {', '.join(FILE_MODES)}.")
        folder = root / "prod_hard_negatives" / kind
        all_file = folder / f"prod_vg_hard_negs_{kind}_all.csv"
        if mode == "complexity":
            per = [(folder / f"prod_vg_hard_negs_{kind}_complexity_{c}.csv", str(c)) for c in COMPLEXITIES]
            per = [(p, c) for p, c in per if p.is_file()]
            if per:
                return [p for p, _ in per], [c for _, c in per]
        return ([all_file], ["all"]) if all_file.is_file() else ([], [])

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        root = self.check(data_root)
        vg_root = Path(self.options.get("vg_root", root))
        items: list[ImageToTextItem] = []
        images: dict[str, Path] = {}
        read: dict[str, list[str]] = {}
        dropped = 0
        for kind in TYPES:
            paths, labels = self.files(root, kind)
            if paths:
                read[kind] = labels
            for path in paths:
                for index, row in enumerate(self._rows(path)):
                    item, n_dropped = self._item(row, path, index, kind, vg_root, images)
                    items.append(item)
                    dropped += n_dropped
        missing = [k for k in TYPES if k not in read]
        if len(missing) == len(TYPES):
            raise DataNotFoundError(
                f"{self.name}: no CSV under {root / 'prod_hard_negatives'}/{{{','.join(TYPES)}}}/. {self.obtain}"
            )
        if missing:
            log.warning(
                "%s: type(s) %s missing (no CSV in %s): skipped; their sub-scores are None and the `%s` column "
                "is None.", self.name, ", ".join(missing), root / "prod_hard_negatives", self.name,
            )  # fmt: skip
        self._extra = {"files_read": read, "missing_parts": missing, "identical_negatives_dropped": dropped}
        return items

    @staticmethod
    def _rows(path: Path) -> list[dict[str, Any]]:
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def _item(
        self, row: dict, path: Path, index: int, kind: str, vg_root: Path, images: dict[str, Path]
    ) -> tuple[ImageToTextItem, int]:
        """One row -> (item, number of hard negatives dropped as identical to the caption)."""
        image_id = str(field(row, "image_id", path, index, self.name)).strip()
        if image_id not in images:
            found = find_image(vg_root / "VG_100K", image_id) or find_image(vg_root / "VG_100K_2", image_id)
            images[image_id] = self.require(found or vg_root / "VG_100K" / f"{image_id}.jpg")
        bbox = tuple(float(field(row, k, path, index, self.name)) for k in ("x", "y", "width", "height"))
        caption = str(field(row, "caption", path, index, self.name))
        negs = parse_negatives(field(row, "hard_negs", path, index, self.name), path, index, self.name)
        kept = [n for n in negs if not same_text(n, caption)]
        ref = ImageRef(images[image_id], bbox=bbox)  # type: ignore[arg-type]
        return ImageToTextItem(ref, [caption, *kept], 0, kind), len(negs) - len(kept)
