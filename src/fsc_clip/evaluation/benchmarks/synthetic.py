"""Benchmarks on the embedded synthetic world (``fsc_clip.data.synthetic``), read by the real adapters.

The world generator writes each test set in its real benchmark's native layout, so these classes only
point the real adapters (SugarCrepe, Winoground, ARO, zero-shot classification, Karpathy retrieval) at the
world folder. The data root is the world folder itself (``generate_world(cfg, root)`` / ``fsc-clip demo``
writes it to ``<demo output>/world``)::

    fsc-clip eval --model fsc-demo --pretrained RUN_DIR --benchmarks synthetic --data-root DEMO/world

Profile ``synthetic`` mirrors the paper's headline columns: ``Comp`` (mean of the three compositional
benchmark columns), ``ZS`` (mean zero-shot accuracy over the shape / color / count tasks), ``I2T`` / ``T2I``
(retrieval R@1).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from fsc_clip.data.synthetic.world import LAYOUT, ZEROSHOT_TASKS
from fsc_clip.evaluation.aggregate import PROFILES, Headline, Profile, mean, mean_of_columns
from fsc_clip.evaluation.base import Benchmark, BenchmarkOutput, Embedder, ImageRef, ImageToTextItem, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import read_json
from fsc_clip.evaluation.benchmarks.aro import ARO
from fsc_clip.evaluation.benchmarks.retrieval import KarpathyRetrieval
from fsc_clip.evaluation.benchmarks.sugarcrepe import CATEGORIES, SUBSETS, SugarCrepe
from fsc_clip.evaluation.benchmarks.winoground import Winoground
from fsc_clip.evaluation.benchmarks.zeroshot import ZeroShotBenchmark, ZeroShotTask

SYNTHETIC = "synthetic"
OBTAIN = (
    "Generate the synthetic world first (`fsc-clip demo --output DIR` writes it to DIR/world, or call "
    "fsc_clip.data.synthetic.generate_world) and pass that folder as the data root."
)


@BENCHMARKS.register("synthetic_sugarcrepe")
class SyntheticSugarCrepe(SugarCrepe):
    """SugarCrepe's 7 subsets on synthetic scenes; negatives are false by construction (scene graph)."""

    name = "synthetic_sugarcrepe"
    kind = SYNTHETIC
    subdir = LAYOUT["sugarcrepe"]
    description = "synthetic world, SugarCrepe format: image vs caption / hard negative (replace, swap, add)"
    expected_files: ClassVar[tuple[str, ...]] = (*(f"data/{s}.json" for s in SUBSETS), "images/")
    obtain = OBTAIN

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        had = "image_dir" in self.options
        self.options.setdefault("image_dir", str(self.root(data_root) / "images"))
        try:
            return super().load(data_root)
        finally:
            if not had:
                self.options.pop("image_dir")

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        """Mean of the REPLACE / SWAP / ADD accuracies; the synthetic subsets are equally sized, so the mean of
        a category's subsets is its pooled accuracy."""
        return mean(mean(scores[f"{cls.name}::{s}"] for s in subs) for subs in CATEGORIES.values())


@BENCHMARKS.register("synthetic_winoground")
class SyntheticWinoground(Winoground):
    """Winoground 2x2 on synthetic scene pairs: same words, the two phrases or their colors / sizes exchanged."""

    name = "synthetic_winoground"
    kind = SYNTHETIC
    subdir = LAYOUT["winoground"]
    description = "synthetic world, Winoground format: 2 images x 2 captions (text / image / group)"
    obtain = OBTAIN


