"""EqBen (Wangt-CN/EqBen): 2 images x 2 captions with "visual-minimal" changes, 7 subsets.

Source: github.com/Wangt-CN/EqBen at commit ab6c79a3c34656f6a882b4e49439febd6fe313f8 (README "Data Download",
``src/eqben/eqben_utils.py``, ``evaluate_eqben_locally.py``).

Annotation layouts accepted under ``<data_root>/eqben/`` (first one found wins; option ``annotation`` names a file):

1. **As released** (README, UPDATE-2023-09): the original, Winoground-style annotation ``private_info_global.json``
   (also looked up in ``ann_json/`` and ``annotation/``): a JSON list of ``{image0, caption0, image1, caption1}``
   records (``image_0`` / ``caption_0`` spellings accepted). A record's subset is its ``dataset`` / ``subset``
   field if present, else the first folder of its image path (``eqbenag/...`` -> ``ag``), the folder names the
   official ``EqBenALL`` loader dispatches on. The official 10 % subset ``eqben_subset_10percent_final.json`` has
   the same layout (pass it with ``annotation=``).
2. **The randomized release + the CodaLab key** (the official scoring path of ``evaluate_eqben_locally.py``):
   ``ann_json_finegrained_random.json`` (a list of ``{image, caption}`` pairs in random order) with
   ``private_random_idx.json`` (random position -> original position) and ``private_info.json`` (per original
   position ``{dataset, name: c0i0|c0i1|c1i0|c1i1, sample_cnt}``), from the repository's ``src_file/``; looked up
   in ``eqben/`` and ``eqben/src_file/``. The 2x2 samples are rebuilt from the ``c0i0`` and ``c1i1`` entries.
3. **Per-subset files** (accepted alternative; the names are ours): ``ann_json/eqben<subset>.json`` in the formats
   of the official per-subset loaders: ag = ``{video: {subject: [record]}}`` with caption *lists* (the first
   caption is used, as ``EqBenAG``); youcook2 / gebc = ``{video: [record]}``; kubric_* / sd = ``[record]``.

Images: ``image/<image path>`` (``images/`` accepted; option ``image_dir``). YouCook2 frames are ``.npy`` BGR
arrays (flipped to RGB, as the official ``process_img_npy``). For the "light" release (png converted to jpg) a
``.png`` path that does not exist is read as ``.jpg``, the path edit the README asks for.

Protocol (FSC-CLIP, appendix A.2): each subset is capped at ``max_per_subset`` = 20,000 samples, drawn without
replacement with ``random.Random("eqben:<subset>:<seed>")`` (default seed 0) and kept in file order; the full
subset sizes, the cap and the seed are written to ``extra``, the scored counts to ``counts``. ``max_per_subset=0``
scores every sample (vl_compo's tables use the full set: ag 195,872, youcook2 45,849, ...). Scoring: Winoground
text / image / group with strict ``>`` (``cal_wino_score`` of ``evaluate_eqben_locally.py``). Sub-scores
``eqben<subset>::text|image|group``; the benchmark column is the mean over youcook2, gebc, ag, sd and kubric (= mean
of the 3 kubric subsets) of the **group** score (vl_compo individual_results.csv), so only the 7 group scores are
required.
A subset whose images are all absent is skipped with a warning (its sub-scores are None, and so is the column).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, read_json

log = logging.getLogger(__name__)

SUBSETS = ("youcook2", "gebc", "ag", "kubric_loc", "kubric_cnt", "kubric_attr", "sd")
RELEASED = ("private_info_global.json", "ann_json/private_info_global.json", "annotation/private_info_global.json")
RANDOMIZED = ("ann_json_finegrained_random.json", "private_random_idx.json", "private_info.json")
IMAGE_DIRS = ("image", "images")
MAX_PER_SUBSET = 20_000  # FSC-CLIP appendix A.2
KEYS = {"image0": ("image0", "image_0"), "image1": ("image1", "image_1"),
        "caption0": ("caption0", "caption_0"), "caption1": ("caption1", "caption_1")}  # fmt: skip

Pair = tuple[str, str, str, str]  # image0, image1, caption0, caption1 (as in the file)


def _first(caption: Any) -> str:
    return str(caption[0]) if isinstance(caption, list) else str(caption)


def _pair(rec: Any, path: Path, index: int | str) -> Pair:
    """One record's images and captions (first caption of a list, as the official AG loader)."""

    def get(key: str) -> Any:
        found = next((k for k in KEYS[key] if isinstance(rec, dict) and k in rec), key)
        return field(rec, found, path, index, "eqben")

    return str(get("image0")), str(get("image1")), _first(get("caption0")), _first(get("caption1"))


def _subset_of(rec: dict, image0: str) -> str:
    """Subset of a released record: its dataset field, else the first folder of the image path, minus "eqben"."""
    name = str(rec.get("dataset") or rec.get("subset") or image0.replace("\\", "/").split("/")[0])
    return name[len("eqben") :] if name.startswith("eqben") else name


