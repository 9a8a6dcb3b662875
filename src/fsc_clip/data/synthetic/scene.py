"""Scene graphs of the synthetic world, their captions, and compositional negatives.

A :class:`Scene` is 1-3 objects (shape, color, size) in distinct cells of a small grid; within a
scene every shape and every color occurs at most once, so an object phrase such as "red circle"
names exactly one object (or none). A :class:`Statement` is what a caption claims: a list of object
mentions (each attribute may be left unsaid) and spatial relations between mentions. Captions are
made only from statements that hold *strictly* (related objects share a row or a column), and
negatives are kept only if they are false even under the *lenient* reading (any offset along the
relation's axis counts), so no negative is arguably true.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from fsc_clip.data.synthetic.vocab import Vocab


@dataclass(frozen=True)
class SceneObject:
    """One drawn object: attributes, grid cell and a small pixel jitter of its center."""

    shape: str
    color: str
    size: str
    row: int
    col: int
    jitter: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Scene:
    """A whole image: its objects and the gray level of the background."""

    objects: tuple[SceneObject, ...]
    background: int

    def to_dict(self) -> dict:
        """Plain-data form (for manifests and debugging)."""
        return {
            "background": self.background,
            "objects": [
                {"shape": o.shape, "color": o.color, "size": o.size, "row": o.row, "col": o.col} for o in self.objects
            ],
        }


HALVES = ("left", "right", "top", "bottom")
"""Absolute places a training caption may state ("a red circle in the left half"): the half of the grid."""


def in_half(obj: SceneObject, half: str, grid: int = 4) -> bool:
    """Whether ``obj``'s cell lies in ``half`` of a ``grid`` x ``grid`` layout."""
    axis, low = {"left": ("col", True), "right": ("col", False), "top": ("row", True), "bottom": ("row", False)}[half]
    return (getattr(obj, axis) < grid // 2) == low


@dataclass(frozen=True)
class Mention:
    """An object phrase; ``None`` attributes are not said (the shape is always said)."""

    shape: str
    color: str | None = None
    size: str | None = None
    half: str | None = None  # "in the left half" etc. (training captions only, see WorldConfig.p_half)

    def matches(self, obj: SceneObject, grid: int = 4) -> bool:
        """Whether ``obj`` has every attribute this mention states."""
        return (
            obj.shape == self.shape
            and (self.color is None or obj.color == self.color)
            and (self.size is None or obj.size == self.size)
            and (self.half is None or in_half(obj, self.half, grid))
        )

    def phrase(self, article: str = "a") -> str:
        """Surface form, e.g. ``"a small red circle"`` / ``"an orange square in the left half"``."""
        words = [w for w in (self.size, self.color, self.shape) if w]
        if article == "a" and words[0][0] in "aeiou":
            article = "an"
        where = [f"in the {self.half} half"] if self.half else []
        return " ".join([article, *words, *where]) if article else " ".join([*words, *where])


@dataclass(frozen=True)
class Statement:
    """What a caption claims: mentions plus relations ``(subject index, relation name, object index)``."""

    mentions: tuple[Mention, ...]
    relations: tuple[tuple[int, str, int], ...] = ()


# ----------------------------------------------------------------------------------------------- truth


def relation_holds(a: SceneObject, rel: str, b: SceneObject, vocab: Vocab, strict: bool = True) -> bool:
    """Whether ``a <rel> b`` holds; strict also requires a and b to share the other axis (no diagonals)."""
    r = vocab.relations[rel]
    other = "row" if r.axis == "col" else "col"
    delta = getattr(a, r.axis) - getattr(b, r.axis)
    if delta == 0 or np.sign(delta) != r.sign:
        return False
    return not strict or getattr(a, other) == getattr(b, other)


def strict_relation(a: SceneObject, b: SceneObject, vocab: Vocab) -> str | None:
    """The relation name that strictly holds for ``a`` w.r.t. ``b`` and may be said (None for diagonal pairs, and
    for a relation the vocabulary does not say: then it is said the other way round, ``b`` w.r.t. ``a``)."""
    for name in vocab.relations:
        if relation_holds(a, name, b, vocab, strict=True):
            return name if name in vocab.said_relations else None
    return None


def holds(statement: Statement, scene: Scene, vocab: Vocab, strict: bool = True) -> bool:
    """Whether some injective assignment of mentions to scene objects satisfies every claim."""
    objs = scene.objects
    n = len(statement.mentions)
    if n > len(objs):
        return False
    for assign in itertools.permutations(range(len(objs)), n):
        if not all(m.matches(objs[k], vocab.grid) for m, k in zip(statement.mentions, assign)):
            continue
        if all(relation_holds(objs[assign[i]], r, objs[assign[j]], vocab, strict) for i, r, j in statement.relations):
            return True
    return False


# ----------------------------------------------------------------------------------------------- sampling


def _cells_for(n: int, grid: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Distinct cells; for n >= 2 at least the first two share a row or a column."""
    cells = [(r, c) for r in range(grid) for c in range(grid)]
    while True:
        picks = [cells[i] for i in rng.choice(len(cells), size=n, replace=False)]
        if n < 2 or picks[0][0] == picks[1][0] or picks[0][1] == picks[1][1]:
            return picks


def sample_scene(rng: np.random.Generator, vocab: Vocab, n_objects: int, jitter: float = 1.0) -> Scene:
    """Sample a scene of ``n_objects`` objects with distinct shapes, colors and cells."""
    shapes = rng.choice(len(vocab.shapes), size=n_objects, replace=False)
    colors = list(vocab.colors)
    color_idx = rng.choice(len(colors), size=n_objects, replace=False)
    sizes = list(vocab.sizes)
    objects = []
    for k, (row, col) in enumerate(_cells_for(n_objects, vocab.grid, rng)):
        objects.append(
            SceneObject(
                shape=vocab.shapes[int(shapes[k])],
                color=colors[int(color_idx[k])],
                size=sizes[int(rng.integers(len(sizes)))],
                row=row,
                col=col,
                jitter=(float(rng.uniform(-jitter, jitter)), float(rng.uniform(-jitter, jitter))),
            )
        )
    lo, hi = vocab.background_gray
    return Scene(objects=tuple(objects), background=int(rng.integers(lo, hi + 1)))


def aligned_pairs(scene: Scene, vocab: Vocab) -> list[tuple[int, str, int]]:
    """All ordered pairs ``(i, rel, j)`` of objects with a strict relation."""
    out = []
    for i, j in itertools.permutations(range(len(scene.objects)), 2):
        rel = strict_relation(scene.objects[i], scene.objects[j], vocab)
        if rel is not None:
            out.append((i, rel, j))
    return out


def mention_of(
    obj: SceneObject,
    rng: np.random.Generator,
    p_color: float = 1.0,
    p_size: float = 0.5,
    p_half: float = 0.0,
    grid: int = 4,
) -> Mention:
    """A true mention of ``obj``; color, size and (when ``p_half`` > 0) its half of the grid are said with the given
    probabilities. ``p_half`` = 0 draws nothing more, so captions made without it keep their exact random stream."""
    color = obj.color if rng.random() < p_color else None
    size = obj.size if rng.random() < p_size else None
    half = None
    if p_half > 0 and rng.random() < p_half:
        axis = int(rng.integers(2))  # left/right or top/bottom; then the side the object is on
        half = HALVES[2 * axis] if in_half(obj, HALVES[2 * axis], grid) else HALVES[2 * axis + 1]
    return Mention(shape=obj.shape, color=color, size=size, half=half)


# ----------------------------------------------------------------------------------------------- text


def realize(statement: Statement, template: str, vocab: Vocab, rel_index: int = 0, article: str = "a") -> str:
    """Fill ``template`` with the statement's phrases (``{A}``, ``{B}``, ``{C}``, ``{rel}``, ``{n}``).

    ``rel_index`` picks the relation's surface form (clipped to the forms it has), so that a caption
    and its negative can share one wording.
    """
    statement = ordered_for_templates(statement)
    fields = {k: m.phrase(article) for k, m in zip("ABC", statement.mentions)}
    if statement.relations:
        phrases = vocab.relations[statement.relations[0][1]].phrases
        fields["rel"] = phrases[min(rel_index, len(phrases) - 1)]
    fields["n"] = vocab.counts.get(len(statement.mentions), str(len(statement.mentions)))
    return template.format(**fields)


def template_kind(statement: Statement) -> str:
    """Name of the template family able to express ``statement``."""
    n, has_rel = len(statement.mentions), bool(statement.relations)
    if n == 1:
        return "one"
    if n == 2:
        return "rel" if has_rel else "and"
    return "three_rel" if has_rel else "three_and"


def ordered_for_templates(statement: Statement) -> Statement:
    """Reorder mentions so that the (single) relation reads ``A rel B`` as the templates expect."""
    if not statement.relations:
        return statement
    (i, rel, j), rest = statement.relations[0], statement.relations[1:]
    order = [i, j] + [k for k in range(len(statement.mentions)) if k not in (i, j)]
    remap = {old: new for new, old in enumerate(order)}
    return Statement(
        mentions=tuple(statement.mentions[k] for k in order),
        relations=((0, rel, 1), *((remap[a], r, remap[b]) for a, r, b in rest)),
    )


def pick_wording(statement: Statement, vocab: Vocab, rng: np.random.Generator) -> tuple[str, int]:
    """A random template of the family matching ``statement`` and a random relation-phrase index."""
    family = vocab.templates[template_kind(statement)]
    return family[int(rng.integers(len(family)))], int(rng.integers(3))


def caption(statement: Statement, vocab: Vocab, rng: np.random.Generator) -> str:
    """A caption for ``statement`` from a random template of the matching family."""
    template, rel_index = pick_wording(statement, vocab, rng)
    return realize(statement, template, vocab, rel_index)


def describe(
    scene: Scene,
    vocab: Vocab,
    rng: np.random.Generator,
    p_relation: float = 0.8,
    p_color: float = 1.0,
    p_size: float = 0.5,
    max_mentions: int | None = None,
    p_half: float = 0.0,
) -> Statement:
    """A random true statement about ``scene`` (all objects mentioned unless ``max_mentions``).

    With probability ``p_relation`` (and if the scene has an aligned pair) the statement relates
    two objects; the third object of a 3-object scene is then only mentioned.
    """
    n = len(scene.objects)
    n_mention = n if max_mentions is None else min(n, max_mentions)
    pairs = aligned_pairs(scene, vocab)
    if n_mention >= 2 and pairs and rng.random() < p_relation:
        i, rel, j = pairs[int(rng.integers(len(pairs)))]
        others = [k for k in range(n) if k not in (i, j)][: n_mention - 2]
        order = [i, j, *others]
        relations: tuple[tuple[int, str, int], ...] = ((0, rel, 1),)
    else:
        order = [int(k) for k in rng.permutation(n)[:n_mention]]
        relations = ()
    mentions = tuple(mention_of(scene.objects[k], rng, p_color, p_size, p_half, vocab.grid) for k in order)
    return Statement(mentions=mentions, relations=relations)


# ----------------------------------------------------------------------------------------------- negatives


def _absent(values: list[str], present: set[str], rng: np.random.Generator) -> str | None:
    choices = [v for v in values if v not in present]
    return choices[int(rng.integers(len(choices)))] if choices else None


def _with_mention(st: Statement, k: int, mention: Mention) -> Statement:
    mentions = list(st.mentions)
    mentions[k] = mention
    return replace(st, mentions=tuple(mentions))


def negative(kind: str, statement: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    """A hard negative of ``statement`` of the given SugarCrepe kind, false for ``scene``; None if impossible.

    Kinds: ``replace_obj``, ``replace_att``, ``replace_rel``, ``swap_obj``, ``swap_att``, ``add_obj``,
    ``add_att`` (``add_*`` and ``swap_*`` expect a statement that leaves room for them, see
    :func:`positive_for`). ``relation_swap`` exchanges the two related phrases (ARO VG-Relation).
    """
    neg = _NEGATIVE_BUILDERS[kind](statement, scene, vocab, rng)
    if neg is None or holds(neg, scene, vocab, strict=False):
        return None
    return neg


def _replace_obj(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    k = int(rng.integers(len(st.mentions)))
    shape = _absent(list(vocab.shapes), {o.shape for o in scene.objects}, rng)
    return None if shape is None else _with_mention(st, k, replace(st.mentions[k], shape=shape))


def _replace_att(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    k = int(rng.integers(len(st.mentions)))
    m = st.mentions[k]
    if m.size is not None and rng.random() < 0.3:
        other = [s for s in vocab.sizes if s != m.size]
        return _with_mention(st, k, replace(m, size=other[int(rng.integers(len(other)))]))
    color = _absent(list(vocab.colors), {o.color for o in scene.objects}, rng)
    return None if color is None else _with_mention(st, k, replace(m, color=color))


def _replace_rel(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    if not st.relations:
        return None
    i, rel, j = st.relations[0]
    others = [r for r in vocab.relations if r != rel]
    new = others[int(rng.integers(len(others)))]
    return replace(st, relations=((i, new, j), *st.relations[1:]))


def _swap_field(st: Statement, field: str, rng: np.random.Generator) -> Statement | None:
    idx = [k for k, m in enumerate(st.mentions) if getattr(m, field) is not None]
    if len(idx) < 2:
        return None
    a, b = (idx[int(k)] for k in rng.choice(len(idx), size=2, replace=False))
    ma, mb = st.mentions[a], st.mentions[b]
    if getattr(ma, field) == getattr(mb, field):
        return None
    st = _with_mention(st, a, replace(ma, **{field: getattr(mb, field)}))
    return _with_mention(st, b, replace(mb, **{field: getattr(ma, field)}))


def _swap_obj(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    return _swap_field(st, "shape", rng)


def _swap_att(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    return _swap_field(st, "color", rng)


def _relation_swap(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    if not st.relations:
        return None
    i, rel, j = st.relations[0]
    return replace(st, relations=((j, rel, i),))


def _add_obj(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    if len(st.mentions) >= 3:
        return None
    shape = _absent(list(vocab.shapes), {o.shape for o in scene.objects}, rng)
    colors = list(vocab.colors)
    if shape is None:
        return None
    extra = Mention(shape=shape, color=colors[int(rng.integers(len(colors)))])
    return replace(st, mentions=(*st.mentions, extra))


def _add_att(st: Statement, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement | None:
    idx = [k for k, m in enumerate(st.mentions) if m.color is None]
    if not idx:
        return None
    k = idx[int(rng.integers(len(idx)))]
    color = _absent(list(vocab.colors), {o.color for o in scene.objects}, rng)
    return None if color is None else _with_mention(st, k, replace(st.mentions[k], color=color))


_NEGATIVE_BUILDERS = {
    "replace_obj": _replace_obj,
    "replace_att": _replace_att,
    "replace_rel": _replace_rel,
    "swap_obj": _swap_obj,
    "swap_att": _swap_att,
    "add_obj": _add_obj,
    "add_att": _add_att,
    "relation_swap": _relation_swap,
}

NEGATIVE_KINDS: tuple[str, ...] = tuple(k for k in _NEGATIVE_BUILDERS if k != "relation_swap")
"""The seven SugarCrepe subsets, in SugarCrepe's file naming."""


def positive_for(kind: str, scene: Scene, vocab: Vocab, rng: np.random.Generator) -> Statement:
    """A true statement about ``scene`` shaped so that a ``kind`` negative can be built from it."""
    if kind == "replace_rel":
        return describe(scene, vocab, rng, p_relation=1.0, max_mentions=2)
    if kind == "add_obj":
        return describe(scene, vocab, rng, p_relation=0.5, max_mentions=min(2, len(scene.objects) - 1) or 1)
    if kind == "add_att":
        st = describe(scene, vocab, rng, p_relation=0.7, max_mentions=2)
        k = int(rng.integers(len(st.mentions)))
        return _with_mention(st, k, replace(st.mentions[k], color=None))
    return describe(scene, vocab, rng, p_relation=0.7, max_mentions=2)
