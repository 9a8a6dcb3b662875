"""``Batch``: what one step of the training loader yields."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass
class Batch:
    """One training batch (tensors are on CPU until :meth:`to`).

    Attributes:
        images: ``[B, 3, H, W]`` float, after the model's train preprocessing.
        texts: ``[B, L]`` long token ids of the positive captions.
        neg_texts: ``[B, K, L]`` long token ids of the hard negatives (zeros where absent), or ``None``.
        neg_mask: ``[B, K]`` bool, True where ``neg_texts[b, k]`` is a real negative, or ``None``.
        indices: ``[B]`` long sample ids (dataset row for tables, a stable hash of shard + key for
            webdataset); every random choice about a sample derives from (seed, epoch, id).
        n_skipped: Bad samples (missing/corrupt image, empty caption) met while building this batch.
        captions: The positive captions, for logging and debugging.
        skipped: Why each bad sample of ``n_skipped`` was skipped (the message names the file and row / shard and
            key), so the main process can tell the user which files are bad.
        neg_stats: Hard-negative counts of this batch (a :class:`fsc_clip.negatives.stats.NegativeStats`), or
            ``None`` without negatives.
    """

    images: Any
    texts: Any
    neg_texts: Any | None
    neg_mask: Any | None
    indices: Any
    n_skipped: int = 0
    captions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    neg_stats: Any | None = None

    def __len__(self) -> int:
        return int(self.texts.shape[0])

    def to(self, device: Any, non_blocking: bool = False) -> Batch:
        """Copy the tensors to ``device``."""

        def move(t: Any) -> Any:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return replace(
            self,
            images=move(self.images),
            texts=move(self.texts),
            neg_texts=move(self.neg_texts),
            neg_mask=move(self.neg_mask),
            indices=move(self.indices),
        )

    def pin_memory(self) -> Batch:
        """Pinned-memory copy (called by ``DataLoader(pin_memory=True)``)."""

        def pin(t: Any) -> Any:
            return None if t is None else t.pin_memory()

        return replace(
            self,
            images=pin(self.images),
            texts=pin(self.texts),
            neg_texts=pin(self.neg_texts),
            neg_mask=pin(self.neg_mask),
            indices=pin(self.indices),
        )
