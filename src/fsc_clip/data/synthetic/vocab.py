"""Vocabulary and caption templates of the synthetic world (package data under ``resources/synthetic``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Relation:
    """A spatial relation on the layout grid.

    Attributes:
        name: Canonical name (``left``, ``right``, ``above``, ``below``).
        phrases: Surface forms used in captions; the first one is canonical.
        inverse: Name of the inverse relation.
        axis: Grid axis it compares (``col`` or ``row``).
        sign: ``-1`` if the subject has the smaller coordinate on ``axis`` (left of / above), else ``1``.
    """

    name: str
    phrases: tuple[str, ...]
    inverse: str
    axis: str
    sign: int


@dataclass(frozen=True)
class Vocab:
    """Everything the world generator may say or draw.

    Attributes:
        shapes: Shape nouns (drawable by :mod:`fsc_clip.data.synthetic.render`).
        colors: Color word -> RGB triple.
        sizes: Size word -> radius factor (``large`` is 1.0).
        relations: Relation name -> :class:`Relation`.
        counts: Count (1..3) -> number word.
        grid: Objects sit in the cells of a ``grid`` x ``grid`` layout.
        max_radius_fraction: Radius of a large object as a fraction of a cell side.
        background_gray: Inclusive range of the background gray level.
        templates: Caption templates (see ``templates.json``).
        said_relations: The relations a true caption may state; the others are still drawn in negatives and
            checked by :func:`fsc_clip.data.synthetic.scene.holds` (see :meth:`restricted`).
    """

    shapes: tuple[str, ...]
    colors: dict[str, tuple[int, int, int]]
    sizes: dict[str, float]
    relations: dict[str, Relation]
    counts: dict[int, str]
    grid: int
    max_radius_fraction: float
    background_gray: tuple[int, int]
    templates: dict[str, Any]
    said_relations: tuple[str, ...]  # no default: a vocabulary built by hand must say which relations it states

    def restricted(self, shapes: int = 0, colors: int = 0, one_way: bool = False) -> Vocab:
        """This vocabulary with fewer shapes or colors, or with relations said one way only.

        Args:
            shapes: Keep the first ``shapes`` shapes (0: all).
            colors: Keep the first ``colors`` colors (0: all).
            one_way: True captions state a relation only as *left of* or *above* ("A to the right of B" is said "B
                to the left of A"), so that the pair "A left of B" / "B right of A" of the same image does not cancel
                out in a bag-of-words text tower (docs/demo.md, "Relations learned").

        Raises:
            ValueError: more shapes or colors asked for than the vocabulary has.
        """
        for what, n, have in (("shapes", shapes, len(self.shapes)), ("colors", colors, len(self.colors))):
            if n > have:
                raise ValueError(f"world.{what}={n}: the packaged vocabulary has only {have} {what}")
        said = tuple(r for r in self.said_relations if self.relations[r].sign < 0) if one_way else self.said_relations
        return replace(
            self,
            shapes=self.shapes[: shapes or None],
            colors=dict(list(self.colors.items())[: colors or None]),
            said_relations=said,
        )


def _read_json(name: str) -> Any:
    path = resources.files("fsc_clip").joinpath("resources").joinpath("synthetic").joinpath(name)
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def load_vocab() -> Vocab:
    """Load (once per process) the packaged vocabulary and templates."""
    raw = _read_json("vocab.json")
    relations = {
        name: Relation(name, tuple(r["phrases"]), r["inverse"], r["axis"], int(r["sign"]))
        for name, r in raw["relations"].items()
    }
    return Vocab(
        shapes=tuple(raw["shapes"]),
        colors={k: tuple(v) for k, v in raw["colors"].items()},
        sizes=dict(raw["sizes"]),
        relations=relations,
        counts={int(k): v for k, v in raw["counts"].items()},
        grid=int(raw["grid"]),
        max_radius_fraction=float(raw["max_radius_fraction"]),
        background_gray=tuple(raw["background_gray"]),
        templates=_read_json("templates.json"),
        said_relations=tuple(relations),
    )
