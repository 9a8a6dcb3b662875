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


TOKEN_CACHE_ENTRIES = 1 << 18
"""Texts whose token ids one :class:`CachedTokenizer` keeps (~0.1-0.4 KB each: at most ~100 MB per worker)."""


class CachedTokenizer:
    """A tokenizer that remembers the token ids of the texts it has seen (bounded, fill-once).

    Training tokenizes the same captions and hard negatives again in every epoch, and BPE tokenization is pure
    Python (~0.1 ms per text): with a few negatives per caption it can cost as much as the model's step. The
    cache is *fill-once* rather than LRU: an epoch visits the texts in a cycle, and an LRU cache smaller than that
    cycle would evict every text just before it comes back (no hits at all), while a fill-once cache still serves
    the texts it holds. Rows are kept as int32 bytes; the result equals ``tokenizer(texts)`` exactly.

    Args:
        tokenizer: ``callable(list[str]) -> LongTensor [N, L]`` that always pads to the same ``L`` (open_clip's
            and Hugging Face tokenizers with ``max_length`` padding do). A tokenizer that returns another length
            later turns the cache off (its output is then passed through unchanged).
        max_entries: Most texts kept (default :data:`TOKEN_CACHE_ENTRIES`; 0 turns the cache off).
    """

    def __init__(self, tokenizer: Callable[[list[str]], Any], max_entries: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_entries = TOKEN_CACHE_ENTRIES if max_entries is None else int(max_entries)
        self.context_length = getattr(tokenizer, "context_length", None)  # read by the negative sampler
        self._rows: dict[str, bytes] = {}
        self._length: int | None = None  # L of the cached rows
        self._enabled = self.max_entries > 0

    def __call__(self, texts: list[str]) -> Any:
        import numpy as np
        import torch

        if not self._enabled or not texts:
            return self.tokenizer(texts)
        fresh = {t: None for t in texts if t not in self._rows}  # ordered, unique
        new_rows: dict[str, bytes] = {}
        if fresh:
            tokens = self.tokenizer(list(fresh))  # [M, L]
            if self._length is None:
                self._length = int(tokens.shape[1])
            if int(tokens.shape[1]) != self._length or tokens.dtype not in (torch.int32, torch.int64):
                self._enabled = False  # variable-length or unusual output: do not cache
                return self.tokenizer(texts)
            data = tokens.to(torch.int32).numpy()
            new_rows = {t: data[i].tobytes() for i, t in enumerate(fresh)}
            room = self.max_entries - len(self._rows)
            for t, row in list(new_rows.items())[: max(room, 0)]:
                self._rows[t] = row
        rows = [self._rows.get(t) or new_rows[t] for t in texts]
        length = self._length
        assert length is not None  # set by the first call that had texts to tokenize
        flat = np.frombuffer(b"".join(rows), dtype=np.int32).reshape(len(texts), length)  # [N, L]
        return torch.from_numpy(flat.astype(np.int64))


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
