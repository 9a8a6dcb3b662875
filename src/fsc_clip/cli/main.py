"""``fsc-clip`` entry point.

Commands are listed here as (module, help) pairs and imported only when chosen, so ``fsc-clip
--help`` never imports torch or open_clip. A command module provides ``add_arguments(parser)`` and
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Add a line when a command works; never a placeholder.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("fsc_clip.cli.list_cmd", "List registered models, losses, negative styles, benchmarks, ..."),
    "negatives": ("fsc_clip.cli.negatives", "Precompute hard-negative captions for a caption file (JSONL, resumable)."),
    "eval": ("fsc_clip.cli.eval", "Evaluate a model on compositional / zero-shot / retrieval benchmarks."),
    "train": ("fsc_clip.cli.train", "Fine-tune CLIP: CLIP / NegCLIP / FSC-CLIP losses, full or LoRA, torchrun DDP."),
    "report": ("fsc_clip.cli.report", "Compare evaluated runs: CSV / Markdown / HTML tables, deltas and plots."),
    "wise-ft": ("fsc_clip.cli.wise_ft", "WiSE-FT: interpolate a fine-tuned run with its pre-trained weights."),
    "demo": ("fsc_clip.cli.demo", "Synthetic-world demo, offline: pretrain, fine-tune, evaluate, report."),
}


def build_parser() -> argparse.ArgumentParser:
    """Top-level parser with one sub-parser per command (populated lazily on use)."""
    from fsc_clip import __version__

    parser = argparse.ArgumentParser(
        prog="fsc-clip",
        description="Fine-tune and evaluate CLIP models for compositional understanding (FSC-CLIP).",
    )
    parser.add_argument("--version", action="version", version=f"fsc-clip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)  # prints help / error / version and exits where needed
        parser.print_help()
        return 0 if args.command is None and not argv else 2
    name, rest = argv[0], argv[1:]
    _setup_logging()
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"fsc-clip {name}", description=COMMANDS[name][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as err:  # user-facing errors: short message, no traceback unless asked
        from fsc_clip.errors import UserError

        if isinstance(err, UserError) and not _debug():
            print(f"fsc-clip {name}: error: {err}", file=sys.stderr)
            return 2
        raise


def _setup_logging() -> None:
    """Our messages at INFO; other libraries (open_clip logs to the root logger) only from WARNING up."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("fsc_clip").setLevel(logging.INFO)


def _debug() -> bool:
    import os

    return os.environ.get("FSC_CLIP_DEBUG", "") not in ("", "0")


if __name__ == "__main__":
    sys.exit(main())
