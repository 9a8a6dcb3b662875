"""``fsc-clip reproduce MODEL --data-root DIR``: evaluate a zoo model on every benchmark present and print ours
vs its published numbers per column, flagging any column off by more than 0.5 pt.

    fsc-clip fetch fsc-clip-coco-vit-b-32
    fsc-clip reproduce fsc-clip-coco-vit-b-32 --data-root data --output results/repro-fsc-coco
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="zoo model name (see `fsc-clip list models --zoo`)")
    parser.add_argument("--data-root", required=True, help="benchmark data folder (see `fsc-clip list benchmarks`)")
    parser.add_argument("--output", help="results folder (default: results/reproduce-<MODEL>)")
    parser.add_argument("--pretrained", help="the weights file, if not in the cache (see `fsc-clip fetch`)")
    parser.add_argument("--benchmarks", default="all", help="benchmarks or groups to run (missing data is skipped)")
    parser.add_argument("--batch-size", type=int, default=64, help="evaluation batch size")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--download", action="store_true", help="download the weights first (as `fsc-clip fetch`)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fsc_clip.errors import DataNotFoundError
    from fsc_clip.evaluation.runner import evaluate, summarize, write_summary
    from fsc_clip.fileio import ensure_writable_dir, write_json
    from fsc_clip.models import load_model
    from fsc_clip.models.zoo import get_entry
    from fsc_clip.models.zoo.reproduce import compare, format_lines, ours_from_summary
    from fsc_clip.training.distributed import resolve_device

    entry = get_entry(args.model)
    if not Path(args.data_root).expanduser().is_dir():
        raise DataNotFoundError(f"--data-root {args.data_root} is not a folder; see `fsc-clip list benchmarks`.")
    out_dir = Path(args.output or f"results/reproduce-{entry.name}")
    ensure_writable_dir(out_dir, "--output folder")
    device = str(resolve_device(args.device, 0))
    if args.download and not args.pretrained:
        from fsc_clip.models.zoo.download import fetch_entry

        fetch_entry(entry)
    lm = load_model(entry.name, args.pretrained, device=device)
    words = [w.strip() for w in args.benchmarks.split(",") if w.strip()]
    results = evaluate(lm, words, args.data_root, out_dir, batch_size=args.batch_size, device=device, skip_missing=True)
    if not results:
        raise DataNotFoundError(f"no benchmark data found under {args.data_root}; see `fsc-clip list benchmarks`.")
    summary = summarize(results)
    write_summary(summary, out_dir, lm.spec.label)
    diffs = compare(entry, ours_from_summary(summary))
    write_json(out_dir / "reproduce.json", [{**d.__dict__, "diff": d.diff, "flagged": d.flagged} for d in diffs])
    print("\n".join(format_lines(entry, diffs)))
    return 0
