"""Report plots (matplotlib, headless Agg backend): the compositionality-vs-zero-shot scatter and a bar chart.

matplotlib is imported inside the functions (an optional dependency: ``pip install fsc-clip[plot]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fsc_clip.errors import ResourceNotFoundError


@dataclass(frozen=True)
class Point:
    """One run in the scatter: ``x`` (zero-shot), ``y`` (compositionality); published rows drawn hollow."""

    label: str
    x: float
    y: float
    published: bool = False
    x_ci: Sequence[float] | None = None  # 95 % bootstrap interval [lo, hi] of x (drawn as an error bar)
    y_ci: Sequence[float] | None = None


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


def scatter_plot(points: Sequence[Point], path: str | Path, xlabel: str, ylabel: str, title: str = "") -> Path:
    """The "spectrum" view: one labelled marker per run; an explanatory text if there is nothing to draw."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 5.0), dpi=110)
    try:
        for p in points:
            style = {"facecolors": "none", "edgecolors": "0.45"} if p.published else {"color": "C0"}
            ax.scatter([p.x], [p.y], s=46, marker="s" if p.published else "o", zorder=3, **style)
            if p.x_ci is not None or p.y_ci is not None:
                ax.errorbar([p.x], [p.y], xerr=_err(p.x, p.x_ci), yerr=_err(p.y, p.y_ci), fmt="none",
                            ecolor="0.45" if p.published else "C0", elinewidth=1, capsize=2, zorder=2)  # fmt: skip
        _place_labels(fig, ax, points)
        if not points:
            ax.text(
                0.5, 0.5, f"no run has both {xlabel} and {ylabel}", ha="center", va="center", transform=ax.transAxes
            )
        if any(p.published for p in points):
            ax.scatter([], [], marker="o", color="C0", label="this report's runs")
            ax.scatter([], [], marker="s", facecolors="none", edgecolors="0.45", label="published (reference)")
            ax.legend(loc="best", fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title or f"{ylabel} vs {xlabel}")
        ax.grid(alpha=0.3)
        return _save(fig, path)
    finally:
        plt.close(fig)


def _save(fig, path: str | Path) -> Path:
    """Lay out and write ``fig`` to ``path`` as PNG, atomically (temporary file + rename; folder created)."""
    from fsc_clip.fileio import write_with

    fig.tight_layout()
    path = Path(path)
    write_with(path, lambda handle: fig.savefig(handle, format="png"))
    return path


def _place_labels(fig, ax, points: Sequence[Point], fontsize: float = 7.0) -> None:
    """Annotate points, nudging each label up or down (in steps of one text line) until it overlaps no label
    placed before it. Runs are labelled first, so they keep the nearest position."""
    if not points:
        return
    ax.relim()
    ax.autoscale_view()
    fig.canvas.draw()  # fix the data -> pixel transform
    px_per_pt = fig.dpi / 72.0
    line = (fontsize + 2) * px_per_pt
    placed: list[tuple[float, float, float, float]] = []  # label boxes in pixels: x0, y0, x1, y1
    for p in sorted(points, key=lambda q: q.published):
        x, y = ax.transData.transform((p.x, p.y))
        width = 0.6 * fontsize * px_per_pt * len(p.label)
        for k in (0, 1, -1, 2, -2, 3, -3, 4, -4):
            box = (x + 5 * px_per_pt, y + 3 * px_per_pt + k * line, 0.0, 0.0)
            box = (box[0], box[1], box[0] + width, box[1] + line)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                break
        placed.append(box)
        offset = ((box[0] - x) / px_per_pt, (box[1] - y) / px_per_pt)
        ax.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=offset, fontsize=fontsize,
                    color="0.35" if p.published else "black")  # fmt: skip


def bar_plot(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    path: str | Path,
    title: str = "",
    intervals: Mapping[str, Sequence[Sequence[float] | None]] | None = None,
) -> Path:
    """Grouped bars: one group per category (benchmark), one bar per series (run); missing values are gaps.

    ``intervals`` (optional, per series and category): 95 % intervals ``[lo, hi]`` drawn as error bars.
    """
    plt = _pyplot()
    n_cat, n_ser = max(len(categories), 1), max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 0.55 * n_cat * max(n_ser, 2) / 2 + 2), 4.8), dpi=110)
    try:
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
        ax.set_ylabel("score (%)")
        ax.set_title(title or "per-benchmark scores")
        if not categories or not series:
            ax.text(0.5, 0.5, "no scores to show", ha="center", va="center", transform=ax.transAxes)
        elif len(series) > 1:
            ax.legend(fontsize=7, ncol=min(3, len(series)))
        ax.grid(axis="y", alpha=0.3)
        return _save(fig, path)
    finally:
        plt.close(fig)