def read_released(path: Path) -> dict[str, list[Pair]]:
    """The released Winoground-style list -> ``{subset: [pair]}`` (file order)."""
    data = read_json(path, "eqben")
    if not isinstance(data, list):
        raise SchemaError(f"eqben: {path} should be a JSON list of {{image0, caption0, image1, caption1}} records.")
    out: dict[str, list[Pair]] = {}
    for n, rec in enumerate(data):
        pair = _pair(rec, path, n)
        out.setdefault(_subset_of(rec, pair[0]), []).append(pair)
    return out


def read_randomized(ann: Path, idx_path: Path, info_path: Path) -> dict[str, list[Pair]]:
    """Rebuild ``{subset: [pair]}`` from the randomized annotation as ``evaluate_eqben_locally.py`` regroups it.

    Random entry ``j`` sits at original position ``private_random_idx[j]`` (the script's ``argsort`` recovery);
    ``private_info[k]`` names the subset, the cell (``c0i0`` = caption0 with image0, ...) and the sample of
    original position ``k``.
    """
    entries, order, info = read_json(ann, "eqben"), read_json(idx_path, "eqben"), read_json(info_path, "eqben")
    if not (isinstance(entries, list) and isinstance(order, list) and isinstance(info, list)):
        raise SchemaError(f"eqben: {ann}, {idx_path} and {info_path} should each hold a JSON list.")
    if not len(entries) == len(order) == len(info) or sorted(order) != list(range(len(order))):
        raise SchemaError(
            f"eqben: {ann} ({len(entries)} entries), {idx_path} ({len(order)}) and {info_path} ({len(info)}) do "
            "not belong together (sizes differ or the index is no permutation)."
        )
    at = {pos: j for j, pos in enumerate(order)}  # original position -> random entry
    cells: dict[int, dict[str, Any]] = {}
    for k, meta in enumerate(info):
        cell = str(field(meta, "name", info_path, k, "eqben"))
        if cell in ("c0i0", "c1i1"):
            entry = entries[at[k]]
            sample = cells.setdefault(int(field(meta, "sample_cnt", info_path, k, "eqben")), {})
            sample["subset"] = str(field(meta, "dataset", info_path, k, "eqben"))
            image, caption = field(entry, "image", ann, at[k], "eqben"), field(entry, "caption", ann, at[k], "eqben")
            sample[cell] = (str(image), caption)
    out: dict[str, list[Pair]] = {}
    for cnt in sorted(cells):
        sample = cells[cnt]
        if "c0i0" not in sample or "c1i1" not in sample:
            raise SchemaError(f"eqben: {info_path}: sample_cnt {cnt} lacks its c0i0 or c1i1 entry.")
        (im0, c0), (im1, c1) = sample["c0i0"], sample["c1i1"]
        subset = sample["subset"][len("eqben") :] if sample["subset"].startswith("eqben") else sample["subset"]
        out.setdefault(subset, []).append((im0, im1, _first(c0), _first(c1)))
    return out


def _nested(subset: str, data: Any, path: Path) -> list[tuple[str, Any]]:
    """Flatten a per-subset file's native nesting into ``(record id, record)``."""
    try:
        if subset == "ag":
            return [(f"{v}/{s}[{i}]", r) for v, sub in data.items() for s, rs in sub.items() for i, r in enumerate(rs)]
        if subset in ("youcook2", "gebc"):
            return [(f"{v}[{i}]", r) for v, recs in data.items() for i, r in enumerate(recs)]
        return list(enumerate(data))  # type: ignore[arg-type]
    except (AttributeError, TypeError) as err:
        raise SchemaError(f"eqben: {path} does not have the nesting of the official {subset} loader: {err}") from err


def read_per_subset(root: Path, subsets: tuple[str, ...]) -> dict[str, list[Pair]]:
    """Our per-subset files ``ann_json/eqben<subset>.json`` (missing files are skipped with a warning)."""
    out: dict[str, list[Pair]] = {}
    for subset in subsets:
        path = root / "ann_json" / f"eqben{subset}.json"
        if not path.is_file():
            log.warning("eqben: %s not found; subset %s skipped (its scores will be None)", path, subset)
            continue
        out[subset] = [_pair(rec, path, idx) for idx, rec in _nested(subset, read_json(path, "eqben"), path)]
    return out


def cap(pairs: list[Pair], limit: int, subset: str, seed: int) -> list[Pair]:
    """At most ``limit`` pairs, drawn without replacement (seeded per subset), in file order; 0 = no cap."""
    if not limit or len(pairs) <= limit:
        return pairs
    keep = sorted(random.Random(f"eqben:{subset}:{seed}").sample(range(len(pairs)), limit))
    return [pairs[i] for i in keep]


