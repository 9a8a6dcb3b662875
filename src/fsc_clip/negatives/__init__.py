"""Hard-negative captions: NegCLIP swap, WordNet replace, n-gram shuffle, rule-based svlc.

Public API::

    from fsc_clip.negatives import generate_negatives, style_types
    negatives, types = generate_negatives(captions, style="fsc-clip", seed=0, epoch=0)
    # types == ["negclip", "replace", "ngram_shuffle_2"]; negatives[i][k] is a str, or None when type k
    # cannot apply to caption i.

Each caption is parsed once by spaCy (cached across calls/epochs); every generator reads that parse. The
randomness of caption ``i`` for type ``t`` is seeded by ``(seed, epoch, indices[i], t)`` only, so results do
not depend on batching, worker count or the other types in the style. Resources (spaCy pipeline, WordNet) load
lazily, once per process, without any download (see :mod:`fsc_clip.negatives.resources`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import lru_cache

from fsc_clip.negatives.base import get_generator, propose_counted
from fsc_clip.negatives.generator import GENERATORS, Generator
from fsc_clip.negatives.parse import PARSE_CACHE, Parsed
from fsc_clip.negatives.resources import RESOURCE_DIR
from fsc_clip.negatives.stats import NegativeStats
from fsc_clip.negatives.window import DEFAULT_CONTEXT_LENGTH, ContextWindow
from fsc_clip.registry import UnknownNameError

__all__ = [
    "DEFAULT_CONTEXT_LENGTH",
    "GENERATORS",
    "ContextWindow",
    "Generator",
    "NegativeStats",
    "Parsed",
    "generate_candidates",
    "generate_negatives",
    "list_style_lines",
    "style_names",
    "style_types",
]


@lru_cache(maxsize=1)
def _styles() -> dict[str, tuple[str, ...]]:
    data = json.loads((RESOURCE_DIR / "styles.json").read_text(encoding="utf-8"))
    return {k: tuple(v) for k, v in data.items() if not k.startswith("_")}


def style_names() -> list[str]:
    """Named styles (package data ``styles.json``); any generator name is a one-type style too."""
    return sorted(_styles())


def style_types(style: str) -> list[str]:
    """The ordered negative types of a style, e.g. ``style_types("fsc-clip")`` ->
    ``["negclip", "replace", "ngram_shuffle_2"]``. A comma-separated list of type names is accepted too.

    Raises:
        UnknownNameError: ``style`` is neither a style nor a registered type (message lists the choices).
    """
    if style in _styles():
        return list(_styles()[style])
    types = [t.strip() for t in style.split(",") if t.strip()]
    try:
        for t in types:
            get_generator(t)
    except UnknownNameError as err:
        raise UnknownNameError(
            f"Unknown negative style {style!r}. Styles: {', '.join(style_names())}; "
            f"types: {', '.join(GENERATORS.names())}, ngram_shuffle_N."
        ) from err
    if not types:
        raise UnknownNameError(f"Empty negative style {style!r}.")
    return types


def _rng(seed: int, epoch: int | str, key: object, type_name: str) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`, so this is stable across processes and Python runs.
    return random.Random(f"{seed}/{epoch}/{key}/{type_name}")


def generate_negatives(
    captions: Sequence[str],
    style: str = "fsc-clip",
    seed: int = 0,
    epoch: int = 0,
    indices: Sequence[int] | None = None,
    context_length: int | None = DEFAULT_CONTEXT_LENGTH,
    stats: NegativeStats | None = None,
) -> tuple[list[list[str | None]], list[str]]:
    """One hard negative per caption and type.

    Args:
        captions: B captions.
        style: A style name (``"fsc-clip"``, ...) or comma-separated type names.
        seed: Run seed.
        epoch: Epoch; fresh randomness each epoch.
        indices: Dataset index of each caption (default ``range(B)``); the randomness of caption ``i``
            depends only on ``(seed, epoch, indices[i])``.
        context_length: Token slots of the text encoder (77 for CLIP; ``None``: unlimited). Edits are made within
            the visible tokens, and a negative that would differ only beyond them is ``None``.
        stats: Counts to update (captions without a type, negatives hidden by the context window).

    Returns:
        ``(negatives, types)``: ``negatives[i][k]`` (B x K) is a string that differs from caption ``i`` after
        normalisation and within the context window, or ``None`` when type ``types[k]`` cannot apply; the mask is
        ``negatives[i][k] is not None``.
    """
    types = style_types(style)
    if indices is None:
        indices = range(len(captions))
    if len(indices) != len(captions):
        raise ValueError(f"indices has {len(indices)} entries for {len(captions)} captions")
    generators = [get_generator(t) for t in types]
    window = ContextWindow(context_length)
    parsed = PARSE_CACHE.parse(list(captions))
    out: list[list[str | None]] = []
    for doc, index in zip(parsed, indices):
        row: list[str | None] = []
        for name, gen in zip(types, generators):
            found = propose_counted(gen, doc, _rng(seed, epoch, int(index), name), k=1, window=window)
            row.append(found.candidates[0] if found.candidates else None)
            if stats is not None:
                stats.count(name, bool(found.candidates), found.hidden > 0)
        out.append(row)
    if stats is not None:
        stats.add_captions(len(out))
        stats.context_length = context_length
    return out, types


def generate_candidates(
    captions: Sequence[str],
    style: str = "fsc-clip",
    per_type: int = 4,
    seed: int = 0,
    context_length: int | None = DEFAULT_CONTEXT_LENGTH,
    stats: NegativeStats | None = None,
) -> list[dict[str, list[str]]]:
    """Up to ``per_type`` distinct candidates per type for each caption (what ``fsc-clip negatives`` stores).

    The randomness of a caption derives from ``(seed, caption text)``, so a caption gets the same candidates
    whatever its position in the file, the chunking or the number of workers. ``context_length`` and ``stats`` as in
    :func:`generate_negatives`.
    """
    types = style_types(style)
    generators = [get_generator(t) for t in types]
    window = ContextWindow(context_length)
    out = []
    for doc in PARSE_CACHE.parse(list(captions)):
        entry = {}
        for name, gen in zip(types, generators):
            found = propose_counted(gen, doc, _rng(seed, "precompute", doc.text, name), k=per_type, window=window)
            entry[name] = found.candidates
            if stats is not None:
                stats.count(name, bool(found.candidates), found.hidden > 0)
        out.append(entry)
    if stats is not None:
        stats.add_captions(len(out))
        stats.context_length = context_length
    return out


def list_style_lines() -> list[str]:
    """Lines for ``fsc-clip list negatives``: each style with its types, then every generator type."""
    lines = ["styles:"]
    lines += [f"  {name:<10} {', '.join(style_types(name))}" for name in style_names()]
    lines.append("types:")
    lines += [f"  {name}" for name in GENERATORS.names()]
    lines.append("  ngram_shuffle_N  (any N >= 1)")
    return lines
