"""The generator registry and the sampling loop shared by all negative types.

A generator looks at one :class:`~fsc_clip.negatives.parse.Parsed` caption in two steps:
``options(parsed)`` works out what it could change (``None`` when the type cannot apply to this caption), and
``draw(parsed, options, rng)`` makes one random negative from those options. :func:`propose` turns that into
``k`` distinct candidates that all differ from the caption after :func:`~fsc_clip.negatives.text.normalize`.
Adding a type is one new module with a class registered in :data:`GENERATORS`.
"""

from __future__ import annotations

import random
import re
from typing import Any, Protocol

from fsc_clip.negatives.parse import Parsed
from fsc_clip.negatives.text import normalize
from fsc_clip.registry import Registry


class Generator(Protocol):
    """What a negative type implements."""

    name: str

    def options(self, parsed: Parsed) -> Any | None:
        """What could be changed in this caption; ``None`` (or empty) when the type cannot apply."""

    def draw(self, parsed: Parsed, options: Any, rng: random.Random) -> str | None:
        """One random negative built from ``options`` (``None`` if this attempt produced nothing)."""


GENERATORS: Registry[Generator] = Registry(
    "negative generator",
    lazy_modules=(
        "fsc_clip.negatives.swap",
        "fsc_clip.negatives.replace",
        "fsc_clip.negatives.shuffle",
        "fsc_clip.negatives.svlc",
    ),
)
_NGRAM_RE = re.compile(r"ngram_shuffle_(\d+)$")


def get_generator(name: str) -> Generator:
    """The registered generator ``name``; ``ngram_shuffle_N`` works for any ``N >= 1``."""
    match = _NGRAM_RE.match(name)
    if match and name not in GENERATORS:
        from fsc_clip.negatives.shuffle import NgramShuffle

        return NgramShuffle(int(match.group(1)))
    return GENERATORS.get(name)


def propose(generator: Generator, parsed: Parsed, rng: random.Random, k: int = 1, tries: int = 0) -> list[str]:
    """Up to ``k`` distinct negatives of one type for one caption.

    Args:
        generator: The negative type.
        parsed: The caption's parse.
        rng: Source of randomness (seeded per caption, epoch and type by the caller).
        k: Number of candidates wanted.
        tries: Draws attempted before giving up (default ``4 * k + 4``).

    Returns:
        At most ``k`` strings, each different from the caption and from each other after normalisation; an
        empty list exactly when the type cannot apply (or every attempt reproduced the caption).
    """
    options = generator.options(parsed)
    if not options:
        return []
    seen = {normalize(parsed.text)}
    out: list[str] = []
    for _ in range(tries or 4 * k + 4):
        text = generator.draw(parsed, options, rng)
        if text is None:
            continue
        key = normalize(text)
        if key in seen:
            continue
        seen.add(key)
        out.append(text)
        if len(out) == k:
            break
    return out
