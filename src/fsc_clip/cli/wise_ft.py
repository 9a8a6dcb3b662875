"""``fsc-clip wise-ft``: interpolate a fine-tuned model with its pre-trained starting point (WiSE-FT)."""

from __future__ import annotations

import argparse

from fsc_clip.config import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--finetuned", required=True, help="fine-tuned run dir or checkpoint (.pt) (required, no default)"
    )
    parser.add_argument(
        "--pretrained",
        default=None,
        help="open_clip tag or weights file of the starting point (default: the one the run recorded; "
        "not needed for LoRA runs)",
    )
    parser.add_argument("--model", default=None, help="architecture (default: the one the run recorded)")
    parser.add_argument(
        "--alpha",
        required=True,
        help="mixing weight(s): 0 = pre-trained, 1 = fine-tuned; e.g. 0.5 or 0.2,0.5,0.8 (required, no default)",
    )
    parser.add_argument(
        "--output",
        required=True,
        help="output .pt, written atomically; with several alphas it must contain {alpha} (required, no default)",
    )


def _alphas(text: str) -> list[float]:
    try:
        alphas = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise ConfigError(f"--alpha {text!r}: expected numbers like 0.5 or 0.2,0.5,0.8") from None
    if not alphas:
        raise ConfigError("--alpha: give at least one value")
    return alphas


def run(args: argparse.Namespace) -> int:
    from fsc_clip.models.wise_ft import wise_ft

    alphas = _alphas(args.alpha)
    if len(alphas) > 1 and "{alpha}" not in args.output:
        raise ConfigError("--output must contain {alpha} when several alphas are given, e.g. wise_{alpha}.pt")
    outputs = [args.output.replace("{alpha}", f"{a:g}") for a in alphas]
    for alpha, path in zip(alphas, wise_ft(args.finetuned, alphas, outputs, args.pretrained, args.model)):
        print(f"alpha={alpha:g}: wrote {path}")
    return 0
