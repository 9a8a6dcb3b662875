"""WordNet look-ups for ``replace``: co-hyponyms and antonyms, visually concrete, never synonyms.

The concreteness rule (why "a wooden university" cannot happen): a noun is replaceable, and a word can replace
a noun, only through a sense that (1) descends from ``physical_entity.n.01`` and (2) lies in a lexicographer file
of visible things (:data:`CONCRETE_LEXNAMES`: animals, artifacts, body parts, food, natural objects, people,
plants, substances, places). A candidate word must moreover have such a sense as its *most frequent* noun
sense, share that sense's lexicographer file with the original sense (animal for animal, food for food), and
share no synset with the original word (no synonyms). Colours are replaced by other colours (co-hyponyms of
``chromatic_color``/``achromatic_color``), adjectives otherwise by WordNet antonyms (direct, or through the
head of their similarity cluster), verbs by co-hyponyms (siblings under a hypernym) or antonyms.

Candidates are sampled by corpus frequency: WordNet's SemCor tag counts (``Lemma.count()``) of the candidate
sense, add-one smoothed; a candidate word must occur at least once in SemCor (drops "quagga", "chevrotain").
Nouns use siblings (same hypernym), and cousins (same grandparent) only when there are fewer than 3 siblings.
All results are cached per lemma, so the cost is paid once per distinct word per process.
"""

from __future__ import annotations

import threading
from typing import Any

CONCRETE_LEXNAMES = frozenset(
    {
        "noun.animal",
        "noun.artifact",
        "noun.body",
        "noun.food",
        "noun.object",
        "noun.person",
        "noun.plant",
        "noun.substance",
        "noun.location",
    }
)
_PHYSICAL_ROOT = "physical_entity.n.01"
_COLOR_ROOTS = ("chromatic_color.n.01", "achromatic_color.n.01")
_MAX_SENSES = 3  # senses of the original word considered when looking for a concrete one
_MIN_SIBLINGS = 3  # below this many sibling candidates, cousins are added
_COMMON_SENSES = 2  # a candidate verb/adjective must have the reached sense among its first senses

Candidates = tuple[tuple[str, ...], tuple[float, ...]]  # (words, cumulative weights)


def _cumulative(weights: dict[str, float]) -> Candidates | None:
    if not weights:
        return None
    words = tuple(sorted(weights))  # sorted: independent of set/dict iteration order
    total, cum = 0.0, []
    for w in words:
        total += weights[w]
        cum.append(total)
    return words, tuple(cum)


def _sorted(items: list[Any]) -> list[Any]:
    """NLTK returns related synsets/lemmas from a ``set`` (order varies with PYTHONHASHSEED): fix the order."""
    return sorted(items, key=lambda x: (x.pos(), x.offset()) if hasattr(x, "offset") else (x.key(), 0))


def _single_word(name: str) -> bool:
    return name.isalpha() and name.islower()


