"""Text-only ("blind") baselines: score the candidate captions without looking at the image.

A hard-negative benchmark is only a test of vision-language understanding if the right caption cannot be told from
the wrong one by the text alone (Hsieh et al., SugarCrepe, NeurIPS 2023, showed that ARO / CREPE negatives are
often ungrammatical or implausible, so a text-only model beats CLIP on them). A blind model makes that visible: it is
evaluated like any model (``fsc-clip eval --blind bow``), and ``fsc-clip report`` flags the sub-scores where it is
far above chance (:func:`blind_flags`).

How it stands in for a model: :class:`BlindModel` is passed to :func:`fsc_clip.evaluation.runner.evaluate` as the
embedder; :func:`fsc_clip.evaluation.runner.run_benchmark` then calls :func:`run_blind` instead of
``Benchmark.run``. For every **image-to-text** item the candidates are ranked by a caption-only score
(``sims[n] = score(texts[n])``; the image is never read), under the shared strict tie policy (a tie is a failure).
Every other item type is **not applicable** (N/A), never given a fake number: a text-to-image item has one text and
N images, so a blind model ties on all candidates; a group item (2 images x 2 captions) needs each image to pick
its caption, which a model that ignores the image can never do. Zero-shot classification, retrieval and benchmarks
that score in their own ``run()`` are N/A as a whole. N/A sub-scores are ``None`` in the result JSON and are listed
with the reason in ``extra["blind"]``.

Scorers (:data:`BLIND_SCORERS`, or a user's callable ``module:function``) implement :class:`TextScorer`. Each is
fitted on the benchmark's *candidate pool*: every candidate text of every image-to-text item of that benchmark
(with repeats), so a score reflects how typical a caption is of the benchmark's own captions.

- ``bow``: sum over the caption's words of ``log p(w)``, the add-one smoothed unigram frequency in the pool. It is a
  function of the word multiset only (the sum is ``math.fsum``, exactly rounded, so permuting the words gives a
  bit-identical score). Higher = shorter and made of more frequent words.
- ``bigram``: log-probability under a bigram model of the pool with add-one smoothing (``<s>``, ``</s>`` markers);
  an order-sensitive reference "grammar" score.
- ``module:function``: any importable callable taking a list of strings and returning one float per string (a
  language-model log-likelihood, a grammar checker's score, ...); higher = more likely to be the right caption.

Words: lower-cased ``\\w+`` runs (punctuation dropped), shared by the scorers and the same-words marking
(:func:`same_words_items`): an item whose right caption has the same word multiset as one of its wrong captions
(SugarCrepe swaps, Winoground pairs) cannot be solved by any word-order-blind model; with the strict tie policy the
``bow`` scorer always *fails* such an item (a random tie-break would be at chance). The per-subset counts are in
``extra["blind"]["same_words_items"]``.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from fsc_clip.errors import UserError
from fsc_clip.evaluation.items import GroupItem, ImageRef, ImageToTextItem, Item
from fsc_clip.registry import Registry

if TYPE_CHECKING:
    from fsc_clip.evaluation.base import Benchmark, BenchmarkOutput

log = logging.getLogger(__name__)

FINGERPRINT_METHOD = "blind-scorer-v1"
NOT_ITEM_KINDS = ("zeroshot", "retrieval")  # their image side carries all the signal
# A blind sub-score is "far above chance" when it beats chance by more than this many points AND (where the result
# has one) its 95 % bootstrap interval lies entirely above chance. 10 points is larger than most improvements claimed
# between models on these benchmarks (a few points), so text alone would explain more than the differences being
# compared; the interval condition keeps small subsets, where 10 points can be noise, from being flagged.
FAR_ABOVE_CHANCE = 10.0
_WORD = re.compile(r"\w+")


class BlindScorerError(UserError):
    """A blind scorer cannot be found or loaded, or a user's scorer returned something unusable."""


def words(text: str) -> list[str]:
    """Lower-cased words of ``text`` with punctuation stripped (``"A dog's toy."`` -> ``a dog s toy``)."""
    return _WORD.findall(text.lower())


def word_multiset(text: str) -> tuple[tuple[str, int], ...]:
    """The multiset of :func:`words` as a sorted ``(word, count)`` tuple (hashable, comparable)."""
    return tuple(sorted(Counter(words(text)).items()))


