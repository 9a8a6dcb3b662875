"""The holistic report: several evaluated runs side by side, headline columns, deltas, published references, plots.

Input: result directories written by ``fsc-clip eval`` (one JSON per benchmark, each with ``scores``). Each
directory is one row. Columns come from an aggregation profile (:mod:`fsc_clip.evaluation.aggregate`):

- ``fsc``: the 11 compositional benchmarks, then ``Comp`` (their mean), ``ZS`` (mean of the 21 zero-shot
  tasks), ``I2T`` / ``T2I`` (mean R@1 over the retrieval sets present: COCO 5k, Flickr30k 1k,
  COCO-Counterfactuals).
- ``vl_compo``: the 12 benchmarks of the companion study and its ``results.csv`` columns (``comp_avg``,
  ``imagenet``, ``21_tasks_avg``, ``coco_i2t`` ... ``i2t_avg``, ``t2i_avg``).
- any other registered profile (e.g. ``synthetic``).

A column whose inputs are incomplete is empty ("-"), never a silently partial mean. Outputs (``write_report``):
``summary.csv`` (one row per run: profile columns, then ``delta_<headline>`` vs the baseline, and
``delta_<headline>_vs_<reference>`` vs each reference row), ``subscores.csv`` (every sub-score of every row),
``report.md``, a self-contained ``report.html`` (plots embedded as data URIs; Markdown inline code rendered as
``<code>``), and ``plots/comp_vs_zs.png``, ``plots/benchmarks.png`` and, with paired intervals,
``plots/paired.png`` (conventions: :mod:`fsc_clip.evaluation.plots`). Both documents open with a definitions block
of the headline columns (Comp / ZS / I2T / T2I: what each measures and how the profile computes it) and name only
benchmarks and tasks that their tables hold.

Published rows (``published=True``) are numbers copied from the public tables (package data under
``fsc_clip/resources/published/``), marked ``source = published: ...`` everywhere and drawn hollow in the plots.
With ``published=True``, every run of a model-zoo model (the result JSONs' ``model.name`` is a zoo name, as
``fsc-clip eval --model negclip`` writes it) is also set beside the published row(s) of that model
(:func:`fsc_clip.models.zoo.published_rows`), column by column with the difference: one table per published row in
``report.md`` / ``report.html``, and every column in ``published_comparison.csv``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError, UserError
from fsc_clip.fileio import ensure_writable_dir, write_bytes, write_text

log = logging.getLogger(__name__)
RUN = "run"
SUMMARY_JSON = "summary.json"
NUM_TD = '<td class="num">'
_NUMERIC = re.compile(r"^[-+]?(\d|-$)")
# Headline roles -> column name per profile (for the scatter and the headline table).
ROLES = ("Comp", "ZS", "I2T", "T2I")
ROLE_COLUMNS = {
    "fsc": {"Comp": "Comp", "ZS": "ZS", "I2T": "I2T", "T2I": "T2I"},
    "vl_compo": {"Comp": "comp_avg", "ZS": "21_tasks_avg", "I2T": "i2t_avg", "T2I": "t2i_avg"},
}
#: What each headline role measures (the definitions block of the report names it before the column's rule).
ROLE_NAMES = {
    "Comp": "compositionality",
    "ZS": "zero-shot classification",
    "I2T": "image-to-text retrieval",
    "T2I": "text-to-image retrieval",
}
RETRIEVAL_SETS = ("coco_karpathy", "flickr30k", "coco_counterfactuals", "synthetic_retrieval")
ZS_PREFIX = "elevator::"
#: Sub-score prefix of a zero-shot suite -> the title of its table (one column per task).
ZS_SUITES = {ZS_PREFIX: "ELEVATER", "synthetic_zeroshot::": "synthetic world"}


@dataclass
class Row:
    """One report row: an evaluated run or a published reference."""

    name: str
    model: str
    source: str  # "run" or "published: <table>"
    subscores: dict[str, float] = field(default_factory=dict)
    columns: dict[str, float | None] = field(default_factory=dict)
    path: str = ""
    problems: list[str] = field(default_factory=list)  # skipped result files (see load_run)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # benchmark -> its result JSON
    ci: dict[str, list[float] | None] = field(default_factory=dict)  # column -> 95 % interval (stats)
    replicates: Any = None  # stats.RunReplicates from the saved per-item outcomes
    paired: dict[str, dict | None] = field(default_factory=dict)  # column -> paired difference vs the baseline

    @property
    def published(self) -> bool:
        return self.source != RUN


@dataclass
class ZooComparison:
    """A run of a zoo model beside one published row of that model (``published`` names its table and match)."""

    run: str
    model: str  # the zoo entry's name
    table: str
    match: dict[str, str]
    columns: list[tuple[str, float | None, float]]  # (published column, ours or None, published value)

    def diffs(self) -> list[float | None]:
        """``ours - published`` per column (None where we have no value)."""
        return [None if ours is None else ours - pub for _c, ours, pub in self.columns]


@dataclass
class Report:
    """Rows with their profile columns; ``baseline`` names the row that deltas refer to (or None)."""

    profile: str
    description: str
    benchmarks: list[str]
    headlines: list[str]
    rows: list[Row]
    baseline: str | None = None
    zoo: list[ZooComparison] = field(default_factory=list)  # runs of zoo models vs their published rows
    definitions: dict[str, str] = field(default_factory=dict)  # headline column -> how it is computed
    references: list[str] = field(default_factory=list)  # run rows that every other run is paired with too
    paired_vs: dict[str, dict[str, dict[str, dict | None]]] = field(default_factory=dict)  # ref -> run -> col
    extra_tables: list[Table] = field(default_factory=list)  # appended by the caller (e.g. a study's own table)

    @property
    def columns(self) -> list[str]:
        return [*self.benchmarks, *self.headlines]

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def delta(self, row: Row, column: str) -> float | None:
        """``row[column] - baseline[column]`` (None without a baseline or a value)."""
        if self.baseline is None:
            return None
        a, b = row.columns.get(column), self.row(self.baseline).columns.get(column)
        return None if a is None or b is None else a - b

    def role_column(self, role: str) -> str | None:
        """The column playing ``role`` (Comp / ZS / I2T / T2I) in this profile, if any."""
        col = ROLE_COLUMNS.get(self.profile, {}).get(role, role)
        return col if col in self.headlines else None

    def definition_lines(self) -> list[tuple[str, str]]:
        """``(column, "what it measures: how it is computed")`` for every headline column, roles first."""
        roles = {col: name for r, name in ROLE_NAMES.items() if (col := self.role_column(r))}
        ordered = [*(c for c in self.headlines if c in roles), *(c for c in self.headlines if c not in roles)]
        lines = []
        for col in ordered:
            rule, what = self.definitions.get(col, ""), roles.get(col)
            lines.append((col, f"{what}: {rule}" if what and rule else what or rule or "(no description)"))
        return lines


# ----- loading ------------------------------------------------------------------------------------------------
class ResultFileError(UserError):
    """A result folder holds a corrupt or malformed result JSON, or results of several weights (``--strict``)."""


def _check_result(f: Path, data: Any) -> str | None:
    """Why ``data`` (parsed from ``f``) is not a valid result record, or ``None``."""
    if not isinstance(data, dict):
        return f"{f}: expected a JSON object written by `fsc-clip eval`, got {type(data).__name__}"
    if not isinstance(data.get("benchmark"), str):
        return f"{f}: field 'benchmark' is missing or not a string (not a result of `fsc-clip eval`?)"
    scores = data.get("scores")
    if not isinstance(scores, dict):
        return f"{f}: field 'scores' is missing or not an object of sub-score -> number"
    bad = [k for k, v in scores.items() if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))]
    if bad:
        return f"{f}: scores[{bad[0]!r}] is {scores[bad[0]]!r}, not a number ({len(bad)} such value(s))"
    if data.get("model") is not None and not isinstance(data["model"], dict):
        return f"{f}: field 'model' is not an object"
    return None


def _read_results(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The valid result records of a folder, and one problem line per file that looks wrong."""
    records, problems = [], []
    for f in sorted(path.glob("*.json")):
        if f.name == SUMMARY_JSON:
            continue  # the per-run summary `fsc-clip eval` writes next to the results
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            problems.append(f"{f}: not valid JSON ({err}); skipped (re-run `fsc-clip eval` for this benchmark)")
            continue
        except OSError as err:
            problems.append(f"{f}: cannot be read ({err.strerror or err}); skipped")
            continue
        why = _check_result(f, data)
        if why:
            problems.append(f"{why}; skipped")
        else:
            records.append(data)
    weights = {str((r.get("weights_fingerprint") or {}).get("sha256")) for r in records if r.get("weights_fingerprint")}
    if len(weights) > 1:
        problems.append(f"{path}: holds results of {len(weights)} different weights (weights_fingerprint differs); "
                        "a result folder should hold one model's results (all kept in this row)")  # fmt: skip
    return records, problems


