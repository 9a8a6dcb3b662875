"""Report plots (matplotlib, headless Agg backend): the compositionality-vs-zero-shot scatter, per-benchmark bars and
the paired differences to the baseline.

Conventions, the same in every plot (and stated on it):

- Error bars are 95 % intervals: bootstrap over test items for values, paired bootstrap for differences.
- Axes are never zoomed to hide the scale. Bars start at 0 on a fixed 0-100 axis. The scatter's axes span every
  point, its interval and the baseline, plus a margin, and are at least :data:`MIN_SPAN` points wide (so that a
  one-point difference never fills the plot); its axis labels state the range. Differences are drawn on an axis
  centred on 0 (= the baseline), symmetric, at least ``±MIN_DIFF_SPAN`` points, its range in the axis label.
- Point labels never overlap: each is placed where its rendered text box (measured by matplotlib's renderer) meets
  no label placed before it, with a leader line when it had to move away from its point.

matplotlib is imported inside the functions (an optional dependency: ``pip install fsc-clip[plot]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsc_clip.errors import ResourceNotFoundError

MIN_SPAN = 10.0  # points (%): the narrowest scatter axis
MIN_DIFF_SPAN = 2.0  # points: the narrowest half-range of a difference axis
MARGIN = 0.08  # share of the span added on each side
PERCENT = (0.0, 100.0)  # scores are percentages: axes never leave this range unless a value does


@dataclass(frozen=True)
class Point:
    """One run in the scatter: ``x`` (zero-shot), ``y`` (compositionality); published rows drawn hollow."""

    label: str
    x: float
    y: float
    published: bool = False
    x_ci: Sequence[float] | None = None  # 95 % bootstrap interval [lo, hi] of x (drawn as an error bar)
    y_ci: Sequence[float] | None = None


@dataclass(frozen=True)
class DiffRow:
    """One run in the paired-difference plot: per column, ``(difference to the baseline, paired interval)``."""

    label: str
    diffs: Mapping[str, tuple[float, Sequence[float] | None]] = field(default_factory=dict)


def _err(value: float, ci: Sequence[float] | None) -> list[list[float]] | None:
    """matplotlib's asymmetric error ``[[below], [above]]`` of an interval around ``value``."""
    return None if ci is None else [[max(value - ci[0], 0.0)], [max(ci[1] - value, 0.0)]]


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ResourceNotFoundError("Plots need matplotlib: pip install 'fsc-clip[plot]' (or matplotlib).") from err
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def axis_range(values: Sequence[float], min_span: float = MIN_SPAN, bounds: tuple[float, float] = PERCENT):
    """``(lo, hi)`` covering ``values`` plus :data:`MARGIN` on each side, at least ``min_span`` wide, kept inside
    ``bounds`` unless a value lies outside them."""
    lo, hi = (min(values), max(values)) if values else bounds
    pad = max((hi - lo) * MARGIN, (min_span - (hi - lo)) / 2, 0.0)
    lo, hi = lo - pad, hi + pad
    if lo < bounds[0] <= min(values or [bounds[0]]):
        lo, hi = bounds[0], max(hi, bounds[0] + min_span)
    if hi > bounds[1] >= max(values or [bounds[1]]):
        lo, hi = min(lo, bounds[1] - min_span), bounds[1]
    return lo, hi


def _fmt_range(lo: float, hi: float) -> str:
    return f"axis {lo:.0f}–{hi:.0f}" if hi - lo >= 10 else f"axis {lo:.1f}–{hi:.1f}"


