"""The vocabulary every evaluation layer shares: image references, task items, the embedder protocol.

These live below both the benchmark base class (:mod:`fsc_clip.evaluation.base`, which re-exports them) and the
task scorers (:mod:`fsc_clip.evaluation.tasks`), so that neither imports the other's module to name an item type.

- :class:`ImageToTextItem`: one image, N candidate texts, the index of the right one (ARO, SugarCrepe, ...).
- :class:`TextToImageItem`: one text, N candidate images, the index of the right one (ImageCoDe, SVO, ...).
- :class:`GroupItem`: 2 images x 2 texts, Winoground text / image / group outcomes (EqBen, ColorSwap, ...).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fsc_clip.errors import DataNotFoundError

if TYPE_CHECKING:
    import torch
    from PIL import Image


@dataclass(frozen=True)
class ImageRef:
    """A reference to an image on disk, optionally cropped.

    Args:
        path: Image file (any PIL-readable format) or a ``.npy`` array ``[H, W, 3]`` uint8.
        bbox: Optional crop ``(x, y, w, h)`` in pixels of the full image; a box past the image border is
            padded with black, as PIL's ``Image.crop`` in the official loaders (see :func:`crop_region`).
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
            img = crop_region(img, self.bbox)
        return img


def crop_region(img: Image.Image, bbox: tuple[float, float, float, float]) -> Image.Image:
    """Crop ``(x, y, w, h)`` exactly as the official ARO and CREPE loaders do: PIL ``Image.crop``.

    ARO (mertyg/vision-language-models-are-bows@81fdd20, ``dataset_zoo/aro_datasets.py``) calls
    ``image.crop((x, y, x + w, y + h))``; CREPE (RAIVNLab/CREPE@1fa81c4, ``crepe_prod_eval_clip.py``) calls
    torchvision's ``TF.crop(image, y, x, h, w)``, which is the same PIL call. PIL rounds the corners to integers
    and fills the part of a box past the image border with black (zeros): the box is padded, never clamped, so the
    crop keeps its size and aspect ratio. A box without area (on which the official loaders fail) keeps the full
    image.
    """
    x, y, w, h = bbox
    box = (x, y, x + w, y + h)
    if round(box[2]) <= round(box[0]) or round(box[3]) <= round(box[1]):
        return img
    return img.crop(box)


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


class Embedder(Protocol):
    """Embeds images and texts for one model, with a content-keyed cache shared across benchmarks.

    The concrete class is :class:`fsc_clip.evaluation.embedder.CachedEmbedder`. Scorers compare the embeddings by
    cosine similarity, for every model family: a model's own image-text logit is ``s·cos + b`` (softmax-trained CLIP:
    ``b = 0``; SigLIP: a learnable ``logit_bias``, its probability ``sigmoid(s·cos + b)``), a strictly increasing
    function of the cosine, so every comparison among the candidates of one query (retrieval recall, multiple
    choice, Winoground's pairs, zero-shot top-1 and per-class accuracy) comes out the same with either score. The
    zero-shot mAP and ROC-AUC, which compare scores across images, follow ELEVATER's fixed ``softmax(100·cos)``
    protocol for every model (:mod:`fsc_clip.evaluation.tasks.zeroshot`).
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