def load_run(result_dir: str | Path, strict: bool = False) -> Row:
    """Read every ``<benchmark>.json`` result in a directory into one row (sub-scores merged).

    A corrupt or malformed result JSON, or results of several weights in one folder, is logged as a warning
    naming the file (the row then lacks those scores), or raised with ``strict``.

    Raises:
        DataNotFoundError: the folder does not exist or holds no valid result.
        ResultFileError: with ``strict``, any problem above.
    """
    path = Path(result_dir).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"result directory {path} does not exist (give folders written by `fsc-clip eval`).")
    records, problems = _read_results(path)
    if problems and strict:
        raise ResultFileError("invalid result files (drop --strict to skip them with a warning):\n  "
                              + "\n  ".join(problems))  # fmt: skip
    for problem in problems:
        log.warning("warning: %s", problem)
    subscores: dict[str, float] = {}
    model = ""
    for data in records:
        subscores.update({k: float(v) for k, v in data["scores"].items() if v is not None})
        info = data.get("model") or {}
        model = model or str(info.get("label") or "/".join(str(info[k]) for k in ("name", "pretrained") if info.get(k)))
    if not subscores:
        raise DataNotFoundError(f"{path} holds no benchmark result JSONs (run `fsc-clip eval --output {path}` "
                                "first).")  # fmt: skip
    return Row(name=path.name, model=model or path.name, source=RUN, subscores=subscores, path=str(path),
               problems=problems, records={d["benchmark"]: d for d in records})  # fmt: skip