class Lexicon:
    """Cached WordNet candidate tables (one instance per process, see :func:`get_lexicon`)."""

    def __init__(self, wordnet: Any) -> None:
        self.wn = wordnet
        self._physical: dict[str, bool] = {}
        self._tables: dict[tuple[str, str], Candidates | None] = {}
        self._lock = threading.Lock()
        self._colors: dict[str, float] | None = None
        self._sense_counts, self._word_counts = self._read_counts()

    def _read_counts(self) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        """SemCor tag counts per sense key and per (word, pos), read once from ``cntlist.rev``.

        NLTK's ``Lemma.count()`` binary-searches that file on every call (~1 ms); a dict is ~1000x faster.
        """
        sense_counts: dict[str, int] = {}
        word_counts: dict[tuple[str, str], int] = {}
        pos_of = {"1": "n", "2": "v", "3": "a", "4": "r", "5": "a"}
        with self.wn.open("cntlist.rev") as handle:
            for line in handle:
                key, _, count = line.split()
                sense_counts[key] = int(count)
                word, _, rest = key.partition("%")
                wkey = (word, pos_of.get(rest[:1], "?"))
                word_counts[wkey] = word_counts.get(wkey, 0) + int(count)
        return sense_counts, word_counts

    def count(self, lemma: Any) -> int:
        """SemCor tag count of a WordNet ``Lemma`` (sense)."""
        return self._sense_counts.get(lemma.key(), 0)

    def word_count(self, word: str, pos: str) -> int:
        """SemCor tag count of a word over all its senses of ``pos``."""
        return self._word_counts.get((word.lower(), pos), 0)

    def offsets(self, word: str, pos: str) -> list[int]:
        """Synset offsets of ``word`` for ``pos`` from the in-memory index (no synset is read from disk)."""
        entry = self.wn._lemma_pos_offset_map.get(word)  # NLTK's parsed index.* files
        if not entry:
            return []
        return entry.get(pos, []) + (entry.get("s", []) if pos == "a" else [])

    def first_sense(self, word: str, pos: str) -> Any | None:
        """The most frequent sense of ``word`` (WordNet orders senses by frequency)."""
        found = self.offsets(word, pos)
        return self.wn.synset_from_pos_and_offset(pos, found[0]) if found else None

    # ------------------------------------------------------------------------------------------ helpers
    def is_physical(self, synset: Any) -> bool:
        """Whether ``synset`` descends from ``physical_entity.n.01`` (memoised over the hypernym graph)."""
        name = synset.name()
        if name not in self._physical:
            self._physical[name] = False  # guards against cycles
            parents = _sorted(synset.hypernyms() + synset.instance_hypernyms())
            self._physical[name] = name == _PHYSICAL_ROOT or any(self.is_physical(p) for p in parents)
        return self._physical[name]

    def is_concrete(self, synset: Any) -> bool:
        """Visually concrete: a physical entity in one of :data:`CONCRETE_LEXNAMES`, and a kind of thing rather
        than a named instance (WordNet's sense of "fry" that is the playwright Christopher Fry is excluded)."""
        return synset.lexname() in CONCRETE_LEXNAMES and not synset.instance_hypernyms() and self.is_physical(synset)

    def concrete_sense(self, lemma: str) -> Any | None:
        """The most frequent concrete noun sense among the first senses of ``lemma`` (``None`` if none)."""
        best, best_count = None, -1
        for lem in self.wn.lemmas(lemma, "n")[:_MAX_SENSES]:
            synset = lem.synset()
            if self.is_concrete(synset) and self.count(lem) > best_count:
                best, best_count = synset, self.count(lem)
        return best

    def _cached(self, key: tuple[str, str], build: Any) -> Candidates | None:
        with self._lock:
            if key in self._tables:
                return self._tables[key]
        table = build(key[1])
        with self._lock:
            self._tables[key] = table
        return table

    # ------------------------------------------------------------------------------------------ tables
    def nouns(self, lemma: str) -> Candidates | None:
        """Concrete co-hyponyms (siblings, then cousins) of a noun lemma, with frequency weights."""
        return self._cached(("n", lemma), self._build_nouns)

    def verbs(self, lemma: str) -> Candidates | None:
        """Co-hyponyms and antonyms of a verb lemma."""
        return self._cached(("v", lemma), self._build_verbs)

    def adjectives(self, lemma: str) -> Candidates | None:
        """Other colours for a colour adjective, else antonyms."""
        return self._cached(("a", lemma), self._build_adjectives)

    def _build_nouns(self, lemma: str) -> Candidates | None:
        sense = self.concrete_sense(lemma)
        if sense is None:
            return None
        own = set(self.offsets(lemma, "n"))
        related = set(sense.closure(lambda s: s.hypernyms() + s.instance_hypernyms()))
        weights: dict[str, float] = {}
        parents = _sorted(sense.hypernyms() + sense.instance_hypernyms())
        for factor, pool in ((2.0, self._children(parents)), (1.0, None)):
            if pool is None:  # cousins only when the word has (almost) no siblings
                if len(weights) >= _MIN_SIBLINGS:
                    break
                pool = self._cousins(parents)
            for synset in pool:
                if synset.offset() in own or synset in related or synset.lexname() != sense.lexname():
                    continue
                for lem in synset.lemmas():
                    word = lem.name()
                    if word == lemma or not _single_word(word):
                        continue
                    if self._noun_ok(word, sense.lexname(), own):  # a word reached twice keeps its best weight
                        weights[word] = max(weights.get(word, 0.0), factor * (self.count(lem) + 1))
        return _cumulative(weights)

    def _children(self, parents: list[Any]) -> list[Any]:
        return [c for p in parents for c in _sorted(p.hyponyms() + p.instance_hyponyms())]

    def _cousins(self, parents: list[Any]) -> list[Any]:
        grand = [g for p in parents for g in _sorted(p.hypernyms())]
        return [c for u in self._children(grand) if u not in parents for c in _sorted(u.hyponyms())]

    def _noun_ok(self, word: str, lexname: str, own: set[int]) -> bool:
        """Concreteness rule for a candidate word: its most frequent sense is concrete, same lexicographer
        file as the original sense, and it shares no synset with the original word."""
        found = self.offsets(word, "n")
        if not found or own.intersection(found) or self.word_count(word, "n") < 1:
            return False
        first = self.wn.synset_from_pos_and_offset("n", found[0])
        return first.lexname() == lexname and self.is_concrete(first)

    def _build_verbs(self, lemma: str) -> Candidates | None:
        senses = self.wn.synsets(lemma, "v")
        if not senses:
            return None
        sense, own = senses[0], set(self.offsets(lemma, "v"))
        related = set(sense.closure(lambda s: s.hypernyms())) | set(sense.hyponyms())
        weights: dict[str, float] = {}
        for lem in (x for s in senses[:_MAX_SENSES] for x in s.lemmas() if x.name() == lemma):
            for ant in _sorted(lem.antonyms()):
                if _single_word(ant.name()):
                    weights[ant.name()] = max(weights.get(ant.name(), 0.0), 2.0 * (self.count(ant) + 1))
        for synset in self._children(_sorted(sense.hypernyms())):
            if synset.offset() in own or synset in related or synset.lexname() != sense.lexname():
                continue
            for lem in synset.lemmas():
                word = lem.name()
                if word == lemma or not _single_word(word):
                    continue
                found = self.offsets(word, "v")
                common = synset.offset() in found[:_COMMON_SENSES]
                if common and not own.intersection(found) and self.word_count(word, "v") > 0:
                    weights[word] = max(weights.get(word, 0.0), self.count(lem) + 1.0)
        return _cumulative(weights)

    def color_words(self) -> dict[str, float]:
        """Single-word colour names that are also adjectives, weighted by frequency."""
        if self._colors is None:
            colors: dict[str, float] = {}
            for root in _COLOR_ROOTS:
                for synset in _sorted(self.wn.synset(root).hyponyms()):
                    for lem in synset.lemmas():
                        word = lem.name()
                        if _single_word(word) and self.offsets(word, "a"):
                            colors[word] = colors.get(word, 1.0) + self.count(lem)
            self._colors = colors
        return self._colors

    def _build_adjectives(self, lemma: str) -> Candidates | None:
        colors = self.color_words()
        if lemma in colors:
            return _cumulative({w: c for w, c in colors.items() if w != lemma})
        senses = self.wn.synsets(lemma, "a")[:_COMMON_SENSES]
        own = set(self.offsets(lemma, "a"))
        weights: dict[str, float] = {}
        for synset in senses:
            heads = [synset, *_sorted(synset.similar_tos())] if synset.pos() == "s" else [synset]
            for head in heads:
                for lem in head.lemmas():
                    if head is synset and lem.name() != lemma:
                        continue
                    for ant in _sorted(lem.antonyms()):
                        word = ant.name()
                        known = self.word_count(word, "a") > 0 and not own.intersection(self.offsets(word, "a"))
                        if _single_word(word) and word != lemma and known:
                            weights[word] = weights.get(word, 0.0) + self.count(ant) + 1.0
        return _cumulative(weights)

    def synonyms(self, a: str, b: str, pos: str) -> bool:
        """Whether two lemmas share a WordNet synset for ``pos`` (``"n"``, ``"v"`` or ``"a"``)."""
        return bool(set(self.offsets(a, pos)) & set(self.offsets(b, pos)))


_LEXICON: Lexicon | None = None
_LEXICON_LOCK = threading.Lock()


def get_lexicon() -> Lexicon:
    """The process-wide :class:`Lexicon` over the resolved WordNet (loaded on first use)."""
    global _LEXICON
    with _LEXICON_LOCK:
        if _LEXICON is None:
            from fsc_clip.negatives.resources import load_wordnet

            _LEXICON = Lexicon(load_wordnet())
        return _LEXICON
