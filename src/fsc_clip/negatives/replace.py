"""``replace``: change one entity, attribute or relation of a caption's scene graph (SugarCrepe-REPLACE-like).

The scene graph is read off the single spaCy parse: entities are the heads of noun chunks, attributes their
adjective modifiers, relations the main verbs and the (possibly multi-word) prepositions. The type applies only
to captions with >= 2 entities and >= 1 relation or attribute. One slot is chosen uniformly among those that
have candidates; nouns/verbs/adjectives are replaced by WordNet co-hyponyms/antonyms from
:mod:`fsc_clip.negatives.lexicon` (visually concrete, never synonyms), prepositions by other prepositions
sampled by frequency (package data ``prepositions.tsv``). Inflection (plural, tense, degree) and capitalisation
are kept; "a"/"an" is re-agreed with the new word.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from fsc_clip.negatives.generator import GENERATORS
from fsc_clip.negatives.lexicon import Candidates, _cumulative, get_lexicon
from fsc_clip.negatives.parse import Parsed
from fsc_clip.negatives.resources import RESOURCE_DIR
from fsc_clip.negatives.text import inflect, lemma_of, match_case, render

_ATTRIBUTE_DEPS = frozenset({"amod", "acomp", "conj", "attr", "oprd"})
_PREP_DEPS = frozenset({"prep", "agent", "ROOT", "conj"})
_SPATIAL_PARTICLES = frozenset({"inside", "outside", "down", "underneath", "behind", "above", "below"})


@dataclass(frozen=True)
class Slot:
    """One replaceable word/phrase: tokens ``[start, end)``, its PTB tag and the candidate table."""

    start: int
    end: int
    kind: str  # "entity" | "attribute" | "relation"
    tag: str
    candidates: Candidates


def _read_list(name: str) -> list[str]:
    lines = (RESOURCE_DIR / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=1)
def prepositions() -> dict[str, tuple[float, str]]:
    """Preposition -> (relative frequency weight, near-synonym group) (package data)."""
    rows = [line.split("\t") for line in _read_list("prepositions.tsv")[1:]]
    return {prep: (float(weight), group) for prep, weight, group in rows}


@lru_cache(maxsize=1)
def _stop_words() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    names = ("nonvisual_nouns.txt", "nonreplaceable_verbs.txt", "nonreplaceable_adjectives.txt")
    nouns, verbs, adjectives = (frozenset(_read_list(name)) for name in names)
    return nouns, verbs, adjectives


@lru_cache(maxsize=64)
def _prep_table(prep: str) -> Candidates | None:
    group = prepositions()[prep][1]
    return _cumulative({p: w for p, (w, g) in prepositions().items() if g != group})


def _prep_slots(parsed: Parsed) -> list[Slot]:
    """Prepositions, longest multi-word match first ("in front of" before "in")."""
    preps = prepositions()
    longest = max(len(p.split()) for p in preps)
    lowered = [w.lower() for w in parsed.words]
    slots, i = [], 0
    while i < len(lowered):
        for n in range(min(longest, len(lowered) - i), 0, -1):
            phrase = " ".join(lowered[i : i + n])
            if phrase in preps and (n > 1 or _is_preposition(parsed, i)):
                table = _prep_table(phrase)
                if table is not None:  # None only if every preposition shares this one's group (not in the list)
                    slots.append(Slot(i, i + n, "relation", "IN", table))
                i += n - 1
                break
        i += 1
    return slots


def _is_preposition(parsed: Parsed, i: int) -> bool:
    """A single-word preposition heading a prepositional phrase (or a spatial particle like "down")."""
    if parsed.tags[i] == "IN":
        return parsed.deps[i] in _PREP_DEPS
    return parsed.tags[i] in ("RP", "RB") and parsed.words[i].lower() in _SPATIAL_PARTICLES


def _word_slots(parsed: Parsed, skip: set[int]) -> list[Slot]:
    lexicon = get_lexicon()
    nonvisual, fixed_verbs, fixed_adjectives = _stop_words()
    slots = []
    for i, (tag, pos, dep) in enumerate(zip(parsed.tags, parsed.pos, parsed.deps)):
        if i in skip:
            continue
        table, kind = None, ""
        if tag in ("NN", "NNS") and pos == "NOUN" and dep != "compound":
            lemma = lemma_of(parsed.words[i], "NOUN")
            table, kind = (None if lemma in nonvisual else lexicon.nouns(lemma)), "entity"
        elif pos == "ADJ" and tag in ("JJ", "JJR", "JJS") and dep in _ATTRIBUTE_DEPS:
            lemma = lemma_of(parsed.words[i], "ADJ")
            table, kind = (None if lemma in fixed_adjectives else lexicon.adjectives(lemma)), "attribute"
        elif pos == "VERB":
            lemma = lemma_of(parsed.words[i], "VERB")
            table, kind = (None if lemma in fixed_verbs else lexicon.verbs(lemma)), "relation"
        if table:
            slots.append(Slot(i, i + 1, kind, tag, table))
    return slots


def scene_graph_ok(parsed: Parsed) -> bool:
    """>= 2 entities (noun-chunk heads) and >= 1 relation (verb/preposition) or attribute (adjective)."""
    entities = sum(parsed.pos[end - 1] in ("NOUN", "PROPN") for _, end in parsed.noun_chunks())
    if entities < 2:
        return False
    return any(p in ("VERB", "ADJ", "ADP") for p in parsed.pos)


_SLOT_TAGS = {"NOUN": ("NN", "NNS"), "ADJ": ("JJ", "JJR", "JJS"), "VERB": ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ")}


def possible_words(words: Iterable[str]) -> set[str]:
    """Every word or phrase ``replace`` could bring into a caption made of ``words``: each word's candidates as a
    noun, an adjective and a verb, in every inflection a slot can ask for, every preposition, and "a" / "an".

    A superset (the parse decides which slots a caption has). The demo's shipped base keeps the embedding rows of
    these words' tokens, because a caption without a precomputed ``replace`` negative gets one online.
    """
    lexicon = get_lexicon()
    tables = {"NOUN": lexicon.nouns, "ADJ": lexicon.adjectives, "VERB": lexicon.verbs}
    out = {*prepositions(), "a", "an"}
    for word in set(words):
        for upos, tags in _SLOT_TAGS.items():
            table = tables[upos](lemma_of(word, upos))
            for candidate in table[0] if table else ():
                out.update(inflect(candidate, tag) for tag in tags)
    return out


class Replace:
    """Replace one scene-graph word/phrase (see module docstring)."""

    name = "replace"

    def options(self, parsed: Parsed) -> list[Slot] | None:
        if not scene_graph_ok(parsed):
            return None
        preps = _prep_slots(parsed)
        covered = {i for s in preps for i in range(s.start, s.end)}
        return preps + _word_slots(parsed, covered) or None

    def draw(self, parsed: Parsed, options: list[Slot], rng: random.Random) -> str | None:
        slot = options[rng.randrange(len(options))]
        words, cum = slot.candidates
        new = rng.choices(words, cum_weights=cum)[0]
        if slot.kind != "relation" or slot.tag != "IN":
            new = inflect(new, slot.tag)
        new = match_case(new, parsed.words[slot.start])
        pieces = [(w, s, i) for i, (w, s) in enumerate(zip(parsed.words, parsed.ws)) if i < slot.start]
        pieces.append((new, parsed.ws[slot.end - 1], -1))
        pieces.extend((parsed.words[i], parsed.ws[i], i) for i in range(slot.end, len(parsed.words)))
        return render(parsed.words, parsed.tags, pieces)


GENERATORS.register("replace", Replace())