def _published_file(name: str):
    return resources.files("fsc_clip") / "resources" / "published" / name


def _num(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def published_rows(profile: str) -> list[Row]:
    """Reference rows for a profile from package data (``[]`` for profiles without published numbers)."""
    rows: list[Row] = []
    if profile == "vl_compo":
        with _published_file("vl_compo_individual_results.csv").open(encoding="utf-8") as fh:
            subs = {(r["arch"], r["pretrained"]): r for r in csv.DictReader(fh)}
        with _published_file("vl_compo_results.csv").open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                key = (r["arch"], r["pretrained"])
                sub = {k: float(v) for k, v in subs.get(key, {}).items() if "::" in k and v != ""}
                cols = {k: _num(v) for k, v in r.items() if k not in ("arch", "pretrained", "family")}
                rows.append(Row(f"{r['arch']} {r['pretrained']}", "/".join(key), "published: vl_compo results.csv",
                                sub, cols))  # fmt: skip
    elif profile == "fsc":
        with _published_file("fsc_clip_paper.csv").open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                cols = {k: _num(v) for k, v in r.items() if k not in ("model", "arch", "pretrained", "source")}
                rows.append(Row(f"{r['model']} {r['pretrained']}", f"{r['arch']}/{r['pretrained']}",
                                "published: FSC-CLIP paper table", {}, cols))  # fmt: skip
    return rows


def _unique_names(rows: list[Row]) -> None:
    """Disambiguate equal row names: ``parent/name`` for runs, then a ``(2)``, ``(3)`` suffix."""
    names = [r.name for r in rows]
    for r in rows:
        if names.count(r.name) > 1 and r.path:
            r.name = f"{Path(r.path).parent.name}/{r.name}"
    seen: dict[str, int] = {}
    for r in rows:
        seen[r.name] = seen.get(r.name, 0) + 1
        if seen[r.name] > 1:
            r.name = f"{r.name} ({seen[r.name]})"


def _pick_baseline(rows: list[Row], name: str | None) -> str | None:
    """The row named exactly ``name`` (or whose folder is ``name``); anything else is an error listing candidates."""
    if not name:
        return None
    names = [r.name for r in rows]
    if name in names:
        return name
    by_path = [r.name for r in rows if r.path and Path(r.path) == Path(name).expanduser()]
    if len(by_path) == 1:
        return by_path[0]
    hits = [n for n in names if name.lower() in n.lower()]
    if len(hits) == 1:
        raise UserError(f"--baseline {name!r} is not a row name; did you mean {hits[0]!r}? (rows: {', '.join(names)})")
    if hits:
        raise UserError(f"--baseline {name!r} is ambiguous: it matches {', '.join(map(repr, hits))}; give the exact "
                        "row name")  # fmt: skip
    raise UserError(f"--baseline {name!r} matches no row; choose one of: {', '.join(names)}")


def build_report(
    result_dirs: list[str | Path],
    profile: str = "fsc",
    baseline: str | None = None,
    published: bool = False,
    strict: bool = False,
    references: list[str] | None = None,
) -> Report:
    """Load runs, compute the profile's columns for each, add published rows if asked, resolve the baseline.

    Args:
        result_dirs: Directories of result JSONs, one per run.
        profile: Aggregation profile name (``fsc``, ``vl_compo``, ``synthetic``, ...).
        baseline: Row name (exactly; or a run's folder as given) that deltas refer to.
        published: Append the published reference rows of the profile.
        strict: A corrupt or malformed result JSON is an error (default: a warning, the file is skipped).
        references: Further rows (names, as ``baseline``) that every other run is paired with: one more
            paired-comparison table each (e.g. the first row of an ablation).

    Raises:
        UserError: ``baseline`` or a reference is not exactly one row's name (the message lists the candidates).
        ResultFileError: with ``strict``, a result folder holds an invalid file.
    """
    from fsc_clip.evaluation.aggregate import compute_columns, get_profile
    from fsc_clip.evaluation.stats import run_intervals

    prof = get_profile(profile)
    rows = [load_run(d, strict=strict) for d in result_dirs]
    for r in rows:
        r.columns = compute_columns(prof, r.subscores)
        r.ci, r.replicates = run_intervals(prof, r.records, r.path)
    if published:
        for r in published_rows(profile):
            r.columns = {c: r.columns.get(c) for c in prof.columns()}
            rows.append(r)
    _unique_names(rows)
    report = Report(
        profile=profile,
        description=prof.description,
        benchmarks=list(prof.benchmarks),
        headlines=[h.name for h in prof.headlines],
        rows=rows,
        baseline=_pick_baseline(rows, baseline),
        zoo=zoo_comparisons(rows) if published else [],
        definitions={h.name: h.description for h in prof.headlines if h.description},
        references=[str(_pick_baseline(rows, ref)) for ref in references or []],
    )
    _pair_with_baseline(report, prof)
    for ref in report.references:  # the baseline is compared with every run already
        paired = _paired_against(report, report.row(ref), prof)
        report.paired_vs[ref] = {k: v for k, v in paired.items() if k != report.baseline}
    return report


# Profiles whose columns are matched against published rows: their benchmark columns are computed alike (by the
# benchmark classes), their headlines are named as in the FSC-CLIP tables (Comp, ZS, ...) and vl_compo's (comp_avg).
ZOO_PROFILES = ("fsc", "vl_compo")


def _zoo_name(row: Row) -> str | None:
    """The zoo entry a run evaluated (``model.name`` of its result JSONs), or None.

    The zoo loaders record the entry's name exactly (``negclip``); the name must match exactly, so a result whose
    model is an architecture spelled like an entry (``NegCLIP`` in a hand-written result) is not taken for one.
    """
    from fsc_clip.models.zoo import ZOO

    names = {str((rec.get("model") or {}).get("name") or "") for rec in row.records.values()}
    hits = sorted(n for n in names if n in ZOO and ZOO.get(n).name == n)
    return hits[0] if len(hits) == 1 else None


def _published_number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "-") else None
    except ValueError:  # text columns (method, family, notes)
        return None


