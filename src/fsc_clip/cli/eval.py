"""``fsc-clip eval``: evaluate a model on benchmarks; one JSON per benchmark plus a summary.

Examples::

    fsc-clip eval --model ViT-B-32 --pretrained openai --benchmarks compositional --data-root data --output res/b32
    fsc-clip eval --checkpoint runs/fsc-clip --benchmarks sugarcrepe,winoground --data-root data
    fsc-clip eval --model fsc-tiny --random-init --benchmarks winoground --data-root data --output res/random
    fsc-clip eval --blind bow --benchmarks compositional --data-root data --output res/blind-bow
    fsc-clip eval --model clove --download --benchmarks compositional --data-root data --output res/clove
    torchrun --nproc_per_node 4 -m fsc_clip.cli eval --model ViT-B-32 --pretrained openai --benchmarks all \
        --data-root data --output res/b32 --cache-dir ~/.cache/fsc-clip/embeddings
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
        "--download", action="store_true",
        help="zoo models: download the weights first if they are not on this machine (as `fsc-clip fetch MODEL`; "
        "without this flag nothing is downloaded)",
    )  # fmt: skip
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
    parser.add_argument(
        "--cache-dir",
        help="keep the embeddings on disk there (keyed by weights fingerprint + image/text content), so another eval "
        "of the same weights encodes nothing twice",
    )
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


def _check_zoo_weights(args: argparse.Namespace) -> None:
    """Without ``--download``, a zoo model whose file is not here fails now (naming the file to place), not later.

    Raises:
        ConfigError: ``--download`` for something that is not a zoo model.
        ModelLoadError: the weights are missing (the message names the file, where to put it, how to fetch it).
    """
    from fsc_clip.config import ConfigError
    from fsc_clip.errors import ModelLoadError
    from fsc_clip.models.zoo import find_cached_file, get_entry, is_zoo_name, missing_file_error

    if not is_zoo_name(args.model):
        if args.download:
            what = f"--model {args.model}" if args.model else "--blind" if args.blind else "--checkpoint"
            raise ConfigError(f"--download fetches zoo models only (see `fsc-clip list models --zoo`), not {what}.")
        return
    entry = get_entry(args.model)
    # open_clip_hub entries are resolved by open_clip's Hub loader (offline-aware); --pretrained gives the file
    if args.download or args.pretrained or entry.format == "open_clip_hub" or find_cached_file(entry) is not None:
        return
    err = missing_file_error(entry)
    if entry.manual_only:
        raise err
    raise ModelLoadError(f"{err}\n  Or add --download to this command.")


def _fetch_zoo_weights(args: argparse.Namespace) -> Path | None:
    """``--download``: fetch a zoo model's weights through the code of ``fsc-clip fetch`` (no-op when present).

    Raises:
        ModelLoadError: a Google-Drive-only file (the message is the manual step) or a failed download.
    """
    if not args.download or args.pretrained:
        return None
    from fsc_clip.models.zoo import get_entry
    from fsc_clip.models.zoo.download import fetch_entry

    return fetch_entry(get_entry(args.model))


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
    from fsc_clip.evaluation.runner import resolve_benchmarks
    from fsc_clip.fileio import ensure_writable_dir
    from fsc_clip.registry import UnknownNameError
    from fsc_clip.training.distributed import cleanup_distributed, init_distributed

    _check_model_args(args)
    _check_zoo_weights(args)
    out_dir = _output_dir(args)
    words = [w.strip() for w in args.benchmarks.split(",") if w.strip()]
    try:
        resolve_benchmarks(words)  # fail fast on a typo, before loading the model
    except UnknownNameError as err:
        raise ConfigError(f"--benchmarks: {err}") from None
    if not Path(args.data_root).expanduser().is_dir():
        raise DataNotFoundError(f"--data-root {args.data_root} is not a folder; see `fsc-clip list benchmarks`.")
    ensure_writable_dir(out_dir, "--output folder")  # before the model loads (tens of seconds for large ones)
    dist = init_distributed(args.device)  # torchrun: one process per device, encoding sharded across them
    try:
        return _run(args, words, out_dir, dist)
    finally:
        cleanup_distributed()


def _run(args: argparse.Namespace, words: list[str], out_dir: Path, dist: Any) -> int:
    from fsc_clip.evaluation.aggregate import get_profile
    from fsc_clip.evaluation.runner import GROUP_WORDS, evaluate, summarize, write_summary
    from fsc_clip.training.distributed import main_rank_first

    device = str(dist.device)
    with main_rank_first(dist):  # --download: rank 0 fetches into the shared cache, then the other ranks find it
        fetched = _fetch_zoo_weights(args)
    if fetched is not None and dist.is_main:
        print(f"{args.model}: weights at {fetched}", file=sys.stderr)
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
        dist=dist,
        cache_dir=args.cache_dir,
    )
    if not dist.is_main:
        return 0  # rank 0 writes the summary and prints
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
