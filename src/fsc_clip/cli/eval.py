"""``fsc-clip eval``: evaluate a model on benchmarks; one JSON per benchmark plus a summary.

Examples::

    fsc-clip eval --model ViT-B-32 --pretrained openai --benchmarks compositional --data-root data --output res/b32
    fsc-clip eval --checkpoint runs/fsc-clip --benchmarks sugarcrepe,winoground --data-root data
    fsc-clip eval --model fsc-tiny --random-init --benchmarks winoground --data-root data --output res/random
    fsc-clip eval --blind bow --benchmarks compositional --data-root data --output res/blind-bow
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("model: --model ARCH with --pretrained TAG|FILE or --random-init; or --checkpoint")
    src.add_argument(
        "--model", help="open_clip architecture (ViT-B-32, fsc-tiny, hf-hub:org/repo) or zoo model (negclip, clove)"
    )
    src.add_argument("--pretrained", help="open_clip tag (e.g. openai), a weights file, or one of our run checkpoints")
    src.add_argument("--checkpoint", help="a training run folder (or its .pt): evaluates checkpoints/latest.pt")
    src.add_argument(
        "--random-init",
        action="store_true",
        help="evaluate --model with random weights (a baseline or a smoke test); required when no weights are given",
    )
    src.add_argument("--seed", type=int, default=0, help="torch seed of the --random-init weights")
    src.add_argument("--force-quick-gelu", action="store_true", default=None, help="force QuickGELU activations")
    src.add_argument(
        "--blind", metavar="SCORER",
        help="instead of a model, a text-only baseline that ranks the captions without the image: bow (bag of "
        "words, order-invariant) | bigram | module:function (your callable: list of str -> list of float)",
    )  # fmt: skip
    parser.add_argument(
        "--benchmarks",
        default="compositional",
        help="comma-separated names, or a group: all | compositional | compositional_2025 | zeroshot | retrieval | "
        "synthetic",
    )
    parser.add_argument("--data-root", required=True, help="folder with one sub-folder per benchmark")
    parser.add_argument("--output", help="result folder (default: <checkpoint run folder>/eval)")
    parser.add_argument("--batch-size", type=int, default=64, help="images / texts per forward pass")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for image decoding")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available, else CPU) | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="fp32", help="fp32 | fp16 | bf16 | amp ...")
    parser.add_argument(
        "--overwrite", action="store_true", help="recompute results that exist (else verified ones are reused)"
    )
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip benchmarks whose data is missing (default for group words like 'all'; errors for explicit names)",
    )
    parser.add_argument("--aro-seed", type=int, default=1, help="seed of ARO's Order perturbations (ARO uses 1)")
    parser.add_argument(
        "--crepe-files", choices=("complexity", "all"), default="complexity",
        help="CREPE CSVs read: the per-complexity files 4-12 (official evaluation) or the `_all` files",
    )  # fmt: skip
    parser.add_argument("--profiles", default="fsc,vl_compo", help="aggregation profiles shown in the summary")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--save-scores", action="store_true",
        help="also write every item's outcomes and candidate scores to <benchmark>.scores.npz (paired comparisons "
        "in `fsc-clip report --baseline` need them)",
    )  # fmt: skip


def _output_dir(args: argparse.Namespace) -> Path:
    from fsc_clip.config import ConfigError

    if args.output:
        return Path(args.output)
    if args.checkpoint:
        ckpt = Path(args.checkpoint)
        return (ckpt if ckpt.is_dir() else ckpt.parent.parent) / "eval"
    raise ConfigError("--output is required unless --checkpoint RUN_DIR is given.")


def _check_model_args(args: argparse.Namespace) -> None:
    """Exactly one source of weights; random weights only when asked for (they give chance-level scores)."""
    from fsc_clip.config import ConfigError

    if args.blind:
        flags = {"--model": args.model, "--pretrained": args.pretrained, "--checkpoint": args.checkpoint,
                 "--random-init": args.random_init}  # fmt: skip
        given = [f for f, v in flags.items() if v]
        if given:
            raise ConfigError(f"--blind evaluates a text-only scorer, not a model: drop {', '.join(given)}.")
        return
    if args.checkpoint and args.pretrained:
        raise ConfigError("Use either --checkpoint RUN_DIR or --pretrained, not both.")
    if not args.checkpoint and not args.model:
        raise ConfigError("--model is required (or --checkpoint RUN_DIR).")
    if args.random_init and (args.checkpoint or args.pretrained):
        raise ConfigError("--random-init evaluates random weights: drop it, or drop --pretrained / --checkpoint.")
    from fsc_clip.models.zoo import is_zoo_name

    # a Hub model or a zoo model (negclip, clove, ...) comes with its weights
    hub = (args.model or "").startswith("hf-hub:") or is_zoo_name(args.model)
    if not (args.checkpoint or args.pretrained or args.random_init or hub):
        raise ConfigError(
            f"no weights given for --model {args.model}: pass --pretrained TAG (e.g. openai; see `fsc-clip list "
            "models`), --pretrained FILE or --checkpoint RUN_DIR, or --random-init to evaluate random weights."
        )


def _load(args: argparse.Namespace, device: str) -> tuple[Any, Any]:
    """``(loaded model, None)``, or ``(None, BlindModel)`` for ``--blind`` (the runner's text-only embedder)."""
    from fsc_clip.config import ConfigError
    from fsc_clip.registry import UnknownNameError

    if args.blind:
        from fsc_clip.evaluation.blind import BlindModel

        try:
            return None, BlindModel(args.blind)
        except UnknownNameError as err:
            raise ConfigError(f"--blind: {err} Or give module:function.") from None
    from fsc_clip.models import load_model

    if args.random_init:
        import torch

        torch.manual_seed(args.seed)
    lm = load_model(
        args.model,
        args.checkpoint or args.pretrained,
        device=device,
        precision=args.precision,
        force_quick_gelu=args.force_quick_gelu,
    )
    return lm, None


def run(args: argparse.Namespace) -> int:
    from fsc_clip.config import ConfigError
    from fsc_clip.errors import DataNotFoundError
    from fsc_clip.evaluation.aggregate import get_profile
    from fsc_clip.evaluation.runner import GROUP_WORDS, evaluate, resolve_benchmarks, summarize, write_summary
    from fsc_clip.fileio import ensure_writable_dir
    from fsc_clip.registry import UnknownNameError
    from fsc_clip.training.distributed import resolve_device

    _check_model_args(args)
    out_dir = _output_dir(args)
    words = [w.strip() for w in args.benchmarks.split(",") if w.strip()]
    try:
        resolve_benchmarks(words)  # fail fast on a typo, before loading the model
    except UnknownNameError as err:
        raise ConfigError(f"--benchmarks: {err}") from None
    if not Path(args.data_root).expanduser().is_dir():
        raise DataNotFoundError(f"--data-root {args.data_root} is not a folder; see `fsc-clip list benchmarks`.")
    ensure_writable_dir(out_dir, "--output folder")  # before the model loads (tens of seconds for large ones)
    device = str(resolve_device(args.device, 0))
    lm, embedder = _load(args, device)
    skip_missing = args.skip_missing or any(w in GROUP_WORDS for w in words)
    results = evaluate(
        lm,
        words,
        args.data_root,
        out_dir,
        batch_size=args.batch_size,
        device=device,
        workers=args.workers,
        overwrite=args.overwrite,
        skip_missing=skip_missing,
        options={"aro": {"seed": args.aro_seed}, "crepe": {"files": args.crepe_files}},
        progress=not args.no_progress,
        save_scores=args.save_scores,
        embedder=embedder,
    )
    if not results:
        print(f"fsc-clip eval: no benchmark data found under {args.data_root}; see `fsc-clip list benchmarks`.",
              file=sys.stderr)  # fmt: skip
        return 2
    summary = summarize(results, [p.strip() for p in args.profiles.split(",") if p.strip()])
    label = lm.spec.label if lm is not None else embedder.model_info()["label"]
    paths = write_summary(summary, out_dir, label)
    print(f"\n{label}")
    width = max(len(n) for n in summary["benchmarks"])
    for name, score in summary["benchmarks"].items():
        print(f"  {name:<{width}} {'      -' if score is None else f'{score:7.2f}'}")  # None: a part is missing
    for prof, cols in summary["profiles"].items():
        head = [h.name for h in get_profile(prof).headlines]
        shown = ", ".join(f"{h}={'-' if cols[h] is None else f'{cols[h]:.2f}'}" for h in head)
        print(f"  profile {prof}: {shown}")
    print(f"Results: {out_dir}/<benchmark>.json; summary: {paths[1]}")
    return 0
