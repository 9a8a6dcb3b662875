"""``svlc``: rule-based replacement of a colour / material / size / state / action / count word by another word
of the same list (package data ``svlc.json``). Actions are matched by verb lemma and re-inflected."""

from __future__ import annotations

import json
import random
from functools import lru_cache

from fsc_clip.negatives.generator import GENERATORS
from fsc_clip.negatives.parse import Parsed
from fsc_clip.negatives.resources import RESOURCE_DIR
from fsc_clip.negatives.text import inflect, lemma_of, match_case, render

# A noun like "glass" counts as a material only when it modifies another noun ("a glass table", not "a glass
# of wine").
_MODIFIER_DEPS = frozenset({"amod", "compound", "nummod", "acomp"})


@lru_cache(maxsize=1)
def word_lists() -> dict[str, tuple[str, ...]]:
    """Category -> words (``action`` holds verb lemmas)."""
    data = json.loads((RESOURCE_DIR / "svlc.json").read_text(encoding="utf-8"))
    return {k: tuple(v) for k, v in data.items() if not k.startswith("_")}


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    """Word -> category for the non-action lists."""
    return {w: cat for cat, words in word_lists().items() if cat != "action" for w in words}


class SVLC:
    """Swap a listed attribute/action/count word for another of its list."""

    name = "svlc"

    def options(self, parsed: Parsed) -> list[tuple[int, str, str]] | None:
        index, actions = _index(), word_lists()["action"]
        slots = []
        for i, (word, pos) in enumerate(zip(parsed.words, parsed.pos)):
            if pos == "VERB" and lemma_of(word, "VERB") in actions:
                slots.append((i, "action", lemma_of(word, "VERB")))
            elif word.lower() in index and (pos in ("ADJ", "NUM") or parsed.deps[i] in _MODIFIER_DEPS):
                slots.append((i, index[word.lower()], word.lower()))
        return slots or None

    def draw(self, parsed: Parsed, options: list[tuple[int, str, str]], rng: random.Random) -> str | None:
        i, category, current = options[rng.randrange(len(options))]
        new = rng.choice([w for w in word_lists()[category] if w != current])
        if category == "action":
            new = inflect(new, parsed.tags[i])
        new = match_case(new, parsed.words[i])
        pieces = [(w, s, k) for k, (w, s) in enumerate(zip(parsed.words, parsed.ws))]
        pieces[i] = (new, parsed.ws[i], -1)
        return render(parsed.words, parsed.tags, pieces)


GENERATORS.register("svlc", SVLC())
