"""``fsc-clip negatives``: precompute hard-negative candidates for a caption file into JSONL (resumable)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="caption file: .tsv, .csv, .jsonl or .txt (one per line)")
    parser.add_argument("--caption-column", default="caption", help="caption column/field (TSV/CSV/JSONL)")
    parser.add_argument("--style", default="fsc-clip", help="negative style (`fsc-clip list negatives`)")
    parser.add_argument("--per-type", type=int, default=4, help="candidates kept per caption and type")
    parser.add_argument("--output", required=True, help="output .jsonl (re-running skips captions already in it)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help="seed (with the caption text, fixes the candidates)")
    parser.add_argument("--chunk-size", type=int, default=256, help="captions per work unit / atomic append")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from fsc_clip.negatives.precompute import PrecomputeConfig, precompute

    cfg = PrecomputeConfig(
        input=args.input,
        output=args.output,
        caption_column=args.caption_column,
        style=args.style,
        per_type=args.per_type,
        seed=args.seed,
        workers=args.workers,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
    )
    stats = precompute(cfg)
    print(f"{stats['written']} captions written, {stats['skipped']} already done -> {cfg.output}")
    return 0
