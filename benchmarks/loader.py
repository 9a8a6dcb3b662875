"""Training-loader throughput on a synthetic world: what building one batch costs, with and without the token cache.

Run: ``python benchmarks/loader.py --world WORLD --negatives FILE [--style fsc-clip] [--epochs 3] --out loader.json``
where ``WORLD`` is a demo's ``world/`` folder and ``FILE`` its ``finetune/negatives_world+*.jsonl`` (both written by
``fsc-clip demo``). It builds the loader the trainer builds (``build_train_loader``, ``workers=0``, the fsc-demo
tokenizer and eval transform, batch 128) and times full epochs: epoch 0 tokenizes every text for the first time,
later epochs are the steady state of a multi-epoch run. ``--no-cache`` turns the token cache off
(``CachedTokenizer(max_entries=0)``) and empties ``clip_bpe_ids`` (the negative sampler's BPE cache) before each epoch,
which is how every epoch cost before the caches were sized for it.

Each epoch is given in wall and CPU milliseconds per batch (CPU time is robust to other jobs on a shared machine).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def time_epochs(world: Path, negatives: Path, style: str, epochs: int, cache: bool) -> list[dict]:
    """Per epoch: batches, wall and CPU ms per batch."""
    from fsc_clip.config import from_dict
    from fsc_clip.data import collate
    from fsc_clip.data.config import DataConfig
    from fsc_clip.data.loader import build_train_loader
    from fsc_clip.models import load_model
    from fsc_clip.negatives.window import clip_bpe_ids

    lm = load_model("fsc-demo", None)
    raw = {"train_data": str(world / "train" / "train_neg_clip.tsv"), "image_root": str(world / "train"),
           "negatives": style, "precomputed_negatives": str(negatives), "workers": 0}  # fmt: skip
    if not cache:
        collate.TOKEN_CACHE_ENTRIES = 0  # read when the loader builds its CachedTokenizer
    loader = build_train_loader(from_dict(DataConfig, raw), lm.tokenizer, lm.preprocess_val, 128, 0)
    out = []
    for epoch in range(epochs):
        if not cache:
            clip_bpe_ids.cache_clear()
        loader.set_epoch(epoch)
        wall, cpu, n = time.perf_counter(), time.process_time(), 0
        for _ in loader:
            n += 1
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out.append({"epoch": epoch, "batches": n, "wall_ms_per_batch": 1000 * wall / n,
                    "cpu_ms_per_batch": 1000 * cpu / n})  # fmt: skip
        print(f"cache={'on' if cache else 'off'} epoch {epoch}: {n} batches, {1000 * wall / n:.1f} ms/batch wall, "
              f"{1000 * cpu / n:.1f} ms CPU", flush=True)  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="a demo's world/ folder")
    parser.add_argument("--negatives", type=Path, required=True, help="the demo's merged precomputed negatives JSONL")
    parser.add_argument("--style", default="fsc-clip", help="negative style of the loader (default fsc-clip)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs to time (default 3)")
    parser.add_argument("--no-cache", action="store_true", help="turn the token caches off (the old behaviour)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    result = {
        "style": args.style,
        "cache": not args.no_cache,
        "epochs": time_epochs(args.world, args.negatives, args.style, args.epochs, not args.no_cache),
        "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "load_avg": os.getloadavg()},
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
