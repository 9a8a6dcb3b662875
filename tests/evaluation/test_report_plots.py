"""Report plots: labels that never overlap (measured with matplotlib's renderer), axes that keep the scale (the
baseline and every interval inside, a minimum span, the range stated), bars on a fixed 0-100 axis."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from fsc_clip.evaluation.plots import (
    MIN_DIFF_SPAN,
    MIN_SPAN,
    DiffRow,
    Point,
    axis_range,
    bar_figure,
    bar_plot,
    diff_figure,
    place_labels,
    scatter_figure,
    text_box,
)

pytest.importorskip("matplotlib")


def _crowd(n: int = 14, seed: int = 0) -> list[Point]:
    """``n`` runs within 0.6 x 0.6 points of each other (an ablation where nothing changes much) + 2 published."""
    rng = random.Random(seed)
    points = [Point(f"row{i}-global+local+focal", 50 + rng.random() * 0.6, 40 + rng.random() * 0.6,
                    x_ci=[49.0, 51.5], y_ci=[39.0, 41.5]) for i in range(n)]  # fmt: skip
    points.append(Point("base", 49.9, 40.1, x_ci=[48.5, 51.0], y_ci=[39.2, 41.0]))
    points += [Point("NegCLIP (published)", 55.9, 52.4, published=True), Point("CLIP openai", 57.1, 46.1, True)]
    return points


def _label_boxes(fig):
    """The axes' box and every label's rendered text box (pixels; leader lines excluded)."""
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return ax.get_window_extent(renderer), [text_box(t, renderer) for t in ax.texts]


def test_scatter_labels_of_many_close_points_do_not_overlap():
    import matplotlib.pyplot as plt

    points = _crowd()
    fig = scatter_figure(points, "zero-shot (ZS)", "compositionality (Comp)", base=points[-3])
    try:
        fig.canvas.draw()
        frame, boxes = _label_boxes(fig)
        assert len(boxes) == len(points)
        texts = [t.get_text() for t in fig.axes[0].texts]
        overlapping = [(a, b) for a, b in itertools.combinations(range(len(boxes)), 2) if boxes[a].overlaps(boxes[b])]
        assert not overlapping, [(texts[a], texts[b]) for a, b in overlapping]
        assert sorted(texts) == sorted(p.label for p in points)
        assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    finally:
        plt.close(fig)


def test_the_label_check_can_fail_labels_at_one_offset_overlap():
    """Control: the same crowd labelled without placement (every label at its marker) does overlap."""
    import matplotlib.pyplot as plt

    points = _crowd()
    fig = scatter_figure([], "x", "y")
    try:
        ax = fig.axes[0]
        ax.set_xlim(40, 60)
        ax.set_ylim(30, 56)
        for p in points:
            ax.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(5, 2), fontsize=7)
        fig.canvas.draw()
        _frame, boxes = _label_boxes(fig)
        assert any(a.overlaps(b) for a, b in itertools.combinations(boxes[1:], 2))  # texts[0]: "no run has ..."
    finally:
        plt.close(fig)


def test_place_labels_with_no_points_adds_nothing():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        place_labels(fig, ax, [])
        assert len(ax.texts) == 0
    finally:
        plt.close(fig)


def test_scatter_axes_include_the_base_and_every_interval_and_state_their_range():
    import matplotlib.pyplot as plt

    base = Point("base", 20.0, 70.0, x_ci=[18.0, 22.0], y_ci=[69.0, 71.0])
    runs = [base, Point("a", 23.0, 71.0, x_ci=[21.0, 25.0], y_ci=[70.0, 72.5])]
    fig = scatter_figure(runs, "ZS", "Comp", base=base)
    try:
        ax = fig.axes[0]
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        assert x0 < 18.0 and x1 > 25.0 and y0 < 69.0 and y1 > 72.5  # every interval (and the base) inside
        assert x1 - x0 >= MIN_SPAN - 1e-9 and y1 - y0 >= MIN_SPAN - 1e-9  # a 3-point spread is not blown up
        for label, (lo, hi) in ((ax.get_xlabel(), (x0, x1)), (ax.get_ylabel(), (y0, y1))):
            stated = re.search(r"axis (\d+(?:\.\d)?)–(\d+(?:\.\d)?)", label)
            assert stated and abs(float(stated[1]) - lo) < 0.51 and abs(float(stated[2]) - hi) < 0.51, label
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert {round(float(line.get_xdata()[0]), 6) for line in dashed} >= {20.0}  # the base's vertical line
    finally:
        plt.close(fig)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([40.0, 41.0], (35.5, 45.5)),  # a 1-point spread is shown on a 10-point axis
        ([10.0, 90.0], (3.6, 96.4)),  # margin 8 % of the span on each side
        ([0.0, 2.0], (0.0, 10.0)),  # never below 0 when no value is
        ([99.0, 100.0], (90.0, 100.0)),  # never above 100 when no value is
    ],
)
def test_axis_range(values, expected):
    lo, hi = axis_range(values)
    assert (round(lo, 1), round(hi, 1)) == expected


def test_bars_use_a_fixed_0_to_100_axis(tmp_path):
    import matplotlib.pyplot as plt
    from PIL import Image

    series, intervals = {"base": [61.0, 63.0], "run": [62.0, None]}, {"base": [[60.0, 62.0], None], "run": None}
    fig = bar_figure(["a", "b"], series, intervals=intervals)
    try:
        ax = fig.axes[0]
        assert ax.get_ylim() == (0.0, 100.0) and "0–100" in ax.get_ylabel()  # 61 vs 62 is not zoomed in
    finally:
        plt.close(fig)
    assert Image.open(bar_plot(["a", "b"], series, tmp_path / "bars.png", intervals=intervals)).size[0] > 100


def test_difference_plot_is_centred_on_zero_with_room_for_every_interval_and_readable_rows():
    import matplotlib.pyplot as plt

    rows = [DiffRow(f"row{i}-g+l+focal+ls", {"Comp": (0.3 * i - 1, [0.3 * i - 2.5, 0.3 * i + 0.5]),
                                              "ZS": (-0.2, [-0.4, 0.1])}) for i in range(1, 9)]  # fmt: skip
    fig = diff_figure(rows, ["Comp", "ZS"], "base", reference="row1-g+l+focal+ls")
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        comp, zs = fig.axes
        lo, hi = comp.get_xlim()
        assert lo == pytest.approx(-hi) and hi > 2.9  # the widest interval end (+2.9) fits
        assert zs.get_xlim()[1] >= MIN_DIFF_SPAN  # a tiny difference is drawn on at least ±2 points
        assert f"±{hi:.1f}" in comp.get_xlabel()
        ticks = [t.get_window_extent(renderer) for t in comp.get_yticklabels() if t.get_text()]
        assert len(ticks) == len(rows)
        assert not any(a.overlaps(b) for a, b in itertools.combinations(ticks, 2))
    finally:
        plt.close(fig)
