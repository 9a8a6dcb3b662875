"""Rebuilding caption strings from edited token sequences: whitespace, sentence case, articles, inflection.

An edited caption is a list of pieces ``(word, whitespace_after, origin)`` where ``origin`` is the index of the
token in the original parse, or ``-1`` for a word that was not in the caption. Whitespace is taken from spaCy's
``token.whitespace_`` so "man's" stays "man's" (no "man 's" artefacts).
"""

from __future__ import annotations

import re
from functools import lru_cache

Piece = tuple[str, str, int]

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Initial letters/words that break the vowel-letter rule for "a"/"an".
_AN_CONSONANT_SOUND = ("uni", "use", "usa", "usu", "uti", "ure", "eu", "ewe", "one", "once", "ouija", "u-")
_AN_SILENT_H = ("hour", "honest", "honor", "honour", "heir")


def normalize(text: str) -> str:
    """Lower-cased word sequence without punctuation; negatives must differ from the caption under it."""
    return " ".join(_WORD_RE.findall(text.lower()))


_ASCII_NOT_ALNUM = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalnum()))


def compact(text: str) -> str:
    """Letters and digits only, lower case: equal for texts that differ only in spacing or punctuation.

    :func:`normalize` splits words at punctuation, so it tells "semi-trucks" ("semi trucks") from "-semitrucks"
    ("semitrucks"); to a reader (and under "lower case, punctuation deleted") they are the same caption.
    """
    low = text.lower()
    if low.isascii():  # the common case, ~10x faster; for ASCII, str.isalnum is exactly [a-z0-9] after lower()
        return low.translate(_ASCII_NOT_ALNUM)
    return "".join(ch for ch in low if ch.isalnum())


def same_text(a: str, b: str) -> bool:
    """Whether two captions are the same text up to case, spacing and punctuation (the test every negative fails)."""
    return normalize(a) == normalize(b) or compact(a) == compact(b)


def article_for(word: str) -> str:
    """``"an"`` before a vowel sound, else ``"a"`` (spelling heuristic with the usual exceptions)."""
    low = word.lower()
    if low.startswith(_AN_SILENT_H):
        return "an"
    if not low or low.startswith(_AN_CONSONANT_SOUND):
        return "a"
    if len(word) > 1 and word.isupper():  # acronyms: "an SUV", "a TV"
        return "an" if low[0] in "aefhilmnorsx" else "a"
    return "an" if low[0] in "aeiou" else "a"


def match_case(new: str, old: str) -> str:
    """Give ``new`` the capitalisation pattern of ``old`` (lower, Title or UPPER)."""
    if len(old) > 1 and old.isupper():
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def render(words: tuple[str, ...], tags: tuple[str, ...], pieces: list[Piece], articles: bool = True) -> str:
    """Join pieces into a caption, fixing sentence case and "a"/"an" next to words that changed.

    Args:
        words: The original caption's tokens (to know what changed).
        tags: The original PTB tags (proper nouns keep their capital when moved).
        pieces: The edited sequence.
        articles: Re-agree "a"/"an" with a changed neighbour (off for shuffles, which move the articles).
    """
    pieces = list(pieces)
    if pieces and words and words[0][:1].isupper():
        for k, (word, ws, origin) in enumerate(pieces):
            if k == 0 and origin != 0:
                pieces[0] = (word[:1].upper() + word[1:], ws, origin)
            elif k > 0 and origin == 0 and _lowercase_when_moved(word, tags[0]):
                pieces[k] = (word[:1].lower() + word[1:], ws, origin)
    for k in range(len(pieces) - 1 if articles else 0):
        word, ws, origin = pieces[k]
        if word.lower() not in ("a", "an"):
            continue
        next_word, _, next_origin = pieces[k + 1]
        if origin >= 0 and next_origin == origin + 1 and next_word == words[next_origin]:
            continue  # the neighbour is unchanged: keep the original article
        pieces[k] = (match_case(article_for(next_word), word), ws, origin)
    return "".join(word + ws for word, ws, _ in pieces).strip()


def _lowercase_when_moved(word: str, tag: str) -> bool:
    return tag not in ("NNP", "NNPS") and word != "I" and not (len(word) > 1 and word.isupper())


@lru_cache(maxsize=65536)
def lemma_of(word: str, upos: str) -> str:
    """Lemma of ``word`` for a coarse POS (``NOUN``/``VERB``/``ADJ``), via lemminflect's rules + lexicon."""
    from lemminflect import getLemma

    lemmas = getLemma(word.lower(), upos=upos, lemmatize_oov=True)
    return lemmas[0] if lemmas else word.lower()


@lru_cache(maxsize=65536)
def inflect(lemma: str, tag: str) -> str:
    """Inflect ``lemma`` to a PTB ``tag`` (``NNS``, ``VBG``, ``JJR``, ...), keeping multi-word heads right."""
    if tag in ("NN", "VB", "JJ", "NNP"):
        return lemma
    from lemminflect import getInflection

    head, sep, rest = lemma.partition(" ")
    if tag in ("JJR", "JJS"):  # no rule-made "insignificanter": unknown comparatives take more/most
        forms = getInflection(head, tag=tag, inflect_oov=False)
        return (forms[0] if forms else ("more " if tag == "JJR" else "most ") + head) + sep + rest
    forms = getInflection(head, tag=tag, inflect_oov=True)
    return (forms[0] if forms else head) + sep + rest
