"""``fsc-clip export SOURCE --format transformers|open_clip|safetensors --output DIR``.

SOURCE is a training run (folder or checkpoint file; LoRA adapters are merged) or a zoo model name. The export
loads unchanged in open_clip (``create_model_and_transforms("local-dir:DIR")``, or ``hf-hub:`` once uploaded) or
in transformers (``CLIPModel.from_pretrained(DIR)``); it is loaded back and checked before the command succeeds.

    fsc-clip export runs/fsc-coco --format transformers --output export/fsc-coco-hf
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN", help="a training run folder or checkpoint, or a zoo model name")
    parser.add_argument(
        "--format", required=True, choices=["open_clip", "safetensors", "transformers"], help="what to write"
    )
    parser.add_argument("--output", required=True, help="folder to write (created; existing files are replaced)")
    parser.add_argument("--no-verify", action="store_true", help="skip loading the export back to compare embeddings")


def run(args: argparse.Namespace) -> int:
    from fsc_clip.models import load_model
    from fsc_clip.models.zoo import is_zoo_name
    from fsc_clip.models.zoo.export import export_model

    lm = load_model(args.source) if is_zoo_name(args.source) else load_model(None, args.source)
    files = export_model(lm, args.output, args.format, verify=not args.no_verify)
    for path in files:
        print(path)
    if not args.no_verify:
        print(f"verified: the {args.format} export reproduces {lm.spec.label}")
    return 0