def zoo_comparisons(rows: list[Row]) -> list[ZooComparison]:
    """For each run of a zoo model: one :class:`ZooComparison` per published row of its entry.

    Columns are matched by normalised name (:func:`fsc_clip.models.zoo.reproduce.normalise`: ``"I2T Ret"`` ->
    ``i2t``) against our columns of the ``fsc`` and ``vl_compo`` profiles (and of the report's own profile).
    """
    from fsc_clip.evaluation.aggregate import compute_columns
    from fsc_clip.models.zoo import get_entry, published_rows
    from fsc_clip.models.zoo.reproduce import normalise

    out = []
    for r in rows:
        name = None if r.published else _zoo_name(r)
        if name is None:
            continue
        ours: dict[str, float] = {}
        for cols in (r.columns, *(compute_columns(p, r.subscores) for p in ZOO_PROFILES)):
            for k, v in cols.items():
                if v is not None:
                    ours.setdefault(normalise(k), v)
        entry = get_entry(name)
        if not entry.published:
            log.warning("warning: zoo model %s (run %s) has no published row to compare with", name, r.name)
        for ref, published in published_rows(entry):
            keys = {normalise(k) for k in ref.match}
            compared = [(c, ours.get(normalise(c)), v) for c, text in published.items()
                        if c and normalise(c) not in keys and (v := _published_number(text)) is not None]  # fmt: skip
            out.append(ZooComparison(r.name, entry.name, ref.table, dict(ref.match), compared))
    return out


def _pair_with_baseline(report: Report, prof: Any) -> None:
    """Paired bootstrap difference (same items, same draws) of every run row against a baseline run row."""
    if report.baseline:
        for name, paired in _paired_against(report, report.row(report.baseline), prof).items():
            report.row(name).paired = paired


def _paired_against(report: Report, ref: Row, prof: Any) -> dict[str, dict[str, dict | None]]:
    """``{run: {column: paired interval of run - ref}}`` for every other run row (``{}`` for a published ref)."""
    from fsc_clip.evaluation.stats import paired_columns

    if ref.published or ref.replicates is None:
        return {}
    return {r.name: paired_columns(ref.replicates, r.replicates, prof) for r in report.rows
            if r is not ref and not r.published and r.replicates is not None}  # fmt: skip


# ----- tables -------------------------------------------------------------------------------------------------
def fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def _cell(report: Report, row: Row, col: str) -> str:
    """``value ± half-width of its 95 % interval (delta to the baseline)``; the ``±`` part only where known."""
    from fsc_clip.evaluation.stats import half_width

    d = report.delta(row, col)
    hw = half_width(row.ci.get(col)) if row.columns.get(col) is not None else None
    value = fmt(row.columns.get(col)) + (f" ± {hw:.2f}" if hw is not None else "")
    return value + (f" ({fmt(d, True)})" if d is not None and row.name != report.baseline else "")


