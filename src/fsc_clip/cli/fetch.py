"""``fsc-clip fetch MODEL [MODEL ...]``: download zoo weights on request (nothing else ever downloads them).

fsc-clip fetch fsc-clip-coco-vit-b-32       # Hugging Face Hub -> Hugging Face cache
fsc-clip fetch clove                        # HTTPS, resumable, sha256-checked -> $FSC_CLIP_CACHE_DIR/zoo/clove/
fsc-clip fetch negclip                      # Google Drive only: prints the manual step
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models", nargs="+", metavar="MODEL", help="zoo model name(s); see `fsc-clip list models --zoo`"
    )
    parser.add_argument("--cache-dir", help="Hugging Face cache folder override (default: HF_HOME / HF_HUB_CACHE)")


def run(args: argparse.Namespace) -> int:
    from fsc_clip.errors import ModelLoadError
    from fsc_clip.models.zoo import get_entry
    from fsc_clip.models.zoo.download import fetch_entry

    entries = [get_entry(name) for name in args.models]  # every name checked before any download
    failed = 0
    for entry in entries:
        try:
            path = fetch_entry(entry, args.cache_dir)
        except ModelLoadError as err:
            print(f"{entry.name}: {err}")
            failed += 1
            continue
        print(f"{entry.name}: {path}")
    return 1 if failed else 0
