"""Retrieval scoring cost at COCO-5k scale (5000 images x 25010 captions): chunked vs full, on CPU.

Each configuration runs in a fresh subprocess so its peak resident memory (``ru_maxrss``) is its own; the
reported ``peak_extra_mb`` is that peak minus the resident size just before scoring (embeddings already made).
All configurations must give identical recall values (checked).

Usage::

    python benchmarks/retrieval.py --out retrieval_bench.json [--chunks 256,1024,full] [--repeats 2] [--dim 512]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

N_IMAGES, N_CAPTIONS = 5000, 25010


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(chunk: str, repeats: int, dim: int, threads: int) -> dict:
    import torch

    from fsc_clip.evaluation.tasks.retrieval import retrieval_scores

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    owner = torch.arange(N_CAPTIONS) % N_IMAGES  # 5 captions per image, 10 images with a 6th
    img = torch.nn.functional.normalize(torch.randn(N_IMAGES, dim, generator=g), dim=-1)
    noise = 8.0 / dim**0.5  # realistic difficulty: R@1 in the tens of percent
    txt = torch.nn.functional.normalize(img[owner] + noise * torch.randn(N_CAPTIONS, dim, generator=g), dim=-1)
    chunk_size = None if chunk == "full" else int(chunk)
    retrieval_scores(img[:100], txt[:500], owner[:500] % 100, chunk_size=chunk_size)  # warm-up (small)
    before = _rss_mb()
    times, scores = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        scores = retrieval_scores(img, txt, owner, chunk_size=chunk_size)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "chunk_size": chunk,
        "seconds_min": min(times),
        "seconds_all": times,
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(peak, 1),
        "peak_extra_mb": round(peak - before, 1),
        "scores": scores,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--chunks", default="256,1024,full", help="comma-separated chunk sizes; 'full' = no chunking")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dim", type=int, default=512, help="embedding width (ViT-B/32: 512)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child, args.repeats, args.dim, args.threads)))
        return 0
    runs = []
    for chunk in args.chunks.split(","):
        cmd = [sys.executable, __file__, "--out", args.out, "--child", chunk, "--repeats", str(args.repeats),
               "--dim", str(args.dim), "--threads", str(args.threads)]  # fmt: skip
        res = json.loads(
            subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        runs.append(res)
        print(f"chunk={chunk:>5}: {res['seconds_min']:.2f} s, peak +{res['peak_extra_mb']:.0f} MB", flush=True)
    ref = runs[0]["scores"]
    identical = all(r["scores"] == ref for r in runs)
    out = {
        "benchmark": "retrieval scoring (I2T + T2I, R@1/5/10)",
        "n_images": N_IMAGES,
        "n_captions": N_CAPTIONS,
        "dim": args.dim,
        "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, no GPU",
        "identical_results": identical,
        "scores": ref,
        "runs": [{k: v for k, v in r.items() if k != "scores"} for r in runs],
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=2)
    print(f"identical results across configurations: {identical}; wrote {args.out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
