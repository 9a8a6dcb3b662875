"""One spaCy parse per caption, flattened into an immutable, cheap-to-cache :class:`Parsed` record.

Generators never see a spaCy ``Doc``: they read plain tuples (words, trailing whitespace, PTB tags, dependency
labels, heads, subtree edges) and build new strings from them, so documents are never mutated and the parse
of a caption is shared by every generator and every epoch (an LRU cache keyed by the caption text).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

# PTB tag -> coarse (universal) POS; this replaces spaCy's attribute_ruler, which we do not run.
_TAG_TO_POS = {
    "NN": "NOUN", "NNS": "NOUN", "NNP": "PROPN", "NNPS": "PROPN", "JJ": "ADJ", "JJR": "ADJ", "JJS": "ADJ",
    "AFX": "ADJ", "RB": "ADV", "RBR": "ADV", "RBS": "ADV", "WRB": "ADV", "IN": "ADP", "RP": "ADP", "DT": "DET",
    "PDT": "DET", "WDT": "DET", "PRP$": "DET", "WP$": "DET", "CD": "NUM", "PRP": "PRON", "WP": "PRON",
    "EX": "PRON", "CC": "CCONJ", "TO": "PART", "POS": "PART", "MD": "AUX", "UH": "INTJ", "SYM": "SYM",
    "VB": "VERB", "VBD": "VERB", "VBG": "VERB", "VBN": "VERB", "VBP": "VERB", "VBZ": "VERB",
}  # fmt: skip
_AUX_DEPS = frozenset({"aux", "auxpass"})
_AUX_WORDS = frozenset({"is", "are", "was", "were", "be", "been", "being", "am", "'s", "'re", "'m"})
# Dependency labels that make a noun the head of a noun chunk (as in spaCy's English noun_chunks iterator).
_NP_DEPS = frozenset({"oprd", "nsubj", "dobj", "nsubjpass", "pcomp", "pobj", "dative", "appos", "attr", "ROOT"})


class Parsed:
    """The parse of one caption as immutable tuples (indices refer to token positions)."""

    __slots__ = ("deps", "heads", "lefts", "pos", "rights", "tags", "text", "words", "ws")

    def __init__(
        self,
        text: str,
        words: Sequence[str],
        ws: Sequence[str],
        tags: Sequence[str],
        deps: Sequence[str],
        heads: Sequence[int],
        lefts: Sequence[int],
        rights: Sequence[int],
    ) -> None:
        self.text = text
        self.words = tuple(words)
        self.ws = tuple(ws)
        self.tags = tuple(tags)
        self.deps = tuple(deps)
        self.heads = tuple(heads)
        self.lefts = tuple(lefts)
        self.rights = tuple(rights)
        self.pos = tuple(_coarse_pos(w, t, d) for w, t, d in zip(self.words, self.tags, self.deps))

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Parsed({self.text!r})"

    @classmethod
    def from_doc(cls, doc: Any) -> Parsed:
        """Flatten a spaCy ``Doc`` (reads attributes only; the doc is not modified)."""
        rows = [(t.text, t.whitespace_, t.tag_, t.dep_, t.head.i, t.left_edge.i, t.right_edge.i) for t in doc]
        if not rows:
            return cls(doc.text, (), (), (), (), (), (), ())
        return cls(doc.text, *zip(*rows))

    def prefix_text(self, n: int) -> str:
        """The caption text of the first ``n`` tokens (spaCy keeps ``text == "".join(word + ws)``)."""
        return "".join(w + s for w, s in zip(self.words[:n], self.ws[:n])).rstrip()

    def head(self, n: int) -> Parsed:
        """The parse restricted to its first ``n`` tokens, for edits confined to what a text encoder sees.

        Links that leave the prefix are cut: a head beyond it becomes the token itself (a root), a subtree's right
        edge stops at the last kept token. Tags and labels are unchanged.
        """
        if n >= len(self):
            return self
        heads = [h if h < n else i for i, h in enumerate(self.heads[:n])]
        rights = [min(r, n - 1) for r in self.rights[:n]]
        ws = [*self.ws[: n - 1], ""] if n else []
        return Parsed(
            self.prefix_text(n), self.words[:n], ws, self.tags[:n], self.deps[:n], heads, self.lefts[:n], rights
        )

    def noun_chunks(self) -> list[tuple[int, int]]:
        """Base noun phrases as ``[start, end)`` token spans (same rule as spaCy's English iterator)."""
        chunks: list[tuple[int, int]] = []
        prev_end = -1
        for i, pos in enumerate(self.pos):
            if pos not in ("NOUN", "PROPN", "PRON") or self.lefts[i] <= prev_end:
                continue
            dep = self.deps[i]
            if dep == "conj":
                head = self.heads[i]
                while self.deps[head] == "conj" and self.heads[head] < head:
                    head = self.heads[head]
                dep = self.deps[head]
            if dep in _NP_DEPS:
                prev_end = i
                chunks.append((self.lefts[i], i + 1))
        return chunks

    def verb_phrases(self) -> list[tuple[int, int]]:
        """Maximal runs ``AUX/VERB? ADV* VERB+`` (e.g. "is riding", "slowly walking") as ``[start, end)``."""
        spans: list[tuple[int, int]] = []
        i, n = 0, len(self.pos)
        while i < n:
            if self.pos[i] not in ("VERB", "AUX"):
                i += 1
                continue
            j = i
            while j + 1 < n and self.pos[j + 1] in ("VERB", "AUX", "ADV"):
                j += 1
            while j >= i and self.pos[j] != "VERB":  # must end on a main verb
                j -= 1
            if j >= i:
                spans.append((i, j + 1))
            i = max(j + 1, i + 1)
        return spans


def _coarse_pos(word: str, tag: str, dep: str) -> str:
    if not any(ch.isalnum() for ch in word):
        # spaCy's small model tags the hyphen of "semi-trucks" NNS and of "multi-colored" JJ: never a word to edit.
        return "PUNCT"
    pos = _TAG_TO_POS.get(tag)
    if pos is None:
        return "X"
    if pos == "VERB" and (dep in _AUX_DEPS or (word.lower() in _AUX_WORDS and dep != "ROOT")):
        return "AUX"
    if tag == "IN" and dep == "mark":
        return "SCONJ"
    return pos


class ParseCache:
    """Parses captions with the shared spaCy pipeline, memoising the flattened result per caption text.

    Args:
        maxsize: Entries kept (least recently used evicted); ``$FSC_CLIP_PARSE_CACHE`` overrides the default.
        batch_size: ``nlp.pipe`` batch size.
    """

    def __init__(self, maxsize: int | None = None, batch_size: int = 256) -> None:
        self.maxsize = maxsize if maxsize is not None else int(os.environ.get("FSC_CLIP_PARSE_CACHE", "100000"))
        self.batch_size = batch_size
        self._items: OrderedDict[str, Parsed] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def parse(self, captions: Sequence[str]) -> list[Parsed]:
        """Return one :class:`Parsed` per caption, running spaCy once per distinct uncached caption."""
        from fsc_clip.negatives.resources import load_spacy

        with self._lock:
            missing = list(dict.fromkeys(c for c in captions if c not in self._items))
        fresh: dict[str, Parsed] = {}
        if missing:
            nlp = load_spacy()
            for text, doc in zip(missing, nlp.pipe(missing, batch_size=self.batch_size)):
                fresh[text] = Parsed.from_doc(doc)
        with self._lock:
            out = []
            for caption in captions:
                parsed = fresh.get(caption) or self._items.get(caption)
                if parsed is None:  # evicted by a concurrent caller between the two locked sections
                    parsed = fresh[caption] = Parsed.from_doc(load_spacy()(caption))
                out.append(parsed)
            for text, parsed in fresh.items():
                self._items[text] = parsed
            for caption in captions:
                if caption in self._items:
                    self._items.move_to_end(caption)
            while self.maxsize >= 0 and len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return out


PARSE_CACHE = ParseCache()