def _paired_cell(report: Report, row: Row, col: str, against: str | None = None) -> str:
    """``+1.23 [+0.40, +2.05] *`` (``*``: the interval excludes 0), ``+1.23 (no interval)`` without outcomes.

    ``against``: a reference row (default: the baseline).
    """
    if against is None:
        d, p = report.delta(row, col), row.paired.get(col)
    else:
        a, b = row.columns.get(col), report.row(against).columns.get(col)
        d = None if a is None or b is None else a - b
        p = report.paired_vs.get(against, {}).get(row.name, {}).get(col)
    if d is None:
        return "-"
    if p is None:
        return f"{fmt(d, True)} (no interval)"
    lo, hi = p["ci"]
    return f"{fmt(d, True)} [{fmt(lo, True)}, {fmt(hi, True)}]" + (" *" if p["significant"] else "")


def paired_table(report: Report, against: str | None = None) -> Table | None:
    """Each run minus the baseline run (or the reference row ``against``), per column, with the paired 95 %
    bootstrap interval."""
    name = against or report.baseline
    base = report.row(name) if name else None
    if base is None:
        return None
    rows = [
        r for r in report.rows if r is not base and not r.published and (against is None or r.name != report.baseline)
    ]
    if not rows:
        return None
    role = "baseline" if against is None else "reference"
    note = (
        f"Difference to the {role} `{base.name}` with its paired 95 % bootstrap interval (both runs resampled "
        "with the same item draws); * = the interval excludes 0. 'no interval': per-item outcomes missing "
        "(evaluate both runs with `fsc-clip eval --save-scores`) or the runs were scored on different items."
    )
    if base.published:
        note = f"The {role} `{base.name}` is a published row: no per-item outcomes, so no paired intervals."
    return Table(f"Paired comparison vs {base.name}", ["run", *report.columns],
                 [[_label(r), *(_paired_cell(report, r, c, against) for c in report.columns)] for r in rows],
                 note)  # fmt: skip


def _label(row: Row) -> str:
    return f"{row.name} †" if row.published else row.name


def report_tables(report: Report) -> list[Table]:
    """Headline, per-benchmark, zero-shot and retrieval tables (cells are formatted strings)."""
    delta_note = f" Values in parentheses: difference to the baseline `{report.baseline}`." if report.baseline else ""
    delta_note += (" ± = half-width of the 95 % bootstrap interval over items (shown where the result has one; "
                   "headlines need `fsc-clip eval --save-scores` for every benchmark they average).")  # fmt: skip
    pub_note = " † = published reference numbers (copied from the public tables, not computed here)."
    tables = [
        Table("Headline", ["run", "model", "source", *report.headlines],
              [[_label(r), r.model, r.source, *(_cell(report, r, c) for c in report.headlines)] for r in report.rows],
              "'-' = inputs missing (a headline needs every benchmark or task it averages; see Definitions)."
              + delta_note + (pub_note if any(r.published for r in report.rows) else "")),
        Table("Per-benchmark scores", ["run", *report.benchmarks],
              [[_label(r), *(_cell(report, r, c) for c in report.benchmarks)] for r in report.rows], delta_note),
    ]  # fmt: skip
    for prefix, suite in ZS_SUITES.items():
        zs_cols = sorted({k for r in report.rows for k in r.subscores if k.startswith(prefix)})
        if zs_cols:
            tables.append(Table(f"Zero-shot classification ({suite})",
                                ["run", "tasks", *(c[len(prefix):] for c in zs_cols)],
                                [[_label(r), str(sum(c in r.subscores for c in zs_cols)),
                                  *(fmt(r.subscores.get(c)) for c in zs_cols)]
                                 for r in report.rows if any(c in r.subscores for c in zs_cols)]))  # fmt: skip
    ret_cols = [f"{s}::{d}/R@{k}" for s in RETRIEVAL_SETS for d in ("i2t", "t2i") for k in (1, 5, 10)]
    ret_cols = [c for c in ret_cols if any(c in r.subscores for r in report.rows)]
    if ret_cols:
        tables.append(Table("Retrieval (recall@k, %)", ["run", *ret_cols],
                            [[_label(r), *(fmt(r.subscores.get(c)) for c in ret_cols)]
                             for r in report.rows if any(c in r.subscores for c in ret_cols)]))  # fmt: skip
    blind = blind_table(report)
    if blind:
        tables.append(blind)
    tables.extend(zoo_tables(report))
    paired = [t for t in (paired_table(report), *(paired_table(report, ref) for ref in report.references)) if t]
    return [tables[0], *paired, *tables[1:], *report.extra_tables]


