"""``fsc-clip eval``: evaluate a model on benchmarks; one JSON per benchmark plus a summary.

Examples::

    fsc-clip eval --model ViT-B-32 --pretrained openai --benchmarks compositional --data-root data --output res/b32
    fsc-clip eval --checkpoint runs/fsc-clip --benchmarks sugarcrepe,winoground --data-root data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("model")
    src.add_argument("--model", help="open_clip architecture (ViT-B-32, fsc-tiny, hf-hub:org/repo)")
    src.add_argument("--pretrained", help="open_clip tag, weights file, or our run checkpoint (default: random init)")
    src.add_argument("--checkpoint", help="a training run dir (or its .pt): evaluates checkpoints/latest.pt")
    src.add_argument("--force-quick-gelu", action="store_true", default=None, help="force QuickGELU activations")
    parser.add_argument(
        "--benchmarks",
        default="compositional",
        help="comma-separated names, or a group: all | compositional | zeroshot | retrieval | synthetic",
    )
    parser.add_argument("--data-root", required=True, help="folder with one sub-folder per benchmark")
    parser.add_argument("--output", help="result folder (default: <checkpoint run dir>/eval)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for image decoding")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", help="fp32 | fp16 | bf16 | amp ...")
    parser.add_argument("--overwrite", action="store_true", help="recompute results that already exist")
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip benchmarks whose data is missing (default for group words like 'all'; errors for explicit names)",
    )
    parser.add_argument("--aro-seed", type=int, default=1, help="seed of ARO's Order perturbations (ARO uses 1)")
    parser.add_argument("--profiles", default="fsc,vl_compo", help="aggregation profiles shown in the summary")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _output_dir(args: argparse.Namespace) -> Path:
    from fsc_clip.config import ConfigError

    if args.output:
        return Path(args.output)
    if args.checkpoint:
        ckpt = Path(args.checkpoint)
        return (ckpt if ckpt.is_dir() else ckpt.parent.parent) / "eval"
    raise ConfigError("--output is required unless --checkpoint RUN_DIR is given.")


def run(args: argparse.Namespace) -> int:
    from fsc_clip.config import ConfigError
    from fsc_clip.evaluation.aggregate import get_profile
    from fsc_clip.evaluation.runner import GROUP_WORDS, evaluate, resolve_benchmarks, summarize, write_summary
    from fsc_clip.models import load_model
    from fsc_clip.registry import UnknownNameError

    if args.checkpoint and args.pretrained:
        raise ConfigError("Use either --checkpoint RUN_DIR or --pretrained, not both.")
    if not args.checkpoint and not args.model:
        raise ConfigError("--model is required (or --checkpoint RUN_DIR).")
    out_dir = _output_dir(args)
    words = [w.strip() for w in args.benchmarks.split(",") if w.strip()]
    try:
        resolve_benchmarks(words)  # fail fast on a typo, before loading the model
    except UnknownNameError as err:
        raise ConfigError(f"--benchmarks: {err}") from None
    lm = load_model(
        args.model,
        args.checkpoint or args.pretrained,
        device=args.device,
        precision=args.precision,
        force_quick_gelu=args.force_quick_gelu,
    )
    skip_missing = args.skip_missing or any(w in GROUP_WORDS for w in words)
    results = evaluate(
        lm,
        words,
        args.data_root,
        out_dir,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        overwrite=args.overwrite,
        skip_missing=skip_missing,
        options={"aro": {"seed": args.aro_seed}},
        progress=not args.no_progress,
    )
    if not results:
        print(f"fsc-clip eval: no benchmark data found under {args.data_root}; see `fsc-clip list benchmarks`.",
              file=sys.stderr)  # fmt: skip
        return 2
    summary = summarize(results, [p.strip() for p in args.profiles.split(",") if p.strip()])
    paths = write_summary(summary, out_dir, lm.spec.label)
    print(f"\n{lm.spec.label}")
    width = max(len(n) for n in summary["benchmarks"])
    for name, score in summary["benchmarks"].items():
        print(f"  {name:<{width}} {score:7.2f}")
    for prof, cols in summary["profiles"].items():
        head = [h.name for h in get_profile(prof).headlines]
        shown = ", ".join(f"{h}={'-' if cols[h] is None else f'{cols[h]:.2f}'}" for h in head)
        print(f"  profile {prof}: {shown}")
    print(f"Results: {out_dir}/<benchmark>.json; summary: {paths[1]}")
    return 0
