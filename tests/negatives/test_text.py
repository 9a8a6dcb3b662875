"""String rebuilding helpers (no NLP resources needed)."""

from __future__ import annotations

import pytest

from fsc_clip.negatives.text import article_for, compact, match_case, normalize, render


@pytest.mark.parametrize(
    ("word", "article"),
    [("umbrella", "an"), ("dog", "a"), ("hour", "an"), ("university", "a"), ("one", "a"), ("SUV", "an"),
     ("TV", "a"), ("elephant", "an"), ("user", "a"), ("honest", "an")],
)  # fmt: skip
def test_article_for(word: str, article: str) -> None:
    assert article_for(word) == article


def test_match_case_and_normalize() -> None:
    assert match_case("cat", "Dog") == "Cat" and match_case("cat", "DOG") == "CAT" and match_case("cat", "dog") == "cat"
    assert normalize("A man's  dog, on the Beach.") == "a man's dog on the beach"


def test_render_keeps_whitespace_and_fixes_case_and_articles() -> None:
    words = ("A", "man", "'s", "dog", "and", "an", "apple", ".")
    ws = (" ", "", " ", " ", " ", " ", "", "")
    tags = ("DT", "NN", "POS", "NN", "CC", "DT", "NN", ".")
    assert render(words, tags, [(w, s, i) for i, (w, s) in enumerate(zip(words, ws))]) == "A man's dog and an apple."
    # swap "man" and "apple": the articles follow their new nouns; the moved first word keeps no capital
    pieces = [("A", " ", 0), ("apple", "", 6), ("'s", " ", 2), ("dog", " ", 3), ("and", " ", 4), ("an", " ", 5)]
    pieces += [("man", "", 1), (".", "", 7)]
    assert render(words, tags, pieces) == "An apple's dog and a man."
    # moving the first word: the new first word is capitalised, the old one lower-cased
    pieces = [("dog", " ", 3), ("A", " ", 0), ("man", "", 1), (".", "", 7)]
    assert render(words, tags, pieces, articles=False) == "Dog a man."


@pytest.mark.parametrize(
    "text",
    ["A Semi-Trucks, 12!", "x_y\tz  ", "café – Ünïcode ½ ², ٣", "", "-semitrucks", "ΑΒΓ dogs", "e\u0301 combining"],
)
def test_compact_fast_path_equals_the_definition(text: str) -> None:
    assert compact(text) == "".join(ch for ch in text.lower() if ch.isalnum())
