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

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from fsc_clip.errors import DataNotFoundError

if TYPE_CHECKING:
    import torch
    from PIL import Image

# Task type names (Benchmark.task). D adds "zeroshot" and "retrieval".
IMAGE_TO_TEXT = "image_to_text"
TEXT_TO_IMAGE = "text_to_image"
GROUP = "group"
MIXED = "mixed"  # a benchmark whose items are of several types (e.g. SPEC: I2T and T2I)


@dataclass(frozen=True)
class ImageRef:
    """A reference to an image on disk, optionally cropped.

    Args:
        path: Image file (any PIL-readable format) or a ``.npy`` array ``[H, W, 3]`` uint8.
        bbox: Optional crop ``(x, y, w, h)`` in pixels of the full image; clamped to the image bounds.
        bgr: For ``.npy`` files: channel order is BGR (EqBen YouCook2 frames) and is flipped to RGB.
    """

    path: Path
    bbox: tuple[float, float, float, float] | None = None
    bgr: bool = False

    def key(self) -> tuple:
        """Content key: resolved path, size and mtime of the file, plus the crop.

        Two references to the same unchanged file and crop share one embedding, across benchmarks. Computed once
        per reference (adapters share one ``ImageRef`` object among the items that use the same image).
        """
        return self._key

    @cached_property
    def _key(self) -> tuple:
        try:
            st = os.stat(self.path)
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)
        return (os.path.realpath(self.path), stamp, self.bbox, self.bgr)

    def exists(self) -> bool:
        return os.path.isfile(self.path)

    def load(self) -> Image.Image:
        """Open the image as RGB PIL, applying the crop; raises DataNotFoundError if the file is missing."""
        from PIL import Image

        if not self.exists():
            raise DataNotFoundError(f"Image file not found: {self.path}")
        if str(self.path).endswith(".npy"):
            import numpy as np

            arr = np.load(self.path, allow_pickle=False)
            if arr.ndim == 2:
                arr = np.stack([arr] * 3, axis=-1)
            if self.bgr:
                arr = arr[..., ::-1]
            if arr.dtype != np.uint8:
                arr = np.clip(arr, 0, 255).astype(np.uint8)
            img = Image.fromarray(np.ascontiguousarray(arr[..., :3]))
        else:
            with Image.open(self.path) as raw:
                img = raw.convert("RGB")
        if self.bbox is not None:
            x, y, w, h = self.bbox
            left, top = max(0, int(x)), max(0, int(y))
            right, bottom = min(img.width, int(x + w)), min(img.height, int(y + h))
            if right > left and bottom > top:  # a degenerate box keeps the full image
                img = img.crop((left, top, right, bottom))
        return img


@dataclass
class ImageToTextItem:
    """One image, N candidate texts; correct iff ``texts[label]`` scores strictly above all others.

    Args:
        image: The image (crop).
        texts: Candidate texts ``[N]``.
        label: Index of the correct text.
        subset: The sub-score this item counts toward (e.g. ``"replace_obj"``).
        category: Optional finer class used by macro-averaging benchmarks (e.g. ARO relation name).
    """

    image: ImageRef
    texts: list[str]
    label: int = 0
    subset: str = ""
    category: str = ""


@dataclass
class TextToImageItem:
    """One text, N candidate images; correct iff ``images[label]`` scores strictly above all others."""

    text: str
    images: list[ImageRef]
    label: int = 0
    subset: str = ""
    category: str = ""


@dataclass
class GroupItem:
    """Winoground-style 2x2: caption c belongs to image c.

    Outcomes (strict ``>``, see :func:`fsc_clip.evaluation.tasks.group.group_outcomes`):
    text = s(c0,i0)>s(c1,i0) and s(c1,i1)>s(c0,i1); image = s(c0,i0)>s(c0,i1) and s(c1,i1)>s(c1,i0);
    group = text and image.
    """

    images: tuple[ImageRef, ImageRef]
    texts: tuple[str, str]
    subset: str = ""
    category: str = ""


Item = ImageToTextItem | TextToImageItem | GroupItem


@dataclass
class BenchmarkOutput:
    """What one benchmark run produces (before the runner adds model info and writes the JSON).

    Attributes:
        scores: ``{"<benchmark>::<sub>": percent}``.
        counts: ``{"<benchmark>::<sub>": number of items}`` (same keys as ``scores``).
        score: The benchmark-level score (percent), from :meth:`Benchmark.aggregate`.
        extra: Anything else worth recording (e.g. ``{"skipped_missing_images": 12}``).
    """

    scores: dict[str, float]
    counts: dict[str, int]
    score: float
    extra: dict[str, Any] = field(default_factory=dict)


class Embedder(Protocol):
    """Embeds images and texts for one model, with a content-keyed cache shared across benchmarks.

    The concrete class is :class:`fsc_clip.evaluation.embedder.CachedEmbedder`.
    """

    def images(self, refs: Sequence[ImageRef], desc: str = "") -> torch.Tensor:
        """L2-normalised image embeddings ``[len(refs), D]`` float32 (each unique key encoded once)."""
        ...

    def texts(self, texts: Sequence[str], desc: str = "") -> torch.Tensor:
        """L2-normalised text embeddings ``[len(texts), D]`` float32 (each unique string encoded once)."""
        ...

    def prefetch(self, refs: Sequence[ImageRef] = (), texts: Sequence[str] = (), desc: str = "") -> None:
        """Encode whatever is not cached yet (batched, with a progress bar)."""
        ...


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

    def load(self, data_root: str | Path) -> list[Item]:
        """Read the native files under ``data_root`` and return the items (item-based benchmarks)."""
        raise NotImplementedError(f"{type(self).__name__} is not item-based; it overrides run()")

    # ----- scoring --------------------------------------------------------------------------------------
    def full(self, sub: str) -> str:
        """``"<name>::<sub>"``."""
        return f"{self.name}::{sub}"

    def score(self, items: Sequence[Item], outcomes: dict[str, Sequence[bool]]) -> tuple[dict, dict]:
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
    def aggregate(cls, scores: dict[str, float]) -> float:
        """Benchmark-level score from the full-name sub-scores (default: mean of ``sub_scores``)."""
        from fsc_clip.evaluation.aggregate import mean

        return mean([scores[f"{cls.name}::{s}"] for s in cls.sub_scores])

    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        """Load, embed, score, aggregate."""
        from fsc_clip.evaluation.tasks import score_items

        items = self.load(data_root)
        if not items:
            raise DataNotFoundError(f"{self.name}: no items found under {self.root(data_root)}. {self.obtain}")
        self.check_images(items)
        outcomes = score_items(items, embedder, desc=self.name)
        scores, counts = self.score(items, outcomes)
        extra = {"n_items": len(items), **self.extra_info()}
        return BenchmarkOutput(scores=scores, counts=counts, score=self.aggregate(scores), extra=extra)

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
