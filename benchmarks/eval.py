"""Evaluation-engine throughput (CPU by default): items/s, images/s and where the time goes (encoding vs the rest).

Usage:
    python benchmarks/eval.py --out eval_bench.json
    python benchmarks/eval.py --skip-vit --out FILE.json        # tiny model only
    python benchmarks/eval.py --device cuda --precision bf16 --batch-size 256 --out FILE.json   # on a GPU

Two runs, each with a fresh embedding cache, timing ``fsc_clip.evaluation.evaluate`` only (model loading and
fixture writing excluded):

1. ``fsc-tiny`` (random init) over the 13 compositional fixtures of the test suite (native layouts).
2. ``ViT-B-32`` (random init, 224 px) over a few hundred items: Winoground-format 2x2 items (distinct images)
   and SugarCrepe-format items (many items sharing few COCO images: the cache at work).

Reported per run: items, seconds, items/s, ``encode_s`` (model forward passes), ``decode_s`` (waiting for
decoded + preprocessed image batches), ``other_s`` (everything else: reading annotations, spaCy for ARO's
Order perturbations, cache lookups, scoring, JSON writing) and their shares of the total.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "evaluation"))  # the native-layout fixture writers


def _run(
    model: str, benchmarks: list[str], scale: int, batch_size: int, workers: int, device: str = "cpu",
    precision: str = "fp32",
) -> dict:  # fmt: skip
    import torch
    from eval_fixtures import write_fixture

    from fsc_clip.evaluation.embedder import CachedEmbedder
    from fsc_clip.evaluation.runner import evaluate
    from fsc_clip.models import load_model

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for name in benchmarks:
            write_fixture(name, root, scale=scale)
        lm = load_model(model, device=device, precision=precision)
        emb = CachedEmbedder(lm, device=device, batch_size=batch_size, workers=workers, progress=False)
        if "aro" in benchmarks:  # spaCy loading is a one-off per process; keep it out of the steady-state number
            from fsc_clip.evaluation.benchmarks.aro import load_spacy

            load_spacy()
        t0 = time.perf_counter()
        results = evaluate(lm, benchmarks, root, Path(tmp) / "out", embedder=emb, device=device, progress=False)
        total = time.perf_counter() - t0
    n_items = sum(r["extra"]["n_items"] for r in results.values())
    encode, decode = emb.stats["encode_s"], emb.stats["load_s"]
    other = total - encode - decode
    return {
        "model": model,
        "benchmarks": benchmarks,
        "items": n_items,
        "unique_images_encoded": int(emb.stats["n_images"]),
        "unique_texts_encoded": int(emb.stats["n_texts"]),
        "seconds": round(total, 3),
        "items_per_s": round(n_items / total, 1),
        "images_per_s": round(emb.stats["n_images"] / total, 1),  # end to end: decode, texts, scoring included
        "encode_s": round(encode, 3),
        "decode_s": round(decode, 3),
        "other_s": round(other, 3),
        "encode_share": round(encode / total, 3),
        "decode_share": round(decode / total, 3),
        "other_share": round(other / total, 3),
        "per_benchmark_s": {n: r["time_s"] for n, r in results.items()},
        "batch_size": batch_size,
        "workers": workers,
        "device": device,
        "precision": precision,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--vit-scale", type=int, default=20, help="fixture scale of the ViT-B-32 run (20: ~340 items)")
    parser.add_argument("--skip-vit", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (the model and the encoding run there)")
    parser.add_argument("--precision", default="fp32", help="model precision: fp32 | bf16 | fp16 (load_model)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from eval_fixtures import WRITERS

    setting = (args.batch_size, args.workers, args.device, args.precision)
    runs = [_run("fsc-tiny", sorted(WRITERS), 1, *setting)]
    if not args.skip_vit:
        runs.append(_run("ViT-B-32", ["winoground", "sugarcrepe"], args.vit_scale, *setting))
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_avg_1m": os.getloadavg()[0],
            "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        },
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for r in runs:
        print(f"{r['model']:<9} {r['items']:>5} items {r['seconds']:7.2f}s {r['items_per_s']:7.1f} items/s  "
              f"{r['images_per_s']:7.1f} images/s  "
              f"encode {100 * r['encode_share']:.0f}%  decode {100 * r['decode_share']:.0f}%  "
              f"other {100 * r['other_share']:.0f}%")  # fmt: skip


if __name__ == "__main__":
    main()
