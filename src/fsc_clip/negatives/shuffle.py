"""``ngram_shuffle_N``: cut the caption into consecutive N-grams of words and shuffle their order.

Words are whitespace-delimited groups of tokens ("man's", "t-shirt," stay whole) and final sentence punctuation
stays at the end, so shuffles never re-parse and never produce tokenisation artefacts. The result must differ
from the caption (a draw that reproduces it is retried).
"""

from __future__ import annotations

import random

from fsc_clip.negatives.generator import GENERATORS
from fsc_clip.negatives.parse import Parsed
from fsc_clip.negatives.text import Piece, render

_FINAL_PUNCT = frozenset({".", "!", "?", "...", ";"})


def word_units(parsed: Parsed) -> tuple[list[list[int]], int]:
    """Token indices grouped into whitespace-delimited words, and where the final punctuation starts."""
    end = len(parsed.words)
    while end > 0 and parsed.words[end - 1] in _FINAL_PUNCT:
        end -= 1
    units: list[list[int]] = []
    current: list[int] = []
    for i in range(end):
        current.append(i)
        if parsed.ws[i] or i == end - 1:
            units.append(current)
            current = []
    return units, end


class NgramShuffle:
    """Shuffle the order of word N-grams (the last N-gram may be shorter)."""

    def __init__(self, n: int = 2) -> None:
        if n < 1:
            raise ValueError(f"ngram_shuffle needs N >= 1, got {n}")
        self.n = n
        self.name = f"ngram_shuffle_{n}"

    def options(self, parsed: Parsed) -> tuple[list[list[int]], int] | None:
        units, end = word_units(parsed)
        grams = [[i for unit in units[k : k + self.n] for i in unit] for k in range(0, len(units), self.n)]
        return (grams, end) if len(grams) >= 2 else None

    def draw(self, parsed: Parsed, options: tuple[list[list[int]], int], rng: random.Random) -> str | None:
        grams, end = options
        order = list(range(len(grams)))
        rng.shuffle(order)
        if order == sorted(order):
            return None
        pieces: list[Piece] = []
        for g in order:
            pieces.extend((parsed.words[i], parsed.ws[i], i) for i in grams[g])
            word, _, origin = pieces[-1]
            pieces[-1] = (word, " ", origin)
        word, _, origin = pieces[-1]
        pieces[-1] = (word, parsed.ws[end - 1], origin)
        pieces.extend((parsed.words[i], parsed.ws[i], i) for i in range(end, len(parsed.words)))
        return render(parsed.words, parsed.tags, pieces, articles=False)


for _n in (1, 2, 3):
    GENERATORS.register(f"ngram_shuffle_{_n}", NgramShuffle(_n))