def blind_table(report: Report) -> Table | None:
    """Text-only (blind) runs against chance, per sub-score and benchmark column (:mod:`fsc_clip.evaluation.blind`)."""
    from fsc_clip.evaluation.blind import FAR_ABOVE_CHANCE, blind_flags

    rows = []
    for r in report.rows:
        for record in r.records.values():
            counts = record.get("counts") or {}
            for f in blind_flags(record):
                ci = f"[{fmt(f.ci[0])}, {fmt(f.ci[1])}]" if f.ci else "-"
                n = counts.get(f.key, sum(counts.values()) if f.key == f.benchmark else None)
                same = "-" if f.same_words is None else f"{f.same_words} / {n}" if n else str(f.same_words)
                rows.append([_label(r), f.key, fmt(f.score), ci, fmt(f.chance), fmt(f.margin, True), same,
                             "FAR ABOVE CHANCE" if f.far_above else ""])  # fmt: skip
            info = (record.get("extra") or {}).get("blind") or {}
            if info.get("status") == "not_applicable":  # N/A for a blind model: say why, and its same-word items
                same_items = info.get("same_words_items") or {}
                rows.append([_label(r), record["benchmark"], "N/A", "-", "-", "-",
                             str(sum(same_items.values())) if same_items else "-",
                             f"N/A: {info.get('reason', '')}"])  # fmt: skip
    if not rows:
        return None
    note = (
        f"Runs of a text-only model (`fsc-clip eval --blind`), which ranks the captions without the image. FAR ABOVE "
        f"CHANCE: more than {FAR_ABOVE_CHANCE:.0f} points above chance (100 / number of candidates) and the 95 % "
        "interval entirely above chance: the text alone tells the right caption there, so that (sub-)benchmark "
        "measures language priors as much as vision-language understanding. same-word items: items whose right "
        "and wrong captions have the same words in another order (a word-order-blind model cannot solve them; "
        "ties count as failures)."
    )
    header = ["run", "sub-score", "blind", "95 % CI", "chance", "blind - chance", "same-word items", "flag"]
    return Table("Text-only (blind) baselines vs chance", header, rows, note)


def zoo_tables(report: Report) -> list[Table]:
    """Per zoo run and published row: ours, published, ours - published, column by column."""
    from fsc_clip.models.zoo.reproduce import FLAG_POINTS

    tables = []
    for z in report.zoo:
        diffs = z.diffs()
        flag = [d is not None and abs(d) > FLAG_POINTS for d in diffs]
        rows = [
            [z.run, *(fmt(o) for _c, o, _p in z.columns)],
            [f"published: {z.table}", *(fmt(p) for _c, _o, p in z.columns)],
            ["ours - published", *(fmt(d, True) + (" !" if f else "") for d, f in zip(diffs, flag))],
        ]
        match = ", ".join(f"{k}={v}" for k, v in z.match.items())
        note = (f"Published row of zoo model `{z.model}`: `{z.table}` where {match} (package data, copied from the "
                f"public table). '-': we have no value for that column (benchmark not evaluated). ! = off by more "
                f"than {FLAG_POINTS} pt ({sum(flag)} column(s)).")  # fmt: skip
        tables.append(Table(f"{z.run} ({z.model}) vs published {z.table}", ["row", *(c for c, _o, _p in z.columns)],
                            rows, note))  # fmt: skip
    return tables


def zoo_records(report: Report) -> list[dict[str, Any]]:
    """One dict per (zoo run, published row, column) for ``published_comparison.csv``."""
    from fsc_clip.models.zoo.reproduce import FLAG_POINTS

    out = []
    for z in report.zoo:
        match = "; ".join(f"{k}={v}" for k, v in z.match.items())
        for (column, ours, published), d in zip(z.columns, z.diffs()):
            out.append({"run": z.run, "zoo_model": z.model, "table": z.table, "match": match, "column": column,
                        "ours": ours, "published": published, "diff": d,
                        "off": None if d is None else abs(d) > FLAG_POINTS})  # fmt: skip
    return out


def summary_records(report: Report) -> list[dict[str, Any]]:
    """One dict per row for ``summary.csv``: identity, profile columns, deltas of the headline columns."""
    out = []
    for r in report.rows:
        rec: dict[str, Any] = {"run": r.name, "model": r.model, "source": r.source, "path": r.path}
        rec.update({c: r.columns.get(c) for c in report.columns})
        rec["zs_tasks"] = sum(k.startswith(ZS_PREFIX) for k in r.subscores) if not r.published else None
        for c in report.headlines:
            rec[f"delta_{c}"] = report.delta(r, c)
        for c in report.columns:  # 95 % intervals, and the paired interval of the delta (None: not available)
            ci, p = r.ci.get(c), r.paired.get(c)
            rec[f"ci_lo_{c}"], rec[f"ci_hi_{c}"] = (ci[0], ci[1]) if ci else (None, None)
            if report.baseline and c in report.headlines:
                rec[f"delta_{c}_ci_lo"], rec[f"delta_{c}_ci_hi"] = (p["ci"][0], p["ci"][1]) if p else (None, None)
                rec[f"delta_{c}_significant"] = p["significant"] if p else None
        for ref in report.references:  # the same against each reference row
            for c in report.headlines:
                a, b = r.columns.get(c), report.row(ref).columns.get(c)
                p = report.paired_vs.get(ref, {}).get(r.name, {}).get(c)
                rec[f"delta_{c}_vs_{ref}"] = None if a is None or b is None else a - b
                rec[f"delta_{c}_vs_{ref}_ci_lo"], rec[f"delta_{c}_vs_{ref}_ci_hi"] = p["ci"] if p else (None, None)
                rec[f"delta_{c}_vs_{ref}_significant"] = p["significant"] if p else None
        out.append(rec)
    return out