# ----- scorers ------------------------------------------------------------------------------------------------
class TextScorer(Protocol):
    """A caption-only score; higher = more likely to be the right caption."""

    def fit(self, pool: Sequence[str]) -> None:
        """See the benchmark's candidate pool (every candidate text, with repeats) before scoring."""
        ...

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores ``[len(texts)]`` float64."""
        ...


BLIND_SCORERS: Registry[Callable[[], TextScorer]] = Registry("blind scorer")


@BLIND_SCORERS.register("bow")
class BagOfWordsScorer:
    """Sum of add-one smoothed unigram log-frequencies: ``sum_w log((c(w) + 1) / (N + V + 1))``.

    ``c(w)``: count of word ``w`` in the pool, ``N``: words in the pool, ``V``: distinct words (``+1`` for an unseen
    word). Exactly invariant to word order (``math.fsum`` is exactly rounded, so the order of the terms cannot
    change a bit of the result).
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.total = 0

    def fit(self, pool: Sequence[str]) -> None:
        self.counts = Counter(w for text in pool for w in words(text))
        self.total = sum(self.counts.values())

    def log_prob(self, word: str) -> float:
        return math.log((self.counts[word] + 1) / (self.total + len(self.counts) + 1))

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([math.fsum(self.log_prob(w) for w in words(t)) for t in texts], dtype=np.float64)


