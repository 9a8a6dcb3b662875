"""Hard-negative generators on real spaCy parses and real WordNet: golden examples and properties."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from pathlib import Path

import pytest

from fsc_clip.negatives import GENERATORS, generate_negatives, style_names, style_types
from fsc_clip.negatives.base import get_generator
from fsc_clip.negatives.text import lemma_of, normalize
from fsc_clip.registry import UnknownNameError

pytestmark = pytest.mark.usefixtures("nlp_resources")

CAPTIONS = [
    "A man in a red shirt riding a brown horse on the beach.",
    "Two dogs playing with a frisbee in the park.",
    "a woman holding an umbrella while walking down a busy street",
    "The man's dog is sitting in front of an old brick building.",
    "A large giraffe standing next to a tall tree.",
]

GOLDEN = {
    "negclip": [
        "A man in a red horse riding a brown shirt on the beach.",
        "Two dogs playing with a park in the frisbee.",
        "a woman walking an umbrella while holding down a busy street",
        "The brick's dog is sitting in front of an old man building.",
        "A tall giraffe standing next to a large tree.",
    ],
    "replace": [
        "A boy in a red shirt riding a brown horse on the beach.",
        "Two dogs playing with a frisbee on top of the park.",
        "a woman holding an umbrella while circling down a busy street",
        "The man's wolf is sitting in front of an old brick building.",
        "A large giraffe standing next to a short tree.",
    ],
    "ngram_shuffle_2": [
        "Riding a beach a man brown horse on the red shirt in a.",
        "Two dogs a frisbee playing with park in the.",
        "holding an a woman walking down street umbrella while a busy",
        "Brick building front of an old sitting in dog is the man's.",
        "A tall giraffe standing next to tree a large.",
    ],
    "svlc": [
        "A man in a red shirt drinking a brown horse on the beach.",
        "Two dogs cooking with a frisbee in the park.",
        "a woman holding an umbrella while parking down a busy street",
        "The man's dog is sitting in front of an old stone building.",
        "A big giraffe standing next to a tall tree.",
    ],
}

CORPUS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "captions.txt"


def _sample_captions(n: int = 60) -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines() if CORPUS.exists() else []
    return CAPTIONS + lines[: n - len(CAPTIONS)]


def _words(text: str) -> list[str]:
    # "a"/"an" are re-agreed after a swap ("an apple ... a dog" -> "a dog ... an apple"): compare them as one.
    # Clitics count as words of their own, as spaCy tokenises them ("man's" -> "man", "'s").
    return ["a" if w == "an" else w for w in re.findall(r"[a-z0-9]+|'[a-z]+", text.lower())]


@pytest.mark.parametrize("style", sorted(GOLDEN))
def test_golden_examples(style: str) -> None:
    negatives, types = generate_negatives(CAPTIONS, style=style, seed=0, epoch=0)
    assert types == [style]
    assert [row[0] for row in negatives] == GOLDEN[style]


def test_fsc_clip_style_is_the_three_types() -> None:
    assert style_types("fsc-clip") == ["negclip", "replace", "ngram_shuffle_2"]
    negatives, types = generate_negatives(CAPTIONS, style="fsc-clip", seed=0, epoch=0)
    assert types == ["negclip", "replace", "ngram_shuffle_2"]
    for k, name in enumerate(types):  # each type's randomness is independent of the other types in the style
        assert [row[k] for row in negatives] == GOLDEN[name]


def test_unknown_style_lists_choices() -> None:
    with pytest.raises(UnknownNameError, match="fsc-clip"):
        style_types("fsc_clp")
    assert "fsc-clip" in style_names()
    assert style_types("negclip,ngram_shuffle_4") == ["negclip", "ngram_shuffle_4"]


@pytest.mark.parametrize(
    "name", ["negclip", "ngram_shuffle_1", "ngram_shuffle_2", "ngram_shuffle_3", "replace", "svlc"]
)
def test_every_negative_differs_from_its_caption(name: str) -> None:
    assert name in GENERATORS.names()
    captions = _sample_captions()
    negatives, _ = generate_negatives(captions, style=name, seed=3, epoch=1)
    produced = [(c, n[0]) for c, n in zip(captions, negatives) if n[0] is not None]
    assert len(produced) >= len(captions) // 2
    for caption, negative in produced:
        assert normalize(negative) != normalize(caption)
        assert " 's" not in negative and "  " not in negative  # faithful whitespace, no tokeniser artefacts


@pytest.mark.parametrize("name", ["negclip", "ngram_shuffle_2", "ngram_shuffle_3"])
def test_swaps_and_shuffles_keep_the_word_multiset(name: str) -> None:
    captions = _sample_captions()
    negatives, _ = generate_negatives(captions, style=name, seed=1, epoch=0)
    for caption, (negative,) in zip(captions, negatives):
        if negative is not None:
            assert Counter(_words(negative)) == Counter(_words(caption)), (caption, negative)


def test_replace_changes_exactly_one_word_or_phrase_and_never_to_a_synonym() -> None:
    from fsc_clip.negatives.lexicon import get_lexicon

    lexicon = get_lexicon()
    captions = _sample_captions()
    negatives, _ = generate_negatives(captions, style="replace", seed=5, epoch=2)
    checked = 0
    for caption, (negative,) in zip(captions, negatives):
        if negative is None:
            continue
        old, new = _words(caption), _words(negative)
        changes = [op for op in difflib.SequenceMatcher(a=old, b=new).get_opcodes() if op[0] != "equal"]
        assert len(changes) == 1 and changes[0][0] == "replace", (caption, negative)
        _, i1, i2, j1, j2 = changes[0]
        if i2 - i1 == 1 and j2 - j1 == 1:  # single words: the lemma pair must share no WordNet synset
            for upos, pos in (("NOUN", "n"), ("VERB", "v"), ("ADJ", "a")):
                assert not lexicon.synonyms(lemma_of(old[i1], upos), lemma_of(new[j1], upos), pos), (caption, negative)
            checked += 1
    assert checked >= 20


def test_replace_keeps_inflection_and_capitalisation() -> None:
    captions = ["Dogs are chasing two cats across a green field.", "Horses grazing in a field near a red barn."]
    negatives, _ = generate_negatives(captions, style="replace", seed=0, epoch=0)
    for (negative,) in negatives:
        assert negative is not None and negative[0].isupper()
    caption = "Two men riding horses down a dirt road."
    plural_ok = ("s", "men", "ren", "people", "sheep", "deer", "fish")
    for seed in range(12):
        (neg,), _ = generate_negatives([caption], style="replace", seed=seed)
        old, new = _words(caption), _words(neg[0])
        k = next(i for i, (a, b) in enumerate(zip(old, new)) if a != b)
        if k in (1, 3):  # plural nouns stay plural
            assert new[k].endswith(plural_ok), neg
        elif k == 2:  # the gerund stays a gerund
            assert new[k].endswith("ing"), neg


def test_concrete_nouns_only() -> None:
    from fsc_clip.negatives.lexicon import get_lexicon

    lexicon = get_lexicon()
    words, _ = lexicon.nouns("table")
    assert "university" not in words and "cabinet" in words
    for word in words:  # every candidate's most frequent sense is a visible thing of the same kind
        first = lexicon.first_sense(word, "n")
        assert lexicon.is_concrete(first) and first.lexname() == "noun.artifact"
    assert lexicon.nouns("idea") is None  # abstract: not replaceable


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("a dog.", {"negclip": None, "replace": None, "ngram_shuffle_2": None, "svlc": None}),
        ("A dog running on the beach.", {"replace": "set", "ngram_shuffle_2": "set"}),
        ("a dog and a cat.", {"negclip": "set", "replace": None}),  # one relation/attribute needed
        ("Dogs.", {"negclip": None, "ngram_shuffle_2": None}),
    ],
)
def test_mask_is_none_exactly_when_a_type_cannot_apply(caption: str, expected: dict[str, str | None]) -> None:
    negatives, types = generate_negatives([caption], style=",".join(expected), seed=0)
    for name, value in zip(types, negatives[0]):
        assert (value is None) == (expected[name] is None), (name, value)


def test_determinism_per_seed_epoch_and_index() -> None:
    captions = _sample_captions(30)
    a, _ = generate_negatives(captions, seed=7, epoch=0)
    b, _ = generate_negatives(captions, seed=7, epoch=0)
    assert a == b
    c, _ = generate_negatives(captions, seed=7, epoch=1)
    assert a != c  # fresh randomness every epoch
    # batching does not matter: a caption's negatives depend on its dataset index only
    half = len(captions) // 2
    first, _ = generate_negatives(captions[:half], seed=7, epoch=0, indices=range(half))
    second, _ = generate_negatives(captions[half:], seed=7, epoch=0, indices=range(half, len(captions)))
    assert first + second == a


def test_parses_are_shared_and_not_mutated() -> None:
    from fsc_clip.negatives.parse import PARSE_CACHE

    caption = "A cat is sleeping on top of a wooden table next to a laptop."
    (before,) = PARSE_CACHE.parse([caption])
    snapshot = (before.words, before.ws, before.tags, before.deps, before.heads)
    generate_negatives([caption] * 3, style="all", seed=0, indices=[0, 1, 2])
    (after,) = PARSE_CACHE.parse([caption])
    assert after is before and (after.words, after.ws, after.tags, after.deps, after.heads) == snapshot
    assert "".join(w + s for w, s in zip(after.words, after.ws)) == caption


def test_ngram_shuffle_any_n() -> None:
    gen = get_generator("ngram_shuffle_5")
    assert gen.name == "ngram_shuffle_5"
    with pytest.raises(UnknownNameError):
        get_generator("ngram_shufle_2")


@pytest.mark.slow  # two fresh interpreters each load spaCy + WordNet
def test_same_negatives_in_any_process() -> None:
    """NLTK returns related synsets from sets; the order must not leak into results via PYTHONHASHSEED."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, sys; from fsc_clip.negatives import generate_negatives; "
        "print(json.dumps(generate_negatives(json.loads(sys.argv[1]), style='all', seed=2)[0]))"
    )
    captions = _sample_captions(40)
    expected, _ = generate_negatives(captions, style="all", seed=2)
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code, json.dumps(captions)], env=env, capture_output=True, text=True, check=True
        )
        assert json.loads(out.stdout.strip().splitlines()[-1]) == expected


def test_possible_words_covers_every_online_replace_of_a_world():
    """The shipped demo base keeps the rows of ``possible_words``' tokens: every word an online ``replace`` negative
    of the world's captions brings must be among them (over several seeds and epochs)."""
    import re

    from fsc_clip.negatives.replace import possible_words

    captions = [
        "a small red circle to the left of a blue square",
        "three shapes: a green triangle above a red circle and a blue square",
        "a large blue square on top of a small green circle",
        "two shapes: a red triangle and a green square",
    ]
    words = {w for c in captions for w in re.findall(r"[a-z]+", c.lower())}
    allowed = words | {w for phrase in possible_words(words) for w in re.findall(r"[a-z]+", phrase.lower())}
    brought: set[str] = set()
    for seed in range(4):
        for epoch in range(3):
            negatives, types = generate_negatives(captions, style="replace", seed=seed, epoch=epoch)
            k = types.index("replace")
            for row in negatives:
                if row[k] is not None:
                    brought |= set(re.findall(r"[a-z]+", row[k].lower())) - words
    assert brought, "the control: replace brings new words"
    assert brought <= allowed, sorted(brought - allowed)