def scatter_figure(
    points: Sequence[Point], xlabel: str, ylabel: str, title: str = "", base: Point | None = None
) -> Any:
    """The "spectrum" view as a matplotlib figure (the caller closes it): one labelled marker per run, error bars,
    dashed lines through the baseline ``base``; an explanatory text if there is nothing to draw."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 5.4), dpi=110)
    for p in points:
        color = "0.45" if p.published else "black" if p == base else "C0"  # the baseline stands out
        style = {"facecolors": "none", "edgecolors": color} if p.published else {"color": color}
        ax.scatter([p.x], [p.y], s=46, marker="s" if p.published else "o", zorder=3, **style)
        if p.x_ci is not None or p.y_ci is not None:
            ax.errorbar([p.x], [p.y], xerr=_err(p.x, p.x_ci), yerr=_err(p.y, p.y_ci), fmt="none", ecolor=color,
                        elinewidth=1, capsize=2, zorder=2)  # fmt: skip
    if base is not None:
        ax.axvline(base.x, color="0.5", linestyle="--", linewidth=0.8, zorder=1)
        ax.axhline(base.y, color="0.5", linestyle="--", linewidth=0.8, zorder=1)
    xs = [v for p in points for v in (p.x, *(p.x_ci or ()))]
    ys = [v for p in points for v in (p.y, *(p.y_ci or ()))]
    (x0, x1), (y0, y1) = axis_range(xs), axis_range(ys)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(f"{xlabel}, % ({_fmt_range(x0, x1)})" if points else xlabel)
    ax.set_ylabel(f"{ylabel}, % ({_fmt_range(y0, y1)})" if points else ylabel)
    ax.set_title(title or f"{ylabel} vs {xlabel}")
    ax.grid(alpha=0.3)
    if not points:
        ax.text(0.5, 0.5, f"no run has both {xlabel} and {ylabel}", ha="center", va="center", transform=ax.transAxes)
    if any(p.published for p in points):
        ax.scatter([], [], marker="o", color="C0", label="this report's runs")
        ax.scatter([], [], marker="s", facecolors="none", edgecolors="0.45", label="published (reference)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    caption = (
        "Error bars: 95 % bootstrap intervals over test items. Each axis spans every point, its interval"
        + (" and the base (dashed lines)" if base is not None else "")
        + f", plus margin, at least {MIN_SPAN:.0f} points wide."
    )
    fig.text(0.01, 0.01, caption, fontsize=7, color="0.3", ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.1 if any(p.published for p in points) else 0.04, 1, 1))
    place_labels(
        fig, ax, points, first=base
    )  # after the layout: label offsets are in points, the data transform is final now
    return fig


def scatter_plot(
    points: Sequence[Point], path: str | Path, xlabel: str, ylabel: str, title: str = "", base: Point | None = None
) -> Path:
    """Write :func:`scatter_figure` as a PNG."""
    fig = scatter_figure(points, xlabel, ylabel, title, base)
    try:
        return _save(fig, path, layout=False)
    finally:
        _pyplot().close(fig)


def _save(fig, path: str | Path, layout: bool = True) -> Path:
    """Lay out (unless done already) and write ``fig`` to ``path`` as PNG, atomically (temporary file + rename)."""
    from fsc_clip.fileio import write_with

    if layout:
        fig.tight_layout()
    path = Path(path)
    write_with(path, lambda handle: fig.savefig(handle, format="png"))
    return path


def _label_offsets(line: float, steps: int = 24) -> list[tuple[float, float]]:
    """Candidate label offsets (points) from its marker, nearest first: right, then left, one text line apart."""
    out = []
    for k in range(steps + 1):
        for dy in (0,) if k == 0 else (k, -k):
            out += [(5.0, 2.0 + dy * line), (-5.0, 2.0 + dy * line)]
    return out


def place_labels(fig, ax, points: Sequence[Point], fontsize: float = 7.0, first: Point | None = None) -> None:
    """Annotate points so that no two labels' rendered boxes overlap and every label stays inside the axes.

    Each label takes the first candidate position (:func:`_label_offsets`) whose text box, measured by the renderer,
    is inside the axes and clear of every label placed before it; ``first`` (the baseline), then the runs, then the
    published rows are placed in turn, so they keep the nearest positions in that order. A label moved more than one
    line away from its point gets a leader line.
    """
    if not points:
        return
    fig.canvas.draw()  # fix the data -> pixel transform
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    line = fontsize + 2.0
    for p in sorted(points, key=lambda q: (q.published, q != first)):
        color = "0.35" if p.published else "black"
        ann = ax.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(5.0, 2.0), fontsize=fontsize,
                          color=color, va="bottom")  # fmt: skip
        chosen = None
        for dx, dy in _label_offsets(line):
            ann.set_position((dx, dy))
            ann.set_horizontalalignment("left" if dx > 0 else "right")
            box = text_box(ann, renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in placed):
                chosen = (dx, dy)
                break
        if chosen is None:  # more labels than room: keep the nearest spot (a crowded plot, said by its labels)
            chosen = (5.0, 2.0)
            ann.set_position(chosen)
            ann.set_horizontalalignment("left")
        if abs(chosen[1] - 2.0) > line:
            ann.remove()
            ann = ax.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=chosen, fontsize=fontsize,
                              color=color, va="bottom", ha="left" if chosen[0] > 0 else "right",
                              arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.5,
                                          "shrinkA": 0, "shrinkB": 3})  # fmt: skip
        placed.append(text_box(ann, renderer).expanded(1.02, 1.05))


def text_box(ann, renderer) -> Any:
    """The rendered box of an annotation's text alone (its leader line excluded), in pixels."""
    from matplotlib.text import Text

    if hasattr(ann, "update_positions"):  # an Annotation: its offset-points position -> pixels, as drawing does
        ann.update_positions(renderer)
    return Text.get_window_extent(ann, renderer)


