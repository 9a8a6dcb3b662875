"""CachedTokenizer: the same ids as the model's tokenizer, bounded, and off for tokenizers it cannot cache."""

from __future__ import annotations

import torch

from fsc_clip.data.collate import CachedTokenizer

TEXTS = ["a red circle left of a blue square", "a blue square", "two dogs", "a red circle left of a blue square"]


class CountingTokenizer:
    """Wraps a real tokenizer and counts the texts it was asked to tokenize."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.seen = tokenizer, []
        self.context_length = getattr(tokenizer, "context_length", None)

    def __call__(self, texts):
        self.seen.extend(texts)
        return self.tokenizer(texts)


def test_cached_ids_equal_the_tokenizers_and_each_text_is_tokenized_once(tiny_model) -> None:
    counting = CountingTokenizer(tiny_model.tokenizer)
    cached = CachedTokenizer(counting)
    first = cached(TEXTS)
    assert first.dtype == torch.long and torch.equal(first, tiny_model.tokenizer(TEXTS))
    second = [*reversed(TEXTS), "a new caption"]
    assert torch.equal(cached(second), tiny_model.tokenizer(second))
    assert sorted(counting.seen) == sorted({*TEXTS, "a new caption"})  # duplicates and repeats never re-tokenized
    assert cached.context_length == tiny_model.tokenizer.context_length


def test_full_cache_still_answers_exactly_and_stops_growing(tiny_model) -> None:
    counting = CountingTokenizer(tiny_model.tokenizer)
    cached = CachedTokenizer(counting, max_entries=2)
    texts = [f"caption number {i}" for i in range(5)]
    assert torch.equal(cached(texts), tiny_model.tokenizer(texts))
    assert len(cached._rows) == 2
    counting.seen.clear()
    assert torch.equal(cached(texts), tiny_model.tokenizer(texts))
    assert counting.seen == texts[2:]  # the two kept texts were served from the cache


def test_variable_length_tokenizer_turns_the_cache_off() -> None:
    def dynamic(texts):  # pads to the longest text of the call, like HF tokenizers without max_length padding
        n = max(len(t.split()) for t in texts)
        return torch.tensor([[len(w) for w in t.split()] + [0] * (n - len(t.split())) for t in texts])

    cached = CachedTokenizer(dynamic)
    assert torch.equal(cached(["a b"]), dynamic(["a b"]))
    assert torch.equal(cached(["a b", "ccc dd eeee"]), dynamic(["a b", "ccc dd eeee"]))  # other L: passed through
    assert torch.equal(cached(["a b"]), dynamic(["a b"]))
