"""The 21 zero-shot classification tasks of the published tables (20 ELEVATER tasks + ImageNet-1k).

Each task is one benchmark ``zs-<task>`` (``kind="zeroshot"``, so ``--benchmarks zeroshot`` runs all 21) whose
single sub-score has the published name ``elevator::<task>`` (vl_compo spells the prefix "elevator"). Class
names, prompt templates and the metric of every task are package data
(``fsc_clip/resources/zeroshot/<task>.json``, from ELEVATER's ``prompts.py`` / dataset configs, which copy
OpenAI CLIP's ``prompts.md``).

Data layout, under ``<data_root>/elevater/<task>/`` (the task name is the published column name, e.g.
``cifar10``, ``imagenet-1k``, ``voc2007classification``); the first layout found is used:

1. **Labels file** ``test.txt`` (or ``test.tsv``, or the task's ELEVATER index file when it has another name:
   ``test_ic.txt`` for VOC 2007, ``test_images.txt`` for CIFAR-100), the vision-datasets "iris" format: one test
   image per line, ``<image path> <labels>`` (whitespace or a tab before the last field). ``<labels>`` is a
   0-based class index, or for multi-label tasks (VOC 2007) the comma-separated indices of all classes in the
   image. Paths are relative to the task folder; an ELEVATER / vision-datasets index path
   ``test.zip@dir/img.jpg`` is looked up as ``test/dir/img.jpg`` (the zip extracted to a folder named after it)
   or ``dir/img.jpg``.
2. **COCO-format index** as ELEVATER distributes four tasks (ImageNet-1k ``val.json``, KITTI-distance and
   Hateful-Memes ``test_meta.json``, RESISC45 ``test.json``): ``images`` (``id``, ``file_name``, optional
   ``zip_file``), ``annotations`` (``image_id``, ``category_id``) and ``categories`` (``id``); the class index
   is the position of the category id in sorted id order, as in vision-datasets' ``CocoManifestAdaptor``.
   Image paths resolve like ``<zip_file>@<file_name>`` above.
3. **Image folders** (torchvision ``ImageFolder`` style) ``test/<class>/<image>``, where ``<class>`` is the
   0-based class index (``7`` or ``007``) or the class name (case-insensitive, any run of spaces or
   punctuation may be written as ``_``). If the names are neither but there is exactly one folder per class
   (e.g. ImageNet's WNID folders ``n01440764/``), the sorted folder order gives the class index, as in
   torchvision's ``ImageFolder``. For a multi-label task, the same file name in several class folders means an
   image with several labels.

Class indices follow the class order of the task's JSON (ELEVATER's label order; CIFAR-100 is *not*
alphabetical).

Incomplete data is an error, not a silently smaller test set: an index file that lists images which are not on
disk, or image folders that lack some classes, raise :class:`DataNotFoundError` naming how many are missing and
which. The option ``allow_partial=True`` scores what is present instead (with a warning; the numbers of missing
images / classes are written to the result's ``extra``). A readable index whose records lack a field raises
:class:`SchemaError` naming the file, the record and the field.

Sources (checked entry by entry; recorded in every resource JSON's ``source``):
Computer-Vision-in-the-Wild/Elevater_Toolkit_IC@00d0af78559d5f3d800ae4668210e6bd1f2f84b9 (``prompts.py``, dataset
yamls, ``vision_datasets.json``), microsoft/vision-datasets@21d86a7219620b790b8a5fdaf9528e6934dd0f18
(``IRIS_DATA_FORMAT.md``, ``COCO_DATA_FORMAT.md``, ``image_classification/coco_manifest_adaptor.py``),
microsoft/vision-evaluation@37491aa97b91b99c627ab5bac6582c9161c14db9 (the metrics).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import Headline, add_headline, mean
from fsc_clip.evaluation.base import Benchmark, BenchmarkOutput, Embedder, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field, read_json

logger = logging.getLogger(__name__)

ZEROSHOT = "zeroshot"
SUBDIR = "elevater"
SCORE_PREFIX = "elevator"  # the published column prefix (sic)
LABEL_FILES = ("test.txt", "test.tsv")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ZeroShotTask:
    """One task's package data: classes, templates and metric."""

    name: str
    elevater_id: str
    title: str
    metric: str
    multilabel: bool
    test_size: int
    classnames: tuple[str, ...]
    templates: tuple[str, ...]
    index_format: str = "iris"  # how ELEVATER distributes the test index: "iris" (text lines) or "coco" (JSON)
    index_file: str = "test.txt"  # ELEVATER's test index file name (vision_datasets.json)
    archives: tuple[str, ...] = ()  # ELEVATER's test image zips