@BENCHMARKS.register("synthetic_aro")
class SyntheticARO(ARO):
    """ARO's VG-Relation (subject/object swapped) and VG-Attribution (colors swapped) on synthetic scenes.

    Options: ``min_attribute_count`` (default 1: the synthetic set is small, every color pair counts).
    The Order subsets are not generated (they need real captions' syntax); the column is the mean of the two.
    """

    name = "synthetic_aro"
    kind = SYNTHETIC
    subdir = LAYOUT["aro"]
    description = "synthetic world, ARO format: VG-Relation / VG-Attribution (macro accuracy)"
    expected_files = ("visual_genome_relation.json", "visual_genome_attribution.json", "images/")
    obtain = OBTAIN
    sub_scores = ("VG_Relation", "VG_Attribute")

    def load(self, data_root: str | Path) -> list[Item]:
        root = self.check(data_root)
        self.options.setdefault("min_attribute_count", 1)
        items: list[Item] = []
        for subset, file, cat_key in (
            ("VG_Relation", "visual_genome_relation.json", "relation_name"),
            ("VG_Attribute", "visual_genome_attribution.json", "attributes"),
        ):
            for rec in read_json(root / file, self.name):
                x, y, w, h = (float(rec[k]) for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h"))
                bbox = (x, y, w, h)
                ref = ImageRef(self.require(root / "images" / rec["image_path"]), bbox=bbox)
                cat = rec[cat_key]
                cat = "_".join(cat) if isinstance(cat, list) else str(cat)
                items.append(ImageToTextItem(ref, [rec["false_caption"], rec["true_caption"]], 1, subset, cat))
        return items


@BENCHMARKS.register("synthetic_zeroshot")
class SyntheticZeroShot(ZeroShotBenchmark):
    """Zero-shot classification of shape (5 classes), color (8) and count (3) with prompt ensembles.

    Each task folder holds ``classnames.txt``, ``templates.txt`` and the label file ``test.txt``; the real
    zero-shot reader and classifier do the rest. Column = mean top-1 accuracy over the three tasks.
    """

    name = "synthetic_zeroshot"
    kind = SYNTHETIC
    subdir = LAYOUT["zeroshot"]
    description = "synthetic world: zero-shot shape / color / count classification (top-1, prompt ensembles)"
    sub_scores = ZEROSHOT_TASKS
    expected_files: ClassVar[tuple[str, ...]] = tuple(
        f"{t}/{f}" for t in ZEROSHOT_TASKS for f in ("classnames.txt", "templates.txt", "test.txt")
    )
    obtain = OBTAIN
    task_name: ClassVar[str] = ZEROSHOT_TASKS[0]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._task = ZEROSHOT_TASKS[0]
        self._specs: dict[str, ZeroShotTask] = {}

    @property
    def spec(self) -> ZeroShotTask:
        return self._specs[self._task]

    def root(self, data_root: str | Path) -> Path:
        return Path(data_root) / LAYOUT["zeroshot"] / self._task

    def full(self, sub: str = "") -> str:
        return f"{self.name}::{sub or self._task}"

    def check(self, data_root: str | Path) -> Path:
        # The zero-shot layout check reads the task's spec, which comes from the world's files: read it first.
        if self._task not in self._specs:
            self._specs[self._task] = self._read_spec(data_root, self._task)
        return super().check(data_root)

    def _read_spec(self, data_root: str | Path, task: str) -> ZeroShotTask:
        root = Path(data_root) / LAYOUT["zeroshot"] / task
        lines = {
            f: self.require(root / f).read_text(encoding="utf-8").splitlines()
            for f in ("classnames.txt", "templates.txt")
        }
        classes, templates = (tuple(x for x in lines[f] if x.strip()) for f in ("classnames.txt", "templates.txt"))
        return ZeroShotTask(task, f"synthetic-{task}", f"synthetic {task}", "accuracy", False, 0, classes, templates)

    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        scores, counts, extra, per_item = {}, {}, {}, []
        for task in ZEROSHOT_TASKS:
            self._task = task
            self._specs[task] = self._read_spec(data_root, task)
            out = super().run(data_root, embedder)
            scores.update(out.scores)
            counts.update(out.counts)
            extra[task] = {k: out.extra[k] for k in ("num_classes", "num_templates")}
            for table in out.per_item:  # one outcome part per task (its own bootstrap draws)
                table.name = task
                per_item.append(table)
        return BenchmarkOutput(scores=scores, counts=counts, score=self.aggregate(scores), extra=extra,
                               per_item=per_item)  # fmt: skip

    @classmethod
    def aggregate(  # type: ignore[override]  # None when a task is missing; the base's single task never is
        cls, scores: Mapping[str, float | None]
    ) -> float | None:
        # Mapping of possibly-None sub-scores: ``run`` passes the raw per-task scores, mean() propagates None.
        return mean(scores[f"{cls.name}::{t}"] for t in ZEROSHOT_TASKS)

    @classmethod
    def list_line(cls) -> list[str]:
        return Benchmark.list_line.__func__(cls)  # type: ignore[attr-defined]  # the base's, not ZeroShotBenchmark's


@BENCHMARKS.register("synthetic_retrieval")
class SyntheticRetrieval(KarpathyRetrieval):
    """Karpathy-format retrieval on synthetic scenes, several captions per image (I2T / T2I R@1/5/10)."""

    name = "synthetic_retrieval"
    kind = SYNTHETIC
    subdir = LAYOUT["retrieval"]
    annotation = Path(LAYOUT["retrieval_json"]).name
    description = "synthetic world, Karpathy format: image-text retrieval, I2T / T2I R@1/5/10"
    expected_files: ClassVar[tuple[str, ...]] = (annotation, "images/")
    obtain = OBTAIN


COMP_BENCHMARKS = ("synthetic_sugarcrepe", "synthetic_winoground", "synthetic_aro")


def _retrieval_r1(direction: str):
    return lambda _columns, subscores: subscores.get(f"synthetic_retrieval::{direction}/R@1")


def _zeroshot(_columns: Mapping[str, float | None], subscores: Mapping[str, float | None]) -> float | None:
    return mean(subscores.get(f"synthetic_zeroshot::{t}") for t in ZEROSHOT_TASKS)


if SYNTHETIC not in PROFILES.names():
    PROFILES.register(
        SYNTHETIC,
        Profile(
            SYNTHETIC,
            COMP_BENCHMARKS,
            [
                Headline("Comp", mean_of_columns(COMP_BENCHMARKS), "mean of the 3 synthetic compositional benchmarks"),
                Headline("ZS", _zeroshot, "mean zero-shot accuracy over shape / color / count"),
                Headline("I2T", _retrieval_r1("i2t"), "synthetic retrieval image-to-text R@1"),
                Headline("T2I", _retrieval_r1("t2i"), "synthetic retrieval text-to-image R@1"),
            ],
            "the embedded synthetic world (fsc-clip demo)",
        ),
    )
