"""``fsc-clip list WHAT``: show what is registered (models, losses, negative styles, benchmarks, ...)."""

from __future__ import annotations

import argparse
import importlib

# what -> "module:function" returning a list of lines; each area adds its own entry.
LISTERS: dict[str, str] = {
    "models": "fsc_clip.models.factory:list_model_lines",
    "losses": "fsc_clip.losses.factory:list_loss_lines",
    "negatives": "fsc_clip.negatives:list_style_lines",
    "benchmarks": "fsc_clip.evaluation.benchmarks:list_benchmark_lines",
    "sources": "fsc_clip.data.sources:list_source_lines",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=sorted(LISTERS), help="what to list")
    parser.add_argument("--zoo", action="store_true", help="with `models`: the published checkpoints of the model zoo")


def run(args: argparse.Namespace) -> int:
    spec = "fsc_clip.models.zoo:list_zoo_lines" if args.what == "models" and getattr(args, "zoo", False) else ""
    module_name, func_name = (spec or LISTERS[args.what]).split(":")
    lines = getattr(importlib.import_module(module_name), func_name)()
    print("\n".join(lines))
    return 0
