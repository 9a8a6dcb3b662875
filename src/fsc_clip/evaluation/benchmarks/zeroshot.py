"""The 21 zero-shot classification tasks of the published tables (20 ELEVATER tasks + ImageNet-1k).

Each task is one benchmark ``zs-<task>`` (``kind="zeroshot"``, so ``--benchmarks zeroshot`` runs all 21) whose
single sub-score has the published name ``elevator::<task>`` (vl_compo spells the prefix "elevator"). Class
names, prompt templates and the metric of every task are package data
(``fsc_clip/resources/zeroshot/<task>.json``, from ELEVATER's ``prompts.py`` / dataset configs, which copy
OpenAI CLIP's ``prompts.md``).

Data layout, under ``<data_root>/elevater/<task>/`` (the task name is the published column name, e.g.
``cifar10``, ``imagenet-1k``, ``voc2007classification``); the first layout found is used:

1. **Labels file** ``test.txt`` (or ``test.tsv``): one test image per line, ``<image path> <labels>``
   (whitespace or a tab before the last field). ``<labels>`` is a 0-based class index, or for multi-label
   tasks (VOC 2007) the comma-separated indices of all classes in the image. Paths are relative to the task
   folder; an ELEVATER / vision-datasets index path ``test.zip@dir/img.jpg`` is looked up as
   ``test/dir/img.jpg`` (the zip extracted to a folder named after it) or ``dir/img.jpg``.
2. **Image folders** (torchvision ``ImageFolder`` style) ``test/<class>/<image>``, where ``<class>`` is the
   0-based class index (``7`` or ``007``) or the class name (case-insensitive, any run of spaces or
   punctuation may be written as ``_``). If the names are neither but there is exactly one folder per class
   (e.g. ImageNet's WNID folders ``n01440764/``), the sorted folder order gives the class index, as in
   torchvision's ``ImageFolder``. For a multi-label task, the same file name in several class folders means an
   image with several labels.

Class indices follow the class order of the task's JSON (ELEVATER's label order; CIFAR-100 is *not*
alphabetical).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import Headline, add_headline, mean
from fsc_clip.evaluation.base import Benchmark, BenchmarkOutput, Embedder, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS

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
        tuple(d["classnames"]), tuple(d["templates"]),
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

    def check(self, data_root: str | Path) -> Path:
        root = self.root(data_root)
        if any((root / f).is_file() for f in LABEL_FILES) or (root / "test").is_dir():
            return root
        raise DataNotFoundError(
            f"{self.name}: no test data under {root}: expected {root / 'test.txt'} or {root / 'test'}/<class>/. "
            f"{self.obtain} (run `fsc-clip list benchmarks` for the layout)."
        )

    # ----- reading ----------------------------------------------------------------------------------------
    def load_samples(self, data_root: str | Path) -> tuple[list[ImageRef], list[list[int]], str]:
        """``(image refs, per-image class indices, layout name)``; single-label tasks have one index each."""
        root = self.check(data_root)
        label_file = next((root / f for f in LABEL_FILES if (root / f).is_file()), None)
        if label_file is not None:
            refs, labels = self._read_label_file(root, label_file)
            layout = label_file.name
        else:
            refs, labels = self._read_folders(root / "test")
            layout = "test/<class>/"
        if not refs:
            raise DataNotFoundError(f"{self.name}: no test images found under {root}. {self.obtain}")
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

    def _read_label_file(self, root: Path, path: Path) -> tuple[list[ImageRef], list[list[int]]]:
        refs, labels = [], []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t") if "\t" in line else line.rsplit(None, 1)
            if len(parts) < 2:
                raise DataNotFoundError(f"{self.name}: {path}:{lineno}: expected '<image path> <label(s)>'")
            where = f"{path}:{lineno}"
            idx = [self._class_index(t, where) for t in parts[-1].split(",") if t.strip()]
            if not self.spec.multilabel and len(idx) != 1:
                raise DataNotFoundError(f"{self.name}: {where}: single-label task but got labels {parts[-1]!r}")
            image = self._resolve(root, parts[0].strip())
            if not image.is_file():
                raise DataNotFoundError(f"{self.name}: {where}: image {image} does not exist. {self.obtain}")
            refs.append(ImageRef(image))
            labels.append(idx)
        return refs, labels

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

    def _read_folders(self, test_dir: Path) -> tuple[list[ImageRef], list[list[int]]]:
        per_file: dict[str, tuple[Path, list[int]]] = {}
        for class_dir, idx in self._folder_classes(test_dir):
            for img in sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                key = img.name if self.spec.multilabel else str(img)
                _, labs = per_file.setdefault(key, (img, []))
                labs.append(idx)
        return [ImageRef(p) for p, _ in per_file.values()], [sorted(set(labs)) for _, labs in per_file.values()]

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
        return BenchmarkOutput(scores={key: value}, counts={key: len(refs)}, score=value, extra=extra)

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
            " or test/<class index or name>/<images>",
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


def zs_average(_columns: dict, subscores: dict) -> float | None:
    """Headline ZS / 21_tasks_avg: unweighted mean of the 21 ``elevator::*`` scores (None if one is missing)."""
    return mean(subscores.get(f"{SCORE_PREFIX}::{t}") for t in task_names())


def _register_headlines() -> None:
    add_headline("fsc", Headline("ZS", zs_average, "mean of the 21 zero-shot classification tasks"))
    imagenet = f"{SCORE_PREFIX}::imagenet-1k"
    add_headline("vl_compo", Headline("imagenet", lambda _c, s: s.get(imagenet), f"= {imagenet}"))
    add_headline("vl_compo", Headline("21_tasks_avg", zs_average, "mean of the 21 zero-shot classification tasks"))


_register_all()
_register_headlines()
