"""Never a negative identical to its caption: textually (after normalisation) or to the model (context window).

Real spaCy + real WordNet; the model's view is checked independently with open_clip's own ``tokenize`` (what the
text tower reads), not with the code under test.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from fsc_clip.negatives import GENERATORS, NegativeStats, generate_candidates, generate_negatives
from fsc_clip.negatives.base import propose, propose_counted
from fsc_clip.negatives.parse import PARSE_CACHE
from fsc_clip.negatives.text import normalize
from fsc_clip.negatives.window import ContextWindow

pytestmark = pytest.mark.usefixtures("nlp_resources")

CORPUS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "captions.txt"
TYPES = ["negclip", "replace", "ngram_shuffle_2", "ngram_shuffle_3", "svlc"]


def plain(text: str) -> str:
    """An independent normalisation: lower case, punctuation deleted (not split), whitespace collapsed."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def model_view(texts: list[str], context_length: int) -> list[list[int]]:
    import open_clip

    return open_clip.tokenize(texts, context_length=context_length).tolist()


def corpus(n: int) -> list[str]:
    return [c for c in CORPUS.read_text(encoding="utf-8").splitlines() if c.strip()][:n]


class Echo:
    """A faulty generator: returns the caption re-cased / re-spaced / re-punctuated (NegCLIP's TSV has such)."""

    name = "echo"

    def options(self, parsed):
        return [0]

    def draw(self, parsed, options, rng):
        words = list(parsed.words)
        return rng.choice(
            [" ".join(words), parsed.text.upper(), parsed.text.replace(" ", "  ") + " .", " - ".join(words)]
        )


class TailEdit:
    """A generator that only ever edits the last word (beyond the window for a long caption)."""

    name = "tail"

    def options(self, parsed):
        return [len(parsed) - 1] if len(parsed) > 1 else None

    def draw(self, parsed, options, rng):
        i = options[0]
        if i >= len(parsed):
            return None
        return "".join(w + s for w, s in zip(parsed.words[:i], parsed.ws[:i])) + rng.choice(["zebra", "giraffe"])


class FarTail:
    """A generator that ignores the parse it is given and edits the last word of the whole caption."""

    name = "far_tail"

    def __init__(self, text: str) -> None:
        self.text = text

    def options(self, parsed):
        return [0]

    def draw(self, parsed, options, rng):
        head, _, _ = self.text.rstrip(".").rpartition(" ")
        return f"{head} {rng.choice(['zebra', 'giraffe'])}"


def test_the_guard_holds_for_any_generator():
    (parsed,) = PARSE_CACHE.parse(["A man riding a horse on the beach."])
    assert propose(Echo(), parsed, random.Random(0), k=3) == []
    (long,) = PARSE_CACHE.parse([" ".join(corpus(4))])
    assert len(model_view([long.text], 77)[0]) == 77
    found = propose_counted(TailEdit(), long, random.Random(0), k=1, window=ContextWindow(20))
    # The visible part is edited instead of the tail (the generator only sees the first words) ...
    assert found.candidates and model_view(found.candidates, 20) != model_view([long.text], 20)
    # ... and a generator that edits beyond the window anyway is rejected: counted as hidden, never returned.
    far = FarTail(long.text)
    found = propose_counted(far, long, random.Random(0), k=1, window=ContextWindow(20))
    assert found.candidates == [] and found.hidden > 0
    assert propose(far, long, random.Random(0), k=1, window=None)  # without a window it would have been used


@pytest.mark.parametrize("name", TYPES)
def test_no_negative_equals_its_caption_on_real_captions(name):
    captions = corpus(400)
    for epoch in range(2):
        negatives, _ = generate_negatives(captions, style=name, seed=11, epoch=epoch)
        for caption, (negative,) in zip(captions, negatives):
            if negative is not None:
                assert normalize(negative) != normalize(caption), (caption, negative)
                assert plain(negative) != plain(caption), (caption, negative)


@pytest.mark.parametrize("name", TYPES)
def test_long_captions_are_edited_within_the_context(name):
    lines = corpus(90)
    captions = [" and ".join(lines[i : i + 3]) for i in range(0, 90, 3)]  # ~35-50 CLIP tokens each
    context = 20
    assert all(len(v) == context and v[-1] != 0 for v in model_view(captions, context))  # all overflow
    negatives, _ = generate_negatives(captions, style=name, seed=0, context_length=context)
    produced = [(c, n) for c, (n,) in zip(captions, negatives) if n is not None]
    assert len(produced) >= len(captions) // 2, "edits within the window should usually be possible"
    for caption, negative in produced:
        seen = model_view([caption, negative], context)
        assert seen[0] != seen[1], (caption, negative)  # the text tower reads a different caption
    candidates = generate_candidates(captions, style=name, per_type=3, seed=0, context_length=context)
    for caption, entry in zip(captions, candidates):
        views = model_view([caption, *entry[name]], context)
        assert len({tuple(v) for v in views}) == len(views), (caption, entry)  # distinct from each other too


def test_types_that_apply_only_beyond_the_context_give_none_and_are_counted():
    caption = " ".join(str(i) for i in range(1, 25)) + " a man in a red shirt riding a brown horse on the beach."
    stats = NegativeStats()
    (row,), _ = generate_negatives([caption], style="negclip,replace", context_length=20, stats=stats)
    assert row == [None, None]
    assert stats.hidden == {"negclip": 1, "replace": 1} and stats.missing == {"negclip": 1, "replace": 1}
    messages = stats.messages()
    assert any(
        "'negclip' negative that differed from the caption only beyond the first 20 tokens" in m for m in messages
    )
    assert any("no 'replace' negative for 1 of 1 captions (100.0 %)" in m for m in messages)
    (full,), _ = generate_negatives([caption], style="negclip,replace", context_length=None)
    assert None not in full  # the types do apply to the whole caption


def test_registry_is_complete():
    assert set(TYPES) - {"ngram_shuffle_3"} <= set(GENERATORS.names())


HYPHENATED = [
    "Two semi-trucks parked next to a red barn in the snow.",
    "A couple of multi-colored kites flying over a sandy beach.",
    "A man in a t-shirt holding a jack-o-lantern near two semi-trucks.",
    "Three cross-country skiers racing past a large wooden cabin.",
]


def test_hyphens_are_never_words_to_swap_or_replace():
    """spaCy's small model tags the hyphen of "semi-trucks" NNS; a swap that only moved it gave "-semitrucks"."""
    from fsc_clip.negatives.swap import span_kinds

    for parsed in PARSE_CACHE.parse(HYPHENATED):
        for spans in span_kinds(parsed).values():
            for start, end in spans:
                assert any(ch.isalnum() for w in parsed.words[start:end] for ch in w), (parsed.text, start, end)
    for epoch in range(25):
        negatives, types = generate_negatives(HYPHENATED, style="all", seed=1, epoch=epoch)
        for caption, row in zip(HYPHENATED, negatives):
            for name, negative in zip(types, row):
                if negative is not None:
                    assert plain(negative) != plain(caption) and plain(negative).replace(" ", "") != plain(
                        caption
                    ).replace(" ", ""), (name, caption, negative)


def test_the_guard_rejects_a_moved_hyphen():
    (parsed,) = PARSE_CACHE.parse(["Two semi-trucks parked in a lot."])

    class MoveHyphen:
        name = "move_hyphen"

        def options(self, parsed):
            return [0]

        def draw(self, parsed, options, rng):
            return rng.choice(["Two -semitrucks parked in a lot.", "Two semitrucks- parked in a lot."])

    assert propose(MoveHyphen(), parsed, random.Random(0), k=2) == []