def bar_figure(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str = "",
    intervals: Mapping[str, Sequence[Sequence[float] | None]] | None = None,
) -> Any:
    """Grouped bars on a fixed 0-100 axis (the caller closes the figure): one group per category (benchmark), one
    bar per series (run); missing values are gaps. ``intervals`` (optional, per series and category): 95 %
    intervals ``[lo, hi]`` drawn as error bars."""
    plt = _pyplot()
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.55 * n_cat * max(n_ser, 2) / 2 + 2), 4.8), dpi=110)
    width = 0.8 / n_ser
    for s, (label, values) in enumerate(series.items()):
        xs = [c + (s - (n_ser - 1) / 2) * width for c in range(len(categories))]
        ys = [float("nan") if v is None else v for v in values]
        cis = list((intervals or {}).get(label) or [None] * len(ys))
        below = [0.0 if ci is None or y != y else max(y - ci[0], 0.0) for y, ci in zip(ys, cis)]
        above = [0.0 if ci is None or y != y else max(ci[1] - y, 0.0) for y, ci in zip(ys, cis)]
        has_ci = any(ci is not None for ci in cis)
        ax.bar(xs, ys, width=width, label=label, yerr=[below, above] if has_ci else None,
               error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "0.2"})  # fmt: skip
    ax.set_xticks(list(range(len(categories))))
    ax.set_xticklabels(list(categories), rotation=40, ha="right", fontsize=8)
    ax.set_ylim(*PERCENT)  # bars start at 0: a fixed axis never exaggerates a difference
    ax.set_ylabel("score, % (axis 0–100)")
    ax.set_title(title or "per-benchmark scores")
    if not categories or not series:
        ax.text(0.5, 0.5, "no scores to show", ha="center", va="center", transform=ax.transAxes)
    elif len(series) > 1:
        ax.legend(fontsize=7, ncol=min(5, len(series)), loc="upper center", bbox_to_anchor=(0.5, -0.32),
                  frameon=False)  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def bar_plot(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    path: str | Path,
    title: str = "",
    intervals: Mapping[str, Sequence[Sequence[float] | None]] | None = None,
) -> Path:
    """Write :func:`bar_figure` as a PNG."""
    fig = bar_figure(categories, series, title, intervals)
    try:
        return _save(fig, path, layout=False)
    finally:
        _pyplot().close(fig)


def diff_figure(
    rows: Sequence[DiffRow], columns: Sequence[str], baseline: str, title: str = "", reference: str | None = None
) -> Any:
    """Differences to the baseline with paired 95 % intervals: one panel per column, one line per run (the caller
    closes the figure). Filled markers: the interval excludes 0. A dotted line marks the ``reference`` run's
    difference, so runs left / right of it are worse / better than the reference too."""
    plt = _pyplot()
    n = max(len(rows), 1)
    fig, axes = plt.subplots(1, max(len(columns), 1), figsize=(2.6 * max(len(columns), 1) + 1.6, 1.3 + 0.3 * n),
                             dpi=110, sharey=True, squeeze=False)  # fmt: skip
    ys = list(range(len(rows)))[::-1]  # first row on top
    ref = next((r for r in rows if r.label == reference), None)
    for ax, col in zip(axes[0], columns):
        spread = [abs(v) for r in rows if col in r.diffs for v in (r.diffs[col][0], *(r.diffs[col][1] or ()))]
        half = max([MIN_DIFF_SPAN, *spread]) * (1 + MARGIN)
        ax.axvline(0.0, color="0.3", linewidth=0.9, zorder=1)
        if ref is not None and col in ref.diffs:
            ax.axvline(ref.diffs[col][0], color="C1", linestyle=":", linewidth=1.2, zorder=1)
        for y, r in zip(ys, rows):
            if col not in r.diffs:
                continue
            d, ci = r.diffs[col]
            significant = ci is not None and (ci[0] > 0 or ci[1] < 0)
            ax.errorbar([d], [y], xerr=_err(d, ci), fmt="o", color="C0", markersize=5, elinewidth=1, capsize=2,
                        markerfacecolor="C0" if significant else "white", zorder=3)  # fmt: skip
        ax.set_xlim(-half, half)
        ax.set_xlabel(f"Δ {col} vs {baseline}, points\n(axis ±{half:.1f})", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(ys)
    axes[0][0].set_yticklabels([r.label for r in rows], fontsize=8)
    axes[0][0].set_ylim(-0.7, len(rows) - 0.3)
    ref_note = f"; dotted: {reference}" if ref is not None else ""
    fig.suptitle(title or f"Difference to {baseline}", fontsize=10)
    fig.text(0.01, 0.01, f"Paired 95 % bootstrap intervals; filled: the interval excludes 0; solid line: "
             f"{baseline}{ref_note}.", fontsize=7, color="0.3", ha="left", va="bottom")  # fmt: skip
    fig.tight_layout(rect=(0, 0.05 + 0.15 / n, 1, 1))
    return fig


def diff_plot(
    rows: Sequence[DiffRow],
    columns: Sequence[str],
    path: str | Path,
    baseline: str,
    title: str = "",
    reference: str | None = None,
) -> Path:
    """Write :func:`diff_figure` as a PNG."""
    fig = diff_figure(rows, columns, baseline, title, reference)
    try:
        return _save(fig, path, layout=False)
    finally:
        _pyplot().close(fig)