# ----- writing ------------------------------------------------------------------------------------------------
def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    header = list(dict.fromkeys(k for rec in records for k in rec))
    buffer = io.StringIO(newline="")
    w = csv.DictWriter(buffer, fieldnames=header)
    w.writeheader()
    for rec in records:
        w.writerow({k: ("" if v is None else v) for k, v in rec.items()})
    write_bytes(path, buffer.getvalue().encode("utf-8"))  # bytes: the csv module's \r\n stays as written


#: What the report says under each plot (the plots state their axis ranges themselves).
PLOT_CAPTIONS = {
    "scatter": "Compositionality vs zero-shot classification. Error bars: 95 % bootstrap intervals over test items. "
    "Each axis spans every run, its interval and the baseline (dashed lines, where there is one), plus a margin, "
    "and is at least 10 points wide; the axis labels state the range.",
    "bars": "Scores per benchmark and headline column on a fixed 0–100 axis; error bars: 95 % bootstrap intervals.",
    "paired": "Difference of each run to the baseline (solid line at 0) with its paired 95 % bootstrap interval; "
    "filled markers: the interval excludes 0; dotted line: the reference run, where there is one. Axes are "
    "symmetric around 0, at least ±2 points; the axis labels state the range.",
}


def make_plots(report: Report, plot_dir: Path) -> dict[str, Path]:
    """``comp_vs_zs.png`` (spectrum scatter), ``benchmarks.png`` (grouped bars of the runs) and, with a baseline run
    and paired intervals, ``paired.png`` (differences to the baseline)."""
    from fsc_clip.evaluation.plots import Point, bar_plot, scatter_plot

    y_col, x_col = report.role_column("Comp"), report.role_column("ZS")
    if y_col is None and report.headlines:
        y_col = report.headlines[0]
    points, base = [], None
    if x_col and y_col:
        for r in report.rows:
            x, y = r.columns.get(x_col), r.columns.get(y_col)
            if x is not None and y is not None:
                points.append(Point(r.name, x, y, r.published, r.ci.get(x_col), r.ci.get(y_col)))
                base = points[-1] if r.name == report.baseline else base
    scatter = scatter_plot(
        points,
        plot_dir / "comp_vs_zs.png",
        f"zero-shot classification ({x_col or 'ZS'})",
        f"compositionality ({y_col or 'Comp'})",
        f"Compositionality vs zero-shot ({report.profile})",
        base=base,
    )
    cats = [*report.benchmarks, *report.headlines]
    runs = [r for r in report.rows if not r.published] or report.rows
    series = {r.name: [r.columns.get(c) for c in cats] for r in runs}
    intervals = {r.name: [r.ci.get(c) for c in cats] for r in runs}
    title = f"Per-benchmark scores ({report.profile}; error bars: 95 % bootstrap intervals)"
    plots = {"scatter": scatter, "bars": bar_plot(cats, series, plot_dir / "benchmarks.png", title, intervals)}
    paired = _paired_plot(report, plot_dir / "paired.png")
    return {**plots, "paired": paired} if paired else plots


def _paired_plot(report: Report, path: Path) -> Path | None:
    """Every run's difference to the baseline per headline role column (None without any paired interval)."""
    from fsc_clip.evaluation.plots import DiffRow, diff_plot

    columns = [c for c in (report.role_column(r) for r in ROLES) if c] or report.headlines
    rows = []
    for r in report.rows:
        diffs = {}
        for c in columns:
            d, p = report.delta(r, c), r.paired.get(c)
            if d is not None and p:
                diffs[c] = (d, p["ci"])
        if diffs and r.name != report.baseline:
            rows.append(DiffRow(r.name, diffs))
    if not rows or report.baseline is None:
        return None
    reference = report.references[0] if report.references else None
    title = f"Paired differences to {report.baseline} ({report.profile})"
    return diff_plot(rows, columns, path, report.baseline, title, reference)


