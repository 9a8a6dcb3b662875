"""Turning loaded samples into a :class:`~fsc_clip.data.batch.Batch`: images, tokens, negatives.

Everything here runs inside DataLoader workers. Randomness (image augmentation, negative choice)
is seeded per sample from (seed, epoch, sample id), so a batch's content does not depend on the
worker that built it, on the batch size or on the rank — which is what makes mid-epoch resume
and 1-vs-N-process runs reproduce each other.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fsc_clip.data.batch import Batch
from fsc_clip.data.hard_negatives import NegativeSampler, mix_seed
from fsc_clip.errors import UserError


class BadSampleError(UserError):
    """A sample cannot be used (missing/corrupt image, empty caption) and ``on_bad_sample=raise``."""


@dataclass
class Sample:
    """One decoded training pair."""

    index: int
    image: Any  # FloatTensor [3, H, W]
    caption: str
    negatives: dict[str, list[str]] | None = None  # precomputed candidates carried by the row


def open_image(source: str | bytes, name: str) -> Any:
    """Decode an image (path or encoded bytes) to RGB PIL, or raise :class:`BadSampleError` naming it."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise BadSampleError(f"image file not found: {name}") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise BadSampleError(f"cannot decode image {name}: {err}") from None


class BatchBuilder:
    """Decode/augment images, tokenize captions and negatives (picklable, used in workers).

    Args:
        tokenizer: ``callable(list[str]) -> LongTensor [N, L]`` (pad id 0).
        preprocess: PIL image -> FloatTensor ``[3, H, W]`` (open_clip train transform).
        negatives: chooses each sample's negatives.
        seed: run seed (augmentation and negative choice derive from it).
        on_bad_sample: ``skip`` or ``raise``.
    """

    def __init__(
        self,
        tokenizer: Callable[[list[str]], Any],
        preprocess: Callable[[Any], Any],
        negatives: NegativeSampler,
        seed: int,
        on_bad_sample: str = "skip",
    ) -> None:
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.negatives = negatives
        self.seed = int(seed)
        self.on_bad_sample = on_bad_sample

    def load(self, index: int, image: str | bytes, caption: str, name: str, epoch: int) -> Sample:
        """Decode one sample; raises :class:`BadSampleError` when it is unusable."""
        import torch

        if not caption or not caption.strip():
            raise BadSampleError(f"empty caption for {name}")
        pil = open_image(image, name)
        # Augmentation draws from torch's global CPU RNG: seed it per sample, restore it afterwards so the
        # trainer's own RNG stream (workers=0 runs in the main process) is untouched. (The generator's own
        # manual_seed costs ~5 µs; torch.manual_seed, which also visits accelerators, ~400 µs.)
        gen = torch.default_generator
        saved = gen.get_state()
        try:
            gen.manual_seed(mix_seed(self.seed, epoch, index, 0xA11))
            tensor = self.preprocess(pil)
        finally:
            gen.set_state(saved)
        return Sample(index=index, image=tensor, caption=caption.strip())

    def collate(self, samples: Sequence[Sample], epoch: int, skipped: Sequence[str] = ()) -> Batch:
        """Stack samples into a Batch: images [B,3,H,W], texts [B,L], neg_texts [B,K,L], neg_mask [B,K].

        ``skipped`` holds the messages of the bad samples met while filling this batch.
        """
        import torch

        from fsc_clip.models.dense import trim_tokens

        captions = [s.caption for s in samples]
        indices = [s.index for s in samples]
        texts = self.tokenizer(captions)  # [B, L]
        neg_texts = neg_mask = neg_stats = None
        if self.negatives.enabled:
            from fsc_clip.negatives.stats import NegativeStats

            neg_stats = NegativeStats()
            chosen = self.negatives.choose(captions, indices, [s.negatives for s in samples], epoch, neg_stats)
            neg_texts, neg_mask = self._tokenize_negatives(chosen, texts.shape[1])
            self._drop_invisible(texts, neg_texts, neg_mask, neg_stats)
        # Drop trailing padding shared by the whole batch: exact for CLIP's causal text tower, and 3-5x cheaper.
        texts, neg_texts = trim_tokens(texts, neg_texts)
        return Batch(
            images=torch.stack([s.image for s in samples]),
            texts=texts,
            neg_texts=neg_texts,
            neg_mask=neg_mask,
            indices=torch.tensor(indices, dtype=torch.long),
            n_skipped=len(skipped),
            captions=captions,
            skipped=list(skipped),
            neg_stats=neg_stats,
        )

    def _drop_invisible(self, texts: Any, neg_texts: Any, neg_mask: Any, stats: Any) -> None:
        """Mask out negatives whose token ids equal their caption's: identical to this model's text tower.

        The sampler already dropped those it could see with CLIP's BPE; this re-checks with the model's own
        tokenizer (and context length), so the guarantee holds for any tokenizer.
        """
        same = (neg_texts == texts[:, None, :]).all(dim=-1) & neg_mask  # [B, K]
        if not bool(same.any()):
            return
        neg_mask &= ~same
        neg_texts[same] = 0
        for k, neg_type in enumerate(self.negatives.types):
            n = int(same[:, k].sum())
            if n:
                stats.hidden[neg_type] = stats.hidden.get(neg_type, 0) + n
                stats.missing[neg_type] = stats.missing.get(neg_type, 0) + n

    def _tokenize_negatives(self, chosen: list[list[str | None]], length: int) -> tuple[Any, Any]:
        import torch

        k = len(self.negatives.types)
        neg_mask = torch.tensor([[n is not None for n in row] for row in chosen], dtype=torch.bool)  # [B, K]
        neg_texts = torch.zeros(len(chosen), k, length, dtype=torch.long)  # [B, K, L]
        flat = [n for row in chosen for n in row if n is not None]
        if flat:
            neg_texts[neg_mask] = self.tokenizer(flat).to(torch.long)
        return neg_texts, neg_mask


def identity(x: Any) -> Any:
    """DataLoader ``collate_fn`` for datasets that already return whole batches."""
    return x
