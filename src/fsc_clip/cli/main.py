"""``fsc-clip`` entry point.

Commands are listed here as (module, help) pairs and imported only when chosen, so ``fsc-clip
--help`` never imports torch or open_clip. A command module provides ``add_arguments(parser)`` and
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from typing import Any

# name -> (module, one-line help). Add a line when a command works; never a placeholder.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("fsc_clip.cli.list_cmd", "List registered models, losses, negative styles, benchmarks, ..."),
    "negatives": ("fsc_clip.cli.negatives", "Precompute hard-negative captions for a caption file (JSONL, resumable)."),
    "eval": ("fsc_clip.cli.eval", "Evaluate a model on compositional / zero-shot / retrieval benchmarks."),
    "train": ("fsc_clip.cli.train", "Fine-tune CLIP: CLIP / NegCLIP / FSC-CLIP losses, full or LoRA, torchrun DDP."),
    "report": ("fsc_clip.cli.report", "Compare evaluated runs: CSV / Markdown / HTML tables, deltas and plots."),
    "wise-ft": ("fsc_clip.cli.wise_ft", "WiSE-FT: interpolate a fine-tuned run with its pre-trained weights."),
    "demo": ("fsc_clip.cli.demo", "Synthetic-world demo, offline: pretrain, fine-tune, evaluate, report."),
    "export": ("fsc_clip.cli.export", "Export a run or zoo model for transformers / open_clip / safetensors users."),
    "reproduce": ("fsc_clip.cli.reproduce", "Evaluate a zoo model and compare it with its published numbers."),
    "fetch": ("fsc_clip.cli.fetch", "Download the weights of model-zoo checkpoints (opt-in; see `list models --zoo`)."),
}


# Commands that run torch models: the thread policy below applies to them (list / report never import torch).
TORCH_COMMANDS = frozenset({"eval", "train", "wise-ft", "demo", "negatives", "export", "reproduce"})
# A file-system error with one of these codes is the user's to fix (read-only, permissions, disk full, quota):
# a one-line message naming the path instead of a traceback.
_FS_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT})


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default, except ``None``, empty values and flags (their default is off)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "%(default)" in text or not shows_default(action):
            return text
        return f"{text} (default: %(default)s)"


def shows_default(action: argparse.Action) -> bool:
    """Whether ``--help`` prints the default of ``action`` (the rule the CLI tests check for every command)."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or action.nargs == 0:
        return False
    return not (isinstance(default, (list, tuple, str)) and not default)


def build_parser() -> argparse.ArgumentParser:
    """Top-level parser with one sub-parser per command (populated lazily on use)."""
    from fsc_clip import __version__

    parser = argparse.ArgumentParser(
        prog="fsc-clip",
        description="Fine-tune and evaluate CLIP models for compositional understanding (FSC-CLIP).",
        epilog="Run `fsc-clip COMMAND --help` for a command's options. FSC_CLIP_DEBUG=1 shows full tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"fsc-clip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def build_command_parser(name: str) -> tuple[Any, argparse.ArgumentParser]:
    """The command's module and its full argument parser."""
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"fsc-clip {name}", description=COMMANDS[name][1],
                                         formatter_class=HelpFormatter)  # fmt: skip
    module.add_arguments(cmd_parser)
    return module, cmd_parser


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
    module, cmd_parser = build_command_parser(name)
    args = cmd_parser.parse_args(rest)
    if name in TORCH_COMMANDS:
        configure_threads()
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fsc-clip list models | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except Exception as err:  # user-facing errors: short message, no traceback unless asked
        message = _user_message(err)
        if message is None or _debug():
            raise
        print(f"fsc-clip {name}: error: {message}", file=sys.stderr)
        return 2


def _user_message(err: Exception) -> str | None:
    """The one-line message of an error the user can fix, or ``None`` for a bug (shown with its traceback)."""
    from fsc_clip.errors import UserError

    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, OSError) and err.errno in _FS_ERRNOS:
        from fsc_clip.fileio import output_error

        path = err.filename if err.filename is not None else "a file (run with FSC_CLIP_DEBUG=1 to see which)"
        return str(output_error(path, err, "access"))
    return None


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity, e.g. a container or ``taskset`` limit)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def suggested_threads(cores: int, load: float) -> int | None:
    """Torch intra-op threads for a busy machine, or ``None`` to keep torch's default (all cores).

    Rule: with ``cores`` usable cores and a 1-minute load average ``load``, the free cores are ``cores - load``;
    when fewer than ``cores - 0.5`` are free, use ``round(cores - load)`` threads, at least 1. Measured on 2 shared
    cores at load 2.8, a tiny training step (fsc-demo, batch 64) took 242 ms with 1 thread and 691 ms with 2:
    threads that wait for a busy core spin, so on an oversubscribed machine fewer threads are faster.
    """
    free = cores - load
    if free >= cores - 0.5:
        return None
    return max(1, min(cores, int(free + 0.5)))


def configure_threads() -> None:
    """Use fewer torch threads on a busy machine; an explicit ``OMP_NUM_THREADS`` always wins. Logged once."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return
    cores = usable_cores()
    threads = suggested_threads(cores, load)
    if threads is None:
        return
    # Set before torch is imported, this sizes its intra-op pool (and that of DataLoader / negatives workers).
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    logging.getLogger("fsc_clip.cli").info(
        "fsc-clip: the machine is busy (load %.1f on %d cores): using %d torch thread(s); set OMP_NUM_THREADS to "
        "choose.", load, cores, threads,
    )  # fmt: skip


def _setup_logging() -> None:
    """Our messages at INFO; other libraries (open_clip logs to the root logger) only from WARNING up."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("fsc_clip").setLevel(logging.INFO)


def _debug() -> bool:
    return os.environ.get("FSC_CLIP_DEBUG", "") not in ("", "0")


if __name__ == "__main__":
    sys.exit(main())
