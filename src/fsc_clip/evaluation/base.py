"""Interfaces shared by every benchmark: image references, task items, the embedder, the benchmark base class.

A benchmark adapter reads its native files under a data root and turns them into *items* of one of a few
task types. The runner embeds every unique image and text once per model (content-keyed cache shared
across benchmarks), scores the items with the task scorers and turns per-item outcomes into sub-scores:

- :class:`ImageToTextItem`: one image, N candidate texts, the index of the right one (ARO, SugarCrepe, ...).
- :class:`TextToImageItem`: one text, N candidate images, the index of the right one (ImageCoDe, SVO, ...).
- :class:`GroupItem`: 2 images x 2 texts, Winoground text / image / group outcomes (EqBen, ColorSwap, ...).

Benchmarks that are not item-based (zero-shot classification, retrieval) subclass :class:`Benchmark` and
override :meth:`Benchmark.run` directly, using the same :class:`Embedder` and returning a
:class:`BenchmarkOutput`.

Sub-score names are ``"<benchmark>::<sub>"`` exactly as in the published tables; scores are percentages.
Tie policy (all task scorers): a tie is never a success; see :mod:`fsc_clip.evaluation.tasks`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.items import Embedder, GroupItem, ImageRef, ImageToTextItem, Item, TextToImageItem

if TYPE_CHECKING:
    from fsc_clip.evaluation.stats import OutcomeTable

__all__ = [  # the item types are defined in .items (shared with the task scorers) and re-exported here
    "GROUP", "IMAGE_TO_TEXT", "MIXED", "TEXT_TO_IMAGE", "Benchmark", "BenchmarkOutput", "Embedder", "GroupItem",
    "ImageRef", "ImageToTextItem", "Item", "TextToImageItem",
]  # fmt: skip

log = logging.getLogger(__name__)

# Task type names (Benchmark.task). D adds "zeroshot" and "retrieval".
IMAGE_TO_TEXT = "image_to_text"
TEXT_TO_IMAGE = "text_to_image"
GROUP = "group"
MIXED = "mixed"  # a benchmark whose items are of several types (e.g. SPEC: I2T and T2I)


@dataclass
class BenchmarkOutput:
    """What one benchmark run produces (before the runner adds model info and writes the JSON).

    Attributes:
        scores: ``{"<benchmark>::<sub>": percent}``; ``None`` for a declared sub-score with no scorable item.
        counts: ``{"<benchmark>::<sub>": number of items}`` (same keys as ``scores``; 0 where the score is None).
        score: The benchmark-level score (percent) from :meth:`Benchmark.column`; ``None`` if a required sub-score
            is missing (the "None rule": never a silently partial mean).
        extra: Anything else worth recording (e.g. ``{"skipped_missing_images": 12}``).
        per_item: Per-item outcomes (and candidate scores) for bootstrap intervals and ``--save-scores``
            (:class:`fsc_clip.evaluation.stats.OutcomeTable`; several parts for multi-task benchmarks). Empty when a
            benchmark keeps none: its result then has no interval.
    """

    scores: dict[str, float | None]
    counts: dict[str, int]
    score: float | None
    extra: dict[str, Any] = field(default_factory=dict)
    per_item: list[OutcomeTable] = field(default_factory=list)


class Benchmark:
    """Base class of all benchmarks. Register subclasses with ``@BENCHMARKS.register("name")``.

    Class attributes to set:
        name: Registry name, also the prefix of the sub-score names.
        task: One of ``image_to_text``, ``text_to_image``, ``group``, ``mixed`` (D: ``zeroshot``, ``retrieval``).
        description: One line for ``fsc-clip list benchmarks``.
        subdir: Folder under the data root that holds this benchmark (``<data_root>/<subdir>``).
        expected_files: Paths relative to ``<data_root>/<subdir>`` that must exist (checked by :meth:`check`).
        obtain: How to get the data (printed in the missing-data error).
        sub_scores: Sub-score names without the prefix, in published order.
        required_sub_scores: Sub-scores (without prefix) the benchmark column needs. If one is missing or ``None``
            (no scorable item, a part of the data absent) the column is ``None`` and a warning names it. Default
            ``None``: no explicit list; the column is still ``None`` whenever :meth:`aggregate` meets a missing or
            ``None`` sub-score (see :meth:`column`). Declare it when the aggregate could otherwise succeed on a
            subset of the parts (e.g. ARO without the Order parts), or to name the parts in the warning.
        kind: ``"compositional"`` (C), ``"zeroshot"`` / ``"retrieval"`` (D), ``"synthetic"`` (F); used by
            ``--benchmarks compositional|zeroshot|retrieval|synthetic``.

    Item-based benchmarks implement :meth:`load`; the default :meth:`run` embeds and scores the items,
    pools accuracy per ``item.subset`` (override :meth:`score` for macro-averaging) and calls
    :meth:`aggregate`. Non-item benchmarks override :meth:`run`.
    """

    name: ClassVar[str] = ""
    task: ClassVar[str] = IMAGE_TO_TEXT
    description: ClassVar[str] = ""
    subdir: ClassVar[str] = ""
    expected_files: ClassVar[tuple[str, ...]] = ()
    obtain: ClassVar[str] = ""
    sub_scores: ClassVar[tuple[str, ...]] = ()
    required_sub_scores: ClassVar[tuple[str, ...] | None] = None
    kind: ClassVar[str] = "compositional"

    def __init__(self, **options: Any) -> None:
        self.options = options

    # ----- data -----------------------------------------------------------------------------------------
    def root(self, data_root: str | Path) -> Path:
        """``<data_root>/<subdir>``."""
        return Path(data_root) / (self.subdir or self.name)

    def check(self, data_root: str | Path) -> Path:
        """Raise :class:`DataNotFoundError` naming the first missing expected file; return the root."""
        root = self.root(data_root)
        for rel in self.expected_files:
            self.require(root / rel)
        return root

    def require(self, path: Path) -> Path:
        """Return ``path`` or raise a DataNotFoundError naming it and how to obtain the data."""
        if not path.exists():
            raise DataNotFoundError(
                f"{self.name}: expected {path} but it does not exist. {self.obtain} "
                f"(run `fsc-clip list benchmarks` for the expected layout)."
            )
        return path

    def load(self, data_root: str | Path) -> Sequence[Item]:
        """Read the native files under ``data_root`` and return the items (item-based benchmarks)."""
        raise NotImplementedError(f"{type(self).__name__} is not item-based; it overrides run()")

    # ----- scoring --------------------------------------------------------------------------------------
    def full(self, sub: str) -> str:
        """``"<name>::<sub>"``."""
        return f"{self.name}::{sub}"

    def score(self, items: Sequence[Item], outcomes: Mapping[str, Sequence[bool]]) -> tuple[dict, dict]:
        """Turn per-item outcomes into ``(scores, counts)`` keyed by full sub-score name.

        Default: pooled accuracy per ``item.subset``. For group items every subset yields three sub-scores
        ``<subset>::text|image|group`` (just ``text|image|group`` if the subset is empty).

        Args:
            items: The items, in order.
            outcomes: Per-item booleans; ``{"correct": [...]}`` for multiple choice,
                ``{"text": [...], "image": [...], "group": [...]}`` for group items.
        """
        from fsc_clip.evaluation.tasks import pooled_accuracy

        return pooled_accuracy(self.name, items, outcomes)

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        """Benchmark-level score from the full-name sub-scores (default: mean of ``sub_scores``).

        Only called by :meth:`column` once every required sub-score is present and not ``None``.
        """
        from fsc_clip.evaluation.aggregate import mean

        return mean([scores.get(f"{cls.name}::{s}") for s in cls.sub_scores])

    @classmethod
    def missing_required(cls, scores: Mapping[str, float | None]) -> list[str]:
        """Full names of the declared ``required_sub_scores`` that are absent or ``None``."""
        return [f"{cls.name}::{s}" for s in cls.required_sub_scores or () if scores.get(f"{cls.name}::{s}") is None]

    @classmethod
    def column(cls, scores: Mapping[str, float | None]) -> float | None:
        """The benchmark column under the None rule: never a partial mean.

        ``None`` if a declared required sub-score is absent or ``None``, or if :meth:`aggregate` reads one that is
        (``KeyError``, or arithmetic on ``None``); otherwise ``aggregate(scores)``.
        """
        if cls.missing_required(scores):
            return None
        try:
            return cls.aggregate(dict(scores))  # type: ignore[arg-type]
        except KeyError:
            return None
        except TypeError:
            if any(v is None for v in scores.values()):
                return None
            raise

    def complete(self, scores: dict, counts: dict) -> tuple[dict, dict]:
        """Add every declared sub-score without scorable items as ``None`` with count 0, warning about each.

        This is the empty-subset rule shared by all item benchmarks (e.g. SVO-Probes when no image of one negative
        type was downloaded): the sub-score is reported, not dropped, and never crashes the aggregation.
        """
        scores, counts = dict(scores), dict(counts)
        for sub in self.sub_scores:
            full = self.full(sub)
            if scores.get(full) is None:
                scores[full], counts[full] = None, counts.get(full, 0)
                log.warning("%s: sub-score %s has no score (%d scorable items; a part of the data is missing or "
                            "empty): reported as None", self.name, full, counts[full])  # fmt: skip
        return scores, counts

    def finish(self, scores: dict, counts: dict, extra: dict[str, Any]) -> BenchmarkOutput:
        """Complete the sub-scores, compute the column under the None rule, warn if it is None."""
        scores, counts = self.complete(scores, counts)
        column = self.column(scores)
        if column is None:
            missing = self.missing_required(scores) or [k for k, v in scores.items() if v is None]
            log.warning("%s: benchmark column is None (never a partial mean): no score for %s", self.name,
                        ", ".join(missing) or "an aggregate input")  # fmt: skip
            extra = {**extra, "missing_sub_scores": missing}
        return BenchmarkOutput(scores=scores, counts=counts, score=column, extra=extra)

    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        """Load, embed, score, aggregate."""
        from fsc_clip.evaluation.stats import items_table
        from fsc_clip.evaluation.tasks import score_items_with_sims

        items = self.load(data_root)
        if not items:
            raise DataNotFoundError(f"{self.name}: no items found under {self.root(data_root)}. {self.obtain}")
        self.check_images(items)
        outcomes, sims = score_items_with_sims(items, embedder, desc=self.name)
        scores, counts = self.score(items, outcomes)
        out = self.finish(scores, counts, {"n_items": len(items), **self.extra_info()})
        # the default score() pools per subset and never reads item.category: resample within subsets only
        out.per_item = [items_table(items, outcomes, sims, by_category=type(self).score is not Benchmark.score)]
        return out

    def check_images(self, items: Sequence[Item]) -> None:
        """Raise DataNotFoundError naming the first missing image (and how many are missing) before encoding."""
        seen: set[str] = set()
        missing: list[str] = []
        for it in items:
            refs = [it.image] if isinstance(it, ImageToTextItem) else list(it.images)
            for ref in refs:
                p = str(ref.path)
                if p not in seen:
                    seen.add(p)
                    if not ref.exists():
                        missing.append(p)
        if missing:
            raise DataNotFoundError(
                f"{self.name}: {len(missing)} image file(s) missing, e.g. {missing[0]}. {self.obtain}"
            )

    def extra_info(self) -> dict[str, Any]:
        """Extra fields for the result JSON (set by load(), e.g. skipped items)."""
        return dict(getattr(self, "_extra", {}))

    @classmethod
    def list_line(cls) -> list[str]:
        """Lines describing this benchmark for ``fsc-clip list benchmarks``."""
        lines = [f"{cls.name}  [{cls.kind}; task={cls.task}]  {cls.description}"]
        if cls.sub_scores:
            lines.append(f"    sub-scores: {', '.join(cls.sub_scores)}")
        if cls.expected_files:
            lines.append(f"    expects under <data-root>/{cls.subdir or cls.name}/: {', '.join(cls.expected_files)}")
        if cls.obtain:
            lines.append(f"    obtain: {cls.obtain}")
        return lines
