"""``fsc-clip report``: compare evaluated runs (result folders of ``fsc-clip eval``) in CSV / Markdown / HTML + plots.

Example::

    fsc-clip report results/clip-b32 results/fsc-coco --profile fsc --baseline clip-b32 --published --output report/
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("result_dirs", nargs="+", metavar="RESULT_DIR", help="folders of result JSONs, one per run")
    parser.add_argument("--profile", default="fsc", help="aggregation profile: fsc | vl_compo | frontier | synthetic")
    parser.add_argument("--output", required=True, help="folder for summary.csv, report.md, report.html, plots/")
    parser.add_argument(
        "--baseline", help="row the deltas refer to: a run folder's name (exactly) or a published row's name"
    )
    parser.add_argument(
        "--published", action="store_true",
        help="add the published reference rows of the profile, and set each run of a zoo model (eval --model "
        "negclip) beside its own published row(s) with the difference per column (published_comparison.csv)",
    )  # fmt: skip
    parser.add_argument(
        "--strict", action="store_true", help="a corrupt or malformed result JSON is an error (default: a warning)"
    )


def run(args: argparse.Namespace) -> int:
    from fsc_clip.errors import UserError
    from fsc_clip.evaluation.aggregate import get_profile
    from fsc_clip.evaluation.report import build_report, write_report
    from fsc_clip.fileio import ensure_writable_dir
    from fsc_clip.registry import UnknownNameError

    try:
        get_profile(args.profile)
    except UnknownNameError as err:
        raise UserError(f"--profile: {err}") from err
    ensure_writable_dir(args.output, "--output folder")  # before reading and plotting anything
    report = build_report(
        args.result_dirs, profile=args.profile, baseline=args.baseline, published=args.published, strict=args.strict
    )
    files = write_report(report, args.output)
    width = max(len(r.name) for r in report.rows)
    heads = report.headlines
    print(f"{'run':<{width}}  " + "  ".join(f"{h:>8}" for h in heads))
    for r in report.rows:
        vals = "  ".join(f"{'-' if r.columns.get(h) is None else format(r.columns[h], '.2f'):>8}" for h in heads)
        print(f"{r.name:<{width}}  {vals}{'  (published)' if r.published else ''}")
    print(f"wrote {files['html']} (+ report.md, summary.csv, subscores.csv, plots/)")
    if "published_csv" in files:  # --published with runs of zoo models: ours vs their published rows
        print(f"zoo models vs their published rows: {files['published_csv']} (and tables in report.md / .html)")
    n_problems = sum(len(r.problems) for r in report.rows)
    if n_problems:
        print(f"fsc-clip report: {n_problems} warning(s) about result files above; --strict makes them errors.",
              file=sys.stderr)  # fmt: skip
    return 0
