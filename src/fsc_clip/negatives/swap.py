"""``negclip``: swap two spans of the same kind (NegCLIP-style), e.g.
"a man in a red shirt riding a brown horse" -> "a man in a brown horse riding a red shirt".

Kinds: noun chunks longer than 2 tokens, verb phrases, singular nouns, plural nouns, adverbs, adjectives. A kind
is chosen uniformly among those with two spans of different text, then a pair uniformly within it. The swap keeps
the multiset of words (up to the sentence-initial capital and "a"/"an" agreement).
"""

from __future__ import annotations

import random

from fsc_clip.negatives.generator import GENERATORS
from fsc_clip.negatives.parse import Parsed
from fsc_clip.negatives.text import Piece, normalize, render

Span = tuple[int, int]


def span_kinds(parsed: Parsed) -> dict[str, list[Span]]:
    """Candidate spans per kind, ``[start, end)`` token indices."""
    kinds: dict[str, list[Span]] = {
        "noun_chunk": [c for c in parsed.noun_chunks() if c[1] - c[0] > 2],
        "verb_phrase": parsed.verb_phrases(),
        "noun_singular": [],
        "noun_plural": [],
        "adverb": [],
        "adjective": [],
    }
    for i, (tag, pos) in enumerate(zip(parsed.tags, parsed.pos)):
        if pos == "PUNCT":  # a hyphen tagged NNS/JJ inside "semi-trucks" is not a noun to swap
            continue
        if tag == "NN":
            kinds["noun_singular"].append((i, i + 1))
        elif tag == "NNS":
            kinds["noun_plural"].append((i, i + 1))
        elif pos == "ADV":
            kinds["adverb"].append((i, i + 1))
        elif pos == "ADJ":
            kinds["adjective"].append((i, i + 1))
    return kinds


def swap_spans(parsed: Parsed, a: Span, b: Span) -> str:
    """The caption with non-overlapping spans ``a`` and ``b`` exchanged.

    Each moved span takes the trailing whitespace of the slot it lands in, so punctuation attached to a slot
    ("shirt," / "horse.") stays where it was.
    """
    if a > b:
        a, b = b, a
    words, ws = parsed.words, parsed.ws

    def moved(src: Span, slot: Span) -> list[Piece]:
        pieces = [(words[i], ws[i], i) for i in range(*src)]
        last_word, _, last_origin = pieces[-1]
        pieces[-1] = (last_word, ws[slot[1] - 1], last_origin)
        return pieces

    def keep(start: int, end: int) -> list[Piece]:
        return [(words[i], ws[i], i) for i in range(start, end)]

    pieces = keep(0, a[0]) + moved(b, a) + keep(a[1], b[0]) + moved(a, b) + keep(b[1], len(words))
    return render(words, parsed.tags, pieces)


class NegClipSwap:
    """Swap two same-kind spans (see module docstring)."""

    name = "negclip"

    def options(self, parsed: Parsed) -> list[list[Span]] | None:
        usable = []
        for spans in span_kinds(parsed).values():
            texts = {normalize(" ".join(parsed.words[s:e])) for s, e in spans}
            if len(texts) >= 2:
                usable.append(spans)
        return usable or None

    def draw(self, parsed: Parsed, options: list[list[Span]], rng: random.Random) -> str | None:
        spans = options[rng.randrange(len(options))]
        a, b = rng.sample(spans, 2)
        if normalize(" ".join(parsed.words[a[0] : a[1]])) == normalize(" ".join(parsed.words[b[0] : b[1]])):
            return None
        return swap_spans(parsed, a, b)


GENERATORS.register("negclip", NegClipSwap())
