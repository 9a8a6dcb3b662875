"""``fsc-clip negatives``: precompute hard-negative candidates for a caption file into JSONL (resumable)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fsc_clip.negatives.precompute import CAPTION_COLUMNS
    from fsc_clip.negatives.window import DEFAULT_CONTEXT_LENGTH

    parser.add_argument(
        "--input",
        required=True,
        help="caption file: .tsv, .csv, .jsonl or anything else = one caption per line (required)",
    )
    parser.add_argument(
        "--caption-column",
        default=None,
        help="caption column/field of a TSV/CSV/JSONL file (default: detected, the first present of "
        f"{', '.join(CAPTION_COLUMNS)}; 'title' is what the COCO train_neg_clip.tsv and our own TSVs use)",
    )
    parser.add_argument(
        "--style",
        default="fsc-clip",
        help="negative style or comma-separated types, see `fsc-clip list negatives` (default: %(default)s)",
    )
    parser.add_argument(
        "--per-type", type=int, default=4, help="candidates kept per caption and type (default: %(default)s)"
    )
    parser.add_argument(
        "--output",
        required=True,
        help="output .jsonl, written atomically at the end; an unfinished run keeps its work in OUTPUT.partial and "
        "a re-run resumes it (captions already in the output are skipped) (required)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed; with the caption text it fixes the candidates (default: %(default)s)"
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=256,
        help="captions per work unit and per append to OUTPUT.partial (default: %(default)s)",
    )
    parser.add_argument(
        "--context-length",
        type=int,
        default=DEFAULT_CONTEXT_LENGTH,
        help="text-encoder context in CLIP tokens: edits are made within it, and a negative that would differ "
        "only beyond it is dropped; 0 = unlimited (default: %(default)s, CLIP)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (default: shown)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUTPUT made with other settings (default: resume it; refused if settings differ)",
    )


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
        context_length=args.context_length or None,
        overwrite=args.overwrite,
    )
    stats = precompute(cfg)
    print(f"{stats['written']} captions written, {stats['skipped']} already done -> {cfg.output}")
    return 0