@BENCHMARKS.register("eqben")
class EqBen(Benchmark):
    """Options: ``annotation`` (file, relative to ``eqben/`` or absolute), ``subsets`` (default: all 7),
    ``image_dir`` (default ``eqben/image``), ``max_per_subset`` (default 20000; 0 = all), ``seed`` (default 0)."""

    name = "eqben"
    task = GROUP
    description = "EqBen: 2 images x 2 captions with minimal visual change (7 subsets, <= 20k each; group score)"
    expected_files = ("private_info_global.json (or ann_json/eqben<subset>.json)", "image/")  # shown; see check()
    obtain = (
        "Download the EqBen images (image tar or the light jpg version) into eqben/image/ and the original annotation "
        "private_info_global.json into eqben/ (links in the README of github.com/Wangt-CN/EqBen)."
    )
    sub_scores = tuple(f"eqben{s}::{m}" for s in SUBSETS for m in ("text", "image", "group"))
    required_sub_scores = tuple(f"eqben{s}::group" for s in SUBSETS)

    def annotation(self, root: Path) -> Path | None:
        """The released annotation file, or None when only per-subset files are present."""
        if "annotation" in self.options:
            return self.require(root / Path(self.options["annotation"]).expanduser())
        return next((root / rel for rel in RELEASED if (root / rel).is_file()), None)

    def randomized(self, root: Path) -> tuple[Path, Path, Path] | None:
        """The randomized annotation with its CodaLab key files, if all three are present."""
        found = [next((d / f for d in (root, root / "src_file", root / "ann_json") if (d / f).is_file()), None)
                 for f in RANDOMIZED]  # fmt: skip
        return (found[0], found[1], found[2]) if all(found) else None  # type: ignore[return-value]

    def check(self, data_root: str | Path) -> Path:
        root = self.require(self.root(data_root))
        per_subset = any((root / "ann_json").glob("eqben*.json"))
        if self.annotation(root) is None and self.randomized(root) is None and not per_subset:
            self.require(root / RELEASED[0])
        return root

    def read_pairs(self, root: Path, subsets: tuple[str, ...]) -> tuple[dict[str, list[Pair]], str]:
        """``({subset: [pair]}, which annotation)`` from the first layout present (see the module docstring)."""
        ann = self.annotation(root)
        if ann is not None:
            return read_released(ann), str(ann)
        randomized = self.randomized(root)
        if randomized is not None:
            return read_randomized(*randomized), str(randomized[0])
        return read_per_subset(root, subsets), "ann_json/eqben<subset>.json"

    def image_dir(self, root: Path) -> Path:
        if "image_dir" in self.options:
            return self.require(Path(self.options["image_dir"]).expanduser())
        return self.require(next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), root / IMAGE_DIRS[0]))

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        subsets = tuple(self.options.get("subsets", SUBSETS))
        pairs, source = self.read_pairs(root, subsets)
        for unknown in sorted(set(pairs) - set(SUBSETS)):
            log.warning("eqben: %d records of unknown subset %r (image folder eqben%s/): scored as eqben%s::*, not "
                        "part of the column", len(pairs[unknown]), unknown, unknown, unknown)  # fmt: skip
        limit, seed = int(self.options.get("max_per_subset", MAX_PER_SUBSET)), int(self.options.get("seed", 0))
        image_dir = self.image_dir(root)
        items: list[Item] = []
        sizes: dict[str, int] = {}
        for subset in [s for s in subsets if s in pairs] + sorted(set(pairs) - set(SUBSETS)):
            sizes[subset] = len(pairs[subset])
            items.extend(self._items(subset, cap(pairs[subset], limit, subset, seed), image_dir))
        self._extra = {"subset_sizes": sizes, "max_per_subset": limit, "seed": seed, "annotation": source}
        return items

    def _items(self, subset: str, pairs: list[Pair], image_dir: Path) -> list[GroupItem]:
        """Items of one subset; all images absent -> skipped with a warning, some absent -> DataNotFoundError."""
        refs: dict[str, ImageRef | None] = {}

        def ref(rel: str) -> ImageRef | None:
            if rel not in refs:
                path = image_dir / rel
                if not path.is_file() and path.suffix == ".png" and path.with_suffix(".jpg").is_file():
                    path = path.with_suffix(".jpg")  # the light release
                refs[rel] = ImageRef(path, bgr=path.suffix == ".npy") if path.is_file() else None
            return refs[rel]

        out, missing = [], []
        for im0, im1, c0, c1 in pairs:
            r0, r1 = ref(im0), ref(im1)
            if r0 is None or r1 is None:
                missing.append(im0 if r0 is None else im1)
                continue
            out.append(GroupItem((r0, r1), (c0, c1), f"eqben{subset}"))
        if missing and not out:
            log.warning("eqben: no image of subset %s under %s (e.g. %s): subset skipped, its scores are None",
                        subset, image_dir, missing[0])  # fmt: skip
        elif missing:
            raise DataNotFoundError(
                f"eqben: {len(missing)} of {len(pairs)} samples of subset {subset} lack an image under {image_dir}, "
                f"e.g. {missing[0]}: the image download is incomplete. {self.obtain}"
            )
        return out

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        g = lambda s: scores.get(f"{cls.name}::eqben{s}::group")  # noqa: E731
        kubric = mean(g(s) for s in ("kubric_loc", "kubric_cnt", "kubric_attr"))
        return mean([g("youcook2"), g("gebc"), g("ag"), g("sd"), kubric])
