"""The sampling loop shared by all negative types: :func:`propose` and the generator look-up.

A generator (:class:`~fsc_clip.negatives.generator.Generator`) looks at one
:class:`~fsc_clip.negatives.parse.Parsed` caption in two steps: ``options(parsed)`` works out what it could change
(``None`` when the type cannot apply to this caption), and ``draw(parsed, options, rng)`` makes one random negative
from those options. :func:`propose` turns that into ``k`` distinct candidates that all differ from the caption,
for every generator alike (the promise is *never* a negative identical to its caption):

* textually: up to case, spacing and punctuation (:func:`~fsc_clip.negatives.text.same_text`: neither the word
  sequence of :func:`~fsc_clip.negatives.text.normalize` nor the letters of
  :func:`~fsc_clip.negatives.text.compact` may be equal; a swap that only moves the hyphen of "semi-trucks" fails);
* to the model: within the first ``context_length`` tokens. For a caption longer than the window the generator
  only sees the visible words (:meth:`Parsed.head`) and the rest is appended unchanged, so the edit lands where
  the encoder reads it; a draw that still differs only beyond the window is rejected.

Adding a type is one new module with a class registered in :data:`~fsc_clip.negatives.generator.GENERATORS`.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from fsc_clip.negatives.generator import GENERATORS, Generator
from fsc_clip.negatives.parse import Parsed
from fsc_clip.negatives.shuffle import NgramShuffle
from fsc_clip.negatives.text import compact, normalize
from fsc_clip.negatives.window import ContextWindow

__all__ = ["GENERATORS", "Generator", "Proposal", "get_generator", "propose", "propose_counted"]

_NGRAM_RE = re.compile(r"ngram_shuffle_(\d+)$")


def get_generator(name: str) -> Generator:
    """The registered generator ``name``; ``ngram_shuffle_N`` works for any ``N >= 1``."""
    match = _NGRAM_RE.match(name)
    if match and name not in GENERATORS:
        return NgramShuffle(int(match.group(1)))
    return GENERATORS.get(name)


@dataclass
class Proposal:
    """Candidates of one type for one caption, and how many draws were dropped as invisible to the model."""

    candidates: list[str]
    hidden: int = 0  # draws that differed from the caption only beyond the context window


def _visible_view(parsed: Parsed, window: ContextWindow | None) -> tuple[Parsed, str]:
    """(parse the generator works on, text appended unchanged after its output)."""
    if window is None:
        return parsed, ""
    n = window.visible_words(parsed)
    if n >= len(parsed):
        return parsed, ""
    while n > 0 and not parsed.ws[n - 1]:  # cut between words, never inside one ("man|'s")
        n -= 1
    tail = "".join(w + s for w, s in zip(parsed.words[n:], parsed.ws[n:]))
    return parsed.head(n), (parsed.ws[n - 1] if n else "") + tail


def propose_counted(
    generator: Generator,
    parsed: Parsed,
    rng: random.Random,
    k: int = 1,
    tries: int = 0,
    window: ContextWindow | None = None,
) -> Proposal:
    """:func:`propose`, also counting the draws rejected because they differed only beyond ``window``."""
    view, tail = _visible_view(parsed, window)
    options = generator.options(view) if len(view) else None
    if not options:
        # Counted as hidden when the type applies to the whole caption but not to its visible part.
        return Proposal([], int(view is not parsed and bool(generator.options(parsed))))
    seen_words, seen_letters = {normalize(parsed.text)}, {compact(parsed.text)}
    out: list[str] = []
    hidden = 0
    for _ in range(tries or 4 * k + 4):
        text = generator.draw(view, options, rng)
        if text is None:
            continue
        text = (text + tail).strip()
        words, letters = normalize(text), compact(text)
        if words in seen_words or letters in seen_letters:
            continue
        if window is not None and (
            window.same_to_model(parsed.text, text) or any(window.same_to_model(o, text) for o in out)
        ):
            hidden += 1
            continue
        seen_words.add(words)
        seen_letters.add(letters)
        out.append(text)
        if len(out) == k:
            break
    return Proposal(out, hidden)


def propose(
    generator: Generator,
    parsed: Parsed,
    rng: random.Random,
    k: int = 1,
    tries: int = 0,
    window: ContextWindow | None = None,
) -> list[str]:
    """Up to ``k`` distinct negatives of one type for one caption.

    Args:
        generator: The negative type.
        parsed: The caption's parse.
        rng: Source of randomness (seeded per caption, epoch and type by the caller).
        k: Number of candidates wanted.
        tries: Draws attempted before giving up (default ``4 * k + 4``).
        window: The text encoder's context window (``None``: unlimited).

    Returns:
        At most ``k`` strings, each different from the caption and from each other after normalisation and within
        the window; an empty list exactly when the type cannot apply (or every attempt reproduced the caption).
    """
    return propose_counted(generator, parsed, rng, k, tries, window).candidates