@BLIND_SCORERS.register("bigram")
class BigramScorer:
    """Log-probability under an add-one smoothed bigram model of the pool (order-sensitive reference grammar score).

    ``log P(t) = sum_i log((c(w_{i-1}, w_i) + 1) / (c(w_{i-1}) + V))`` over ``<s> w_1 ... w_n </s>``, where ``V`` is
    the number of distinct words of the pool plus ``</s>`` and one unseen word.
    """

    START, END = "<s>", "</s>"

    def __init__(self) -> None:
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.history: Counter[str] = Counter()
        self.vocab = 0

    def _padded(self, text: str) -> list[str]:
        return [self.START, *words(text), self.END]

    def fit(self, pool: Sequence[str]) -> None:
        self.pairs, self.history = Counter(), Counter()
        seen: set[str] = set()
        for text in pool:
            toks = self._padded(text)
            seen.update(toks[1:])
            self.history.update(toks[:-1])
            self.pairs.update(itertools.pairwise(toks))
        self.vocab = len(seen) + 1

    def score(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for t in texts:
            toks = self._padded(t)
            terms = (math.log((self.pairs[pair] + 1) / (self.history[pair[0]] + self.vocab))
                     for pair in itertools.pairwise(toks))  # fmt: skip
            out.append(math.fsum(terms))
        return np.array(out, dtype=np.float64)


class CallableScorer:
    """A user's ``module:function``: ``function(list[str]) -> sequence of floats`` (one per text; higher = better).

    Called once per benchmark with the distinct candidate texts. NaN is an error (it would silently count as a
    failure); ``-inf`` / ``+inf`` are allowed (e.g. a log-probability of 0).
    """

    def __init__(self, spec: str) -> None:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise BlindScorerError(f"blind scorer {spec!r}: expected 'module:function' (e.g. mypkg.lm:score)")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise BlindScorerError(f"blind scorer {spec!r}: cannot import module {module_name!r} ({err}); make it "
                                   "importable (installed, or on PYTHONPATH)") from err  # fmt: skip
        fn: Any = module
        for part in attr.split("."):
            fn = getattr(fn, part, None)
        if not callable(fn):
            raise BlindScorerError(f"blind scorer {spec!r}: {module_name} has no callable {attr!r}")
        self.spec, self.fn = spec, fn

    def fit(self, pool: Sequence[str]) -> None:
        """A user's scorer is fixed; the pool is not used."""

    def score(self, texts: Sequence[str]) -> np.ndarray:
        try:
            values = np.asarray(self.fn(list(texts)), dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise BlindScorerError(f"blind scorer {self.spec}: its return value is not a sequence of numbers "
                                   f"({err})") from err  # fmt: skip
        if values.shape != (len(texts),):
            raise BlindScorerError(f"blind scorer {self.spec}: returned shape {values.shape} for {len(texts)} texts; "
                                   "return one float per text")  # fmt: skip
        bad = np.flatnonzero(np.isnan(values))
        if len(bad):
            raise BlindScorerError(f"blind scorer {self.spec}: NaN score for text {int(bad[0])} ({texts[bad[0]]!r}) "
                                   f"and {len(bad) - 1} more; return a number for every text")  # fmt: skip
        return values

    def source_digest(self) -> str:
        """sha256 of the function's source file (so results are recomputed when the scorer changes)."""
        try:
            path = inspect.getsourcefile(self.fn)
        except TypeError:
            path = None
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path and Path(path).is_file() else ""


def make_scorer(spec: str) -> TextScorer:
    """A registered scorer name (``bow``, ``bigram``) or a user's ``module:function``."""
    if ":" in spec:
        return CallableScorer(spec)
    return BLIND_SCORERS.get(spec)()


# ----- the model that stands in for CLIP ----------------------------------------------------------------------
class BlindModel:
    """What ``evaluate`` receives as the embedder of a blind run (no model, no images).

    Args:
        spec: A :data:`BLIND_SCORERS` name or ``module:function``.
    """

    text_only = True  # runner.run_benchmark dispatches on this

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.scorer = make_scorer(spec)

    def model_info(self) -> dict[str, Any]:
        """The result JSON's ``model``: ``{"blind": spec, "name": "blind:<spec>", "label": ...}``."""
        return {"blind": self.spec, "name": f"blind:{self.spec}", "pretrained": None, "label": f"blind:{self.spec}"}

    def fingerprint(self) -> dict[str, Any]:
        """Stands in for the weights fingerprint: the scorer's name, and a user scorer's source file digest."""
        source = self.scorer.source_digest() if isinstance(self.scorer, CallableScorer) else ""
        digest = hashlib.sha256(f"{self.spec}\n{source}".encode()).hexdigest()
        return {"sha256": digest, "method": FINGERPRINT_METHOD, "scorer": self.spec}

    def images(self, refs: Sequence[ImageRef], desc: str = "") -> Any:
        raise UserError(f"{desc or 'this benchmark'}: a blind (text-only) model has no image embeddings")

    def texts(self, texts: Sequence[str], desc: str = "") -> Any:
        raise UserError(f"{desc or 'this benchmark'}: a blind (text-only) model has no text embeddings")

    def prefetch(self, refs: Sequence[ImageRef] = (), texts: Sequence[str] = (), desc: str = "") -> None:
        """Nothing to encode."""


def is_blind(embedder: Any) -> bool:
    return bool(getattr(embedder, "text_only", False))


# ----- scoring ------------------------------------------------------------------------------------------------
@dataclass
class BlindScores:
    """Per-item results of a blind run over image-to-text items (aligned with ``items``)."""

    correct: list[bool]
    sims: list[np.ndarray]  # [N] float64 caption scores per item
    extra: dict[str, Any] = field(default_factory=dict)


def score_captions(items: Sequence[ImageToTextItem], scorer: TextScorer) -> BlindScores:
    """Fit on the candidate pool, score every distinct candidate once, apply the strict tie policy in float64."""
    pool = [t for it in items for t in it.texts]
    scorer.fit(pool)
    distinct = list(dict.fromkeys(pool))
    table = dict(zip(distinct, scorer.score(distinct).tolist()))
    correct, sims = [], []
    for it in items:
        row = np.array([table[t] for t in it.texts], dtype=np.float64)  # [N]
        others = np.delete(row, it.label)
        correct.append(bool(row[it.label] > others.max()) if len(others) else True)
        sims.append(row)
    return BlindScores(correct, sims)


def _sub_key(bench_name: str, item: Item) -> str:
    """The sub-score an item counts toward under pooled scoring (``accuracy`` when it has no subset)."""
    default = "accuracy" if isinstance(item, ImageToTextItem) else ""
    sub = item.subset or default
    return f"{bench_name}::{sub}" if sub else bench_name


def same_words_items(bench_name: str, items: Sequence[Item]) -> dict[str, int]:
    """Per subset: items whose right caption has the same word multiset as a wrong one (group: the two captions)."""
    out: dict[str, int] = {}
    for it in items:
        if isinstance(it, ImageToTextItem):
            right = word_multiset(it.texts[it.label])
            hit = any(word_multiset(t) == right for j, t in enumerate(it.texts) if j != it.label)
        elif isinstance(it, GroupItem):
            hit = word_multiset(it.texts[0]) == word_multiset(it.texts[1])
        else:
            continue
        key = _sub_key(bench_name, it)
        out[key] = out.get(key, 0) + int(hit)
    return out


def chance_levels(bench_name: str, items: Sequence[ImageToTextItem]) -> dict[str, float]:
    """Per subset: the expected accuracy (percent) of a random guess, the mean of ``100 / N`` over its items."""
    sums: dict[str, list[float]] = {}
    for it in items:
        acc = sums.setdefault(_sub_key(bench_name, it), [0.0, 0.0])
        acc[0] += 100.0 / len(it.texts)
        acc[1] += 1
    return {k: s / n for k, (s, n) in sums.items()}


def not_applicable(bench: Benchmark, reason: str) -> BenchmarkOutput:
    """Every declared sub-score ``None`` and the reason in ``extra["blind"]`` (never a number a blind model can't
    have)."""
    from fsc_clip.evaluation.base import BenchmarkOutput

    subs = [bench.full(s) for s in bench.sub_scores] or [bench.name]
    info = {"status": "not_applicable", "reason": reason, "not_applicable": subs}
    return BenchmarkOutput(scores=dict.fromkeys(subs), counts=dict.fromkeys(subs, 0), score=None, extra={"blind": info})


def run_blind(bench: Benchmark, data_root: str | Path, model: BlindModel) -> BenchmarkOutput:
    """``Benchmark.run`` for a blind model: image-to-text items scored by caption only, everything else N/A."""
    from fsc_clip.evaluation.base import Benchmark
    from fsc_clip.evaluation.stats import items_table

    if bench.kind in NOT_ITEM_KINDS:
        return not_applicable(bench, f"{bench.kind}: the image side carries all the signal")
    if type(bench).run is not Benchmark.run:
        return not_applicable(bench, "the benchmark scores in its own run(); blind scoring is not defined for it")
    items = bench.load(data_root)
    i2t = [it for it in items if isinstance(it, ImageToTextItem)]
    same = same_words_items(bench.name, items)
    if not i2t:
        out = not_applicable(bench, "no image-to-text items: text-to-image and group items need the image")
        out.extra["blind"]["same_words_items"] = same
        return out
    res = score_captions(i2t, model.scorer)
    outcomes: dict[str, Any] = {"correct": res.correct, "text": [None] * len(i2t), "image": [None] * len(i2t),
                                "group": [None] * len(i2t)}  # fmt: skip
    scores, counts = bench.score(i2t, outcomes)
    dropped = Counter(type(it).__name__ for it in items if not isinstance(it, ImageToTextItem))
    info: dict[str, Any] = {
        "status": "image_to_text_only" if dropped else "scored",
        "scorer": model.spec,
        "chance": chance_levels(bench.name, i2t),
        "same_words_items": same,
        "not_applicable_items": dict(dropped),
    }
    out = bench.finish(scores, counts, {"n_items": len(i2t), **bench.extra_info(), "blind": info})
    info["not_applicable"] = sorted(k for k, v in out.scores.items() if v is None)
    out.per_item = [items_table(i2t, outcomes, res.sims, by_category=type(bench).score is not Benchmark.score)]
    return out


# ----- report -------------------------------------------------------------------------------------------------
@dataclass
class BlindFlag:
    """One blind sub-score (or benchmark column) against chance."""

    benchmark: str
    key: str
    score: float
    chance: float
    ci: list[float] | None
    same_words: int | None

    @property
    def margin(self) -> float:
        return self.score - self.chance

    @property
    def far_above(self) -> bool:
        """Beats chance by more than :data:`FAR_ABOVE_CHANCE` points and (if known) its interval excludes chance."""
        return self.margin > FAR_ABOVE_CHANCE and (self.ci is None or self.ci[0] > self.chance)


def _column_chance(benchmark: str, chance: Mapping[str, float]) -> float | None:
    """The benchmark column a random guesser gets: the benchmark's own aggregate of the chance levels."""
    from fsc_clip.evaluation.benchmarks import BENCHMARKS

    if benchmark not in BENCHMARKS:
        return None
    value = BENCHMARKS.get(benchmark).column(dict(chance))
    return None if value is None else float(value)


def blind_flags(record: Mapping[str, Any]) -> list[BlindFlag]:
    """The sub-scores (and column) of one blind result JSON with their chance level; ``[]`` for other results."""
    info = (record.get("extra") or {}).get("blind")
    if not isinstance(info, Mapping) or not isinstance(info.get("chance"), Mapping):
        return []
    name, scores, ci = record["benchmark"], record.get("scores") or {}, record.get("ci") or {}
    same = info.get("same_words_items") or {}
    flags = [BlindFlag(name, k, float(scores[k]), float(c), ci.get(k), same.get(k))
             for k, c in info["chance"].items() if scores.get(k) is not None]  # fmt: skip
    col_chance = _column_chance(name, info["chance"])
    if record.get("score") is not None and col_chance is not None:
        flags.append(BlindFlag(name, name, float(record["score"]), col_chance, ci.get(name), sum(same.values())))
    return flags