def render_markdown(report: Report, tables: list[Table], plots: dict[str, Path], out_dir: Path) -> str:
    lines = [f"# fsc-clip evaluation report (profile `{report.profile}`)", "", report.description or "", ""]
    lines += ["## Definitions", "", *(f"- **{col}**: {text}" for col, text in report.definition_lines()), ""]
    for t in tables:
        lines += [f"## {t.title}", "", "| " + " | ".join(t.header) + " |", "|" + "---|" * len(t.header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in t.rows]
        lines += ["", t.note, ""] if t.note else [""]
    lines += ["## Plots", ""]
    for k, p in plots.items():
        lines += [f"![{k}]({p.relative_to(out_dir).as_posix()})", "", PLOT_CAPTIONS.get(k, ""), ""]
    return "\n".join(lines) + "\n"


CSS = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0 4px;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;white-space:nowrap}th{background:#f2f2f2}"
    "td.num{text-align:right}tr.published td{color:#666;font-style:italic}"
    ".note{font-size:12px;color:#555;margin:0 0 18px}img{max-width:100%;border:1px solid #ddd;margin:6px 0}"
    ".tablewrap{overflow-x:auto}dl.defs{display:grid;grid-template-columns:max-content auto;gap:2px 12px;"
    "font-size:13px;margin:4px 0 18px}dl.defs dt{font-weight:600}dl.defs dd{margin:0}"
    "figcaption{font-size:12px;color:#555}"
)
_CODE = re.compile(r"`([^`]+)`")


def inline_html(text: str) -> str:
    """Escape ``text`` for HTML, rendering Markdown inline code (a pair of backticks) as ``<code>``."""
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", html.escape(text)).replace("`", "")


def _definitions_html(report: Report) -> str:
    lines = report.definition_lines()
    items = "".join(f"<dt>{html.escape(col)}</dt><dd>{inline_html(text)}</dd>" for col, text in lines)
    return f'<h2>Definitions</h2><dl class="defs">{items}</dl>' if items else ""


def render_html(report: Report, tables: list[Table], plots: dict[str, Path]) -> str:
    """A self-contained page: inline CSS, tables, the plots embedded as base64 PNG data URIs."""
    esc = html.escape
    pub = {_label(r) for r in report.rows if r.published}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>fsc-clip report ({esc(report.profile)})</title><style>{CSS}</style></head><body>",
        f"<h1>fsc-clip evaluation report (profile <code>{esc(report.profile)}</code>)</h1>",
        f"<p>{inline_html(report.description or '')}</p>",
        _definitions_html(report),
    ]
    for t in tables:
        parts.append(f'<h2>{inline_html(t.title)}</h2><div class="tablewrap"><table>')
        parts.append("<thead><tr>" + "".join(f"<th>{inline_html(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
        for row in t.rows:
            cls = ' class="published"' if row[0] in pub else ""
            cells = "".join((NUM_TD if _NUMERIC.match(c) else "<td>") + f"{inline_html(c)}</td>" for c in row)
            parts.append(f"<tr{cls}>{cells}</tr>")
        parts.append("</tbody></table></div>")
        if t.note:
            parts.append(f'<p class="note">{inline_html(t.note)}</p>')
    parts.append("<h2>Plots</h2>")
    for key, path in plots.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        caption = f"<figcaption>{inline_html(PLOT_CAPTIONS[key])}</figcaption>" if key in PLOT_CAPTIONS else ""
        parts.append(f'<figure><img alt="{esc(key)}" src="data:image/png;base64,{data}">{caption}</figure>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(report: Report, output_dir: str | Path) -> dict[str, Path]:
    """Write the CSVs, Markdown, HTML and plots into ``output_dir``; returns ``{kind: path}``.

    Every file is written atomically (a temporary file renamed over the target): an interrupted or failed write
    (disk full) leaves the previous file intact and raises :class:`~fsc_clip.errors.OutputError` naming it.
    """
    out = ensure_writable_dir(Path(output_dir).expanduser(), "report output folder")
    files = {"summary_csv": out / "summary.csv", "subscores_csv": out / "subscores.csv",
             "markdown": out / "report.md", "html": out / "report.html"}  # fmt: skip
    _write_csv(files["summary_csv"], summary_records(report))
    keys = sorted({k for r in report.rows for k in r.subscores})
    _write_csv(files["subscores_csv"], [{"run": r.name, "source": r.source, **{k: r.subscores.get(k) for k in keys}}
                                        for r in report.rows])  # fmt: skip
    if report.zoo:
        files["published_csv"] = out / "published_comparison.csv"
        _write_csv(files["published_csv"], zoo_records(report))
    plots = make_plots(report, out / "plots")
    tables = report_tables(report)
    write_text(files["markdown"], render_markdown(report, tables, plots, out))
    write_text(files["html"], render_html(report, tables, plots))
    files.update({f"plot_{k}": p for k, p in plots.items()})
    return files