def _resource_dir():
    return resources.files("fsc_clip") / "resources" / "zeroshot"


@lru_cache(maxsize=1)
def task_names() -> tuple[str, ...]:
    """The 21 task names (published column order)."""
    return tuple(json.loads((_resource_dir() / "tasks.json").read_text(encoding="utf-8"))["tasks"])


@cache
def load_task(name: str) -> ZeroShotTask:
    """Read ``resources/zeroshot/<name>.json``."""
    if name not in task_names():
        raise KeyError(f"unknown zero-shot task {name!r}; known: {', '.join(task_names())}")
    d = json.loads((_resource_dir() / f"{name}.json").read_text(encoding="utf-8"))
    return ZeroShotTask(
        d["name"], d["elevater_id"], d["title"], d["metric"], bool(d["multilabel"]), int(d["test_size"]),
        tuple(d["classnames"]), tuple(d["templates"]), d.get("elevater_format", "iris"),
        d.get("elevater_test_index", "test.txt"), tuple(d.get("elevater_test_archives", ())),
    )  # fmt: skip


def _norm_class(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


class ZeroShotBenchmark(Benchmark):
    """Zero-shot classification of one task (subclassed once per task below).

    Options:
        limit: Evaluate only ``limit`` evenly spaced test images (for quick checks during training).
    """

    task = ZEROSHOT
    kind = ZEROSHOT
    task_name: ClassVar[str] = ""
    obtain = (
        "Download the task's test split (ELEVATER toolkit / vision-datasets, or torchvision) and arrange it as "
        "<data-root>/elevater/<task>/test.txt ('<image> <label>' lines) or test/<class index or name>/<images>."
    )

    @property
    def spec(self) -> ZeroShotTask:
        return load_task(self.task_name)

    def root(self, data_root: str | Path) -> Path:
        return Path(data_root) / SUBDIR / self.task_name

    def full(self, sub: str = "") -> str:
        return f"{SCORE_PREFIX}::{self.task_name}"

    def label_files(self) -> tuple[str, ...]:
        """Iris-format index names looked for: ours, then ELEVATER's name for this task if it differs."""
        spec = self.spec
        extra = (spec.index_file,) if spec.index_format == "iris" and spec.index_file not in LABEL_FILES else ()
        return LABEL_FILES + extra

    def coco_file(self) -> str | None:
        return self.spec.index_file if self.spec.index_format == "coco" else None

    def _layout(self, root: Path) -> tuple[str, Path] | None:
        """``(reader name, path)`` of the first layout present under ``root``."""
        label_file = next((root / f for f in self.label_files() if (root / f).is_file()), None)
        if label_file is not None:
            return "labels", label_file
        coco = self.coco_file()
        if coco and (root / coco).is_file():
            return "coco", root / coco
        return ("folders", root / "test") if (root / "test").is_dir() else None

    def check(self, data_root: str | Path) -> Path:
        root = self.root(data_root)
        if self._layout(root) is not None:
            return root
        coco = self.coco_file()
        names = [*self.label_files(), *([coco] if coco else [])]
        raise DataNotFoundError(
            f"{self.name}: no test data under {root}: expected one of {', '.join(names)} there, or "
            f"{root / 'test'}/<class>/. {self.obtain} (run `fsc-clip list benchmarks` for the layout)."
        )

    # ----- reading ----------------------------------------------------------------------------------------
    def load_samples(self, data_root: str | Path) -> tuple[list[ImageRef], list[list[int]], str]:
        """``(image refs, per-image class indices, layout name)``; single-label tasks have one index each."""
        root = self.check(data_root)
        reader, path = self._layout(root) or ("folders", root / "test")
        refs, labels = getattr(self, f"_read_{reader}")(root, path)
        layout = "test/<class>/" if reader == "folders" else path.name
        if not refs:
            raise DataNotFoundError(f"{self.name}: no test images found under {root}. {self.obtain}")
        if self.spec.test_size and len(refs) != self.spec.test_size:  # 0: no published size (the synthetic tasks)
            logger.warning("%s: %d test images, the published test set has %d", self.name, len(refs),
                           self.spec.test_size)  # fmt: skip
        limit = self.options.get("limit")
        if limit and int(limit) < len(refs):
            step = len(refs) / int(limit)
            keep = sorted({int(i * step) for i in range(int(limit))})
            refs, labels = [refs[i] for i in keep], [labels[i] for i in keep]
        return refs, labels, layout

    def _class_index(self, token: str, where: str) -> int:
        n = len(self.spec.classnames)
        if token.strip().isdigit():
            idx = int(token)
        else:
            lookup = {_norm_class(c): i for i, c in enumerate(self.spec.classnames)}
            idx = lookup.get(_norm_class(token), -1)
        if not 0 <= idx < n:
            raise DataNotFoundError(
                f"{self.name}: {where}: class {token!r} is neither an index in [0, {n}) nor a class name of this task "
                f"(see fsc_clip/resources/zeroshot/{self.task_name}.json)."
            )
        return idx

    def _resolve(self, root: Path, rel: str) -> Path:
        if "@" in rel:
            archive, inner = rel.split("@", 1)
            stem = Path(archive).name.removesuffix(".zip")
            for cand in (root / stem / inner, root / inner):
                if cand.is_file():
                    return cand
            return root / stem / inner
        return root / rel

    def _check_labels(self, idx: list[int], where: str) -> list[int]:
        if not self.spec.multilabel and len(idx) != 1:
            raise SchemaError(f"{self.name}: {where}: single-label task but got {len(idx)} labels {idx}")
        return idx

    def _keep_present(self, rows: list[tuple[Path, list[int]]], index: Path) -> tuple[list[ImageRef], list[list[int]]]:
        """Drop listed images that are not on disk: an error naming them unless ``allow_partial``."""
        missing = [str(p) for p, _ in rows if not p.is_file()]
        if missing:
            msg = (
                f"{self.name}: {len(missing)} of the {len(rows)} test images listed in {index} are missing, "
                f"e.g. {', '.join(missing[:3])}"
            )
            if not self.options.get("allow_partial"):
                archives = ", ".join(self.spec.archives) or "the image archive"
                raise DataNotFoundError(
                    f"{msg}. Extract ELEVATER's {archives} next to the index (a zip 'x.zip' as folder 'x/'), "
                    f"or pass the option allow_partial=True to score only the images present. {self.obtain}"
                )
            logger.warning("%s; scoring the %d present (allow_partial)", msg, len(rows) - len(missing))
            self._extra = {**getattr(self, "_extra", {}), "missing_images": len(missing)}
        present = [(p, labs) for p, labs in rows if p.is_file()]
        return [ImageRef(p) for p, _ in present], [labs for _, labs in present]

    def _read_labels(self, root: Path, path: Path) -> tuple[list[ImageRef], list[list[int]]]:
        """An iris-format index: ``<image path> <comma-separated 0-based labels>`` per line."""
        rows: list[tuple[Path, list[int]]] = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t") if "\t" in line else line.rsplit(None, 1)
            if len(parts) < 2:
                raise SchemaError(f"{self.name}: {path}:{lineno}: expected '<image path> <label(s)>', got {line!r}")
            where = f"{path}:{lineno}"
            idx = self._check_labels([self._class_index(t, where) for t in parts[-1].split(",") if t.strip()], where)
            rows.append((self._resolve(root, parts[0].strip()), idx))
        return self._keep_present(rows, path)

    def _read_coco(self, root: Path, path: Path) -> tuple[list[ImageRef], list[list[int]]]:
        """A vision-datasets COCO classification index (images / annotations / categories)."""
        data = read_json(path, self.name)
        if not isinstance(data, dict):
            raise SchemaError(f"{self.name}: {path}: expected a COCO JSON object with images, annotations, categories")
        get = lambda rec, key, where: field(rec, key, path, where, self.name)  # noqa: E731
        cat_ids = sorted(get(c, "id", f"categories[{i}]") for i, c in enumerate(get(data, "categories", "top level")))
        if len(cat_ids) != len(self.spec.classnames):
            raise SchemaError(
                f"{self.name}: {path}: {len(cat_ids)} categories but the task has {len(self.spec.classnames)} classes"
            )
        position = {cid: i for i, cid in enumerate(cat_ids)}  # sorted id order, as CocoManifestAdaptor
        by_id: dict[Any, tuple[str, list[int]]] = {}
        for i, img in enumerate(get(data, "images", "top level")):
            name, zip_file = get(img, "file_name", f"images[{i}]"), img.get("zip_file")
            by_id[get(img, "id", f"images[{i}]")] = (f"{zip_file}@{name}" if zip_file else name, [])
        for i, ann in enumerate(get(data, "annotations", "top level")):
            image_id, cat = get(ann, "image_id", f"annotations[{i}]"), get(ann, "category_id", f"annotations[{i}]")
            if image_id not in by_id or cat not in position:
                bad = f"image_id {image_id!r}" if image_id not in by_id else f"category_id {cat!r}"
                raise SchemaError(f"{self.name}: {path}: annotations[{i}] refers to an unknown {bad}")
            by_id[image_id][1].append(position[cat])
        rows = [
            (self._resolve(root, rel), self._check_labels(sorted(set(labs)), f"{path}: image id {iid!r}"))
            for iid, (rel, labs) in sorted(by_id.items(), key=lambda kv: kv[0])
        ]  # images in id order, as vision-datasets
        return self._keep_present(rows, path)

    def _folder_classes(self, test_dir: Path) -> list[tuple[Path, int]]:
        """Class folders with their indices: by index / class name, else (exactly one folder per class, names
        unknown, e.g. ImageNet WNIDs) by sorted folder order as torchvision's ``ImageFolder`` does."""
        dirs = sorted(p for p in test_dir.iterdir() if p.is_dir())
        try:
            return [(d, self._class_index(d.name, str(d))) for d in dirs]
        except DataNotFoundError:
            if len(dirs) != len(self.spec.classnames):
                raise
            self._extra = {"class_folders": "mapped by sorted folder order (ImageFolder convention)"}
            return [(d, i) for i, d in enumerate(dirs)]

    def _read_folders(self, _root: Path, test_dir: Path) -> tuple[list[ImageRef], list[list[int]]]:
        per_file: dict[str, tuple[Path, list[int]]] = {}
        for class_dir, idx in self._folder_classes(test_dir):
            for img in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                key = img.name if self.spec.multilabel else str(img)
                _, labs = per_file.setdefault(key, (img, []))
                labs.append(idx)
        self._check_all_classes(test_dir, {i for _, labs in per_file.values() for i in labs})
        return [ImageRef(p) for p, _ in per_file.values()], [sorted(set(labs)) for _, labs in per_file.values()]

    def _check_all_classes(self, test_dir: Path, present: set[int]) -> None:
        """Image folders carry no list of the test set: a class without images means an incomplete download."""
        names = self.spec.classnames
        missing = [names[i] for i in range(len(names)) if i not in present]
        if not missing or len(missing) == len(names):
            return
        msg = f"{self.name}: {test_dir} has no images for {len(missing)} of {len(names)} classes, e.g. {missing[:5]}"
        if not self.options.get("allow_partial"):
            raise DataNotFoundError(
                f"{msg}. The published protocol scores the full test set: add the missing class folders "
                f"(test/<class index or name>/), or pass the option allow_partial=True to score the classes present."
            )
        logger.warning("%s; scoring the classes present (allow_partial)", msg)
        self._extra = {**getattr(self, "_extra", {}), "missing_classes": len(missing)}

    # ----- scoring ----------------------------------------------------------------------------------------
    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        """Build the prompt-ensemble classifier, embed the images, apply the task's metric (percent)."""
        import torch

        from fsc_clip.evaluation.tasks.zeroshot import build_classifier, compute_metric, zeroshot_probs

        spec = self.spec
        refs, labels, layout = self.load_samples(data_root)
        classifier = build_classifier(lambda t: embedder.texts(t, desc=f"{self.name} prompts"), spec.classnames,
                                      spec.templates)  # [D, C]  # fmt: skip
        probs = zeroshot_probs(embedder.images(refs, desc=self.name), classifier)  # [N, C]
        if spec.multilabel:
            target = torch.zeros(len(refs), len(spec.classnames), dtype=torch.long)
            for i, labs in enumerate(labels):
                target[i, labs] = 1
        else:
            target = torch.tensor([labs[0] for labs in labels], dtype=torch.long)
        value = 100.0 * compute_metric(spec.metric, probs, target)
        key = self.full()
        extra: dict[str, Any] = {
            "metric": spec.metric,
            "layout": layout,
            "num_classes": len(spec.classnames),
            "num_templates": len(spec.templates),
            "published_test_size": spec.test_size,
        }
        if self.options.get("limit"):
            extra["limit"] = int(self.options["limit"])
        extra.update(self.extra_info())
        per_item = [self.outcome_table(key, probs, target)]
        return BenchmarkOutput(scores={key: value}, counts={key: len(refs)}, score=value, extra=extra,
                               per_item=per_item)  # fmt: skip

    def outcome_table(self, key: str, probs: Any, target: Any) -> Any:
        """Per-image outcomes for bootstrap intervals: strict top-1 correctness (for a multi-label task: the top
        class is one of the image's labels), the target(s) and the probabilities ``[N, C]``."""
        from fsc_clip.evaluation.stats import zeroshot_table
        from fsc_clip.evaluation.tasks.zeroshot import _strict_top1

        if target.ndim == 1:
            correct = _strict_top1(probs, target)
        else:
            correct = target.gather(1, probs.argmax(dim=1, keepdim=True)).squeeze(1) > 0
        return zeroshot_table(key, self.spec.metric, correct.numpy(), target.numpy(), probs.float().numpy())

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{SCORE_PREFIX}::{cls.task_name}"]

    @classmethod
    def list_line(cls) -> list[str]:
        spec = load_task(cls.task_name)
        labels = "comma-separated labels" if spec.multilabel else "label"
        return [
            f"{cls.name}  [{cls.kind}; metric={spec.metric}]  {cls.description}",
            f"    sub-score: {SCORE_PREFIX}::{cls.task_name}; {len(spec.classnames)} classes x "
            f"{len(spec.templates)} templates; published test size {spec.test_size}",
            f"    expects <data-root>/{SUBDIR}/{cls.task_name}/test.txt ('<image> <{labels}>' lines)"
            + (f", ELEVATER's {spec.index_file}" if spec.index_file != "test.txt" else "")
            + " or test/<class index or name>/<images>",
        ]


def _register_all() -> None:
    for task in task_names():
        spec = load_task(task)
        bench_name = f"zs-{task}"
        cls = type(
            f"ZeroShot_{re.sub(r'[^0-9a-zA-Z]', '_', task)}",
            (ZeroShotBenchmark,),
            {
                "name": bench_name,
                "task_name": task,
                "subdir": f"{SUBDIR}/{task}",
                "description": f"zero-shot {spec.title} ({spec.metric}, ELEVATER {spec.elevater_id})",
                "sub_scores": (task,),
                "__module__": __name__,
            },
        )
        BENCHMARKS.register(bench_name, cls)


def zs_average(_columns: Mapping[str, float | None], subscores: Mapping[str, float | None]) -> float | None:
    """Headline ZS / 21_tasks_avg: unweighted mean of the 21 ``elevator::*`` scores (None if one is missing)."""
    return mean(subscores.get(f"{SCORE_PREFIX}::{t}") for t in task_names())


def _register_headlines() -> None:
    add_headline("fsc", Headline("ZS", zs_average, "mean of the 21 zero-shot classification tasks"))
    imagenet = f"{SCORE_PREFIX}::imagenet-1k"
    add_headline("vl_compo", Headline("imagenet", lambda _c, s: s.get(imagenet), f"= {imagenet}"))
    add_headline("vl_compo", Headline("21_tasks_avg", zs_average, "mean of the 21 zero-shot classification tasks"))


_register_all()
_register_headlines()
