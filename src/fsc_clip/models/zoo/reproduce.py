"""Ours vs published, per column, for a zoo model (``fsc-clip reproduce``).

Columns are matched by normalised name between our evaluation summary (benchmark scores, profile columns such as
``Comp`` / ``comp_avg``) and each published row of the entry (``fsc_clip_paper_table1.csv``,
``fsc_clip_extended_results.csv``, ``vl_compo_results.csv``): lower case, ``" Ret"`` dropped, spaces -> ``_``.
A column is flagged when ours differs from the published value by more than :data:`FLAG_POINTS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fsc_clip.models.zoo import ZooEntry, published_rows

FLAG_POINTS = 0.5


@dataclass(frozen=True)
class ColumnDiff:
    """One column of one published row next to ours."""

    table: str
    column: str
    ours: float
    published: float

    @property
    def diff(self) -> float:
        return self.ours - self.published

    @property
    def flagged(self) -> bool:
        return abs(self.diff) > FLAG_POINTS


def normalise(column: str) -> str:
    """``"I2T Ret"`` -> ``"i2t"``, ``"Comp"`` -> ``"comp"``, ``"svo_probes"`` unchanged."""
    col = column.strip().lower()
    col = col.removesuffix(" ret")
    return col.replace(" ", "_")


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "-") else None
    except ValueError:
        return None


def compare(entry: ZooEntry, ours: Mapping[str, float | None]) -> list[ColumnDiff]:
    """Every column present (as a number) both in ``ours`` and in a published row of ``entry``."""
    mine = {normalise(k): v for k, v in ours.items() if v is not None}
    out = []
    for ref, row in published_rows(entry):
        for column, text in row.items():
            value, key = _number(text), normalise(column or "")
            if value is None or key not in mine or key in {normalise(k) for k in ref.match}:
                continue
            out.append(ColumnDiff(ref.table, column, float(mine[key]), value))
    return out


def ours_from_summary(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """Flatten an evaluation summary (``{"benchmarks": ..., "profiles": {name: columns}}``) into column -> score."""
    flat: dict[str, float | None] = dict(summary.get("benchmarks", {}))
    for columns in summary.get("profiles", {}).values():
        for name, value in columns.items():
            flat.setdefault(name, value)
    return flat


def format_lines(entry: ZooEntry, diffs: list[ColumnDiff]) -> list[str]:
    """A printable table: table, column, ours, published, difference, and ``<-- off by > 0.5`` flags."""
    lines = [f"{entry.name}: ours vs published ({len(diffs)} columns; flag: |diff| > {FLAG_POINTS} pt)"]
    lines.append(f"  {'table':<32} {'column':<14} {'ours':>7} {'published':>9} {'diff':>7}")
    for d in diffs:
        flag = "  <-- off" if d.flagged else ""
        lines.append(f"  {d.table:<32} {d.column:<14} {d.ours:7.2f} {d.published:9.2f} {d.diff:+7.2f}{flag}")
    flagged = sum(d.flagged for d in diffs)
    lines.append(
        f"  {flagged} column(s) off by more than {FLAG_POINTS} pt" if flagged else "  all columns within 0.5 pt"
    )
    return lines
