"""Threads or processes for the demo's fine-tuning runs? Time one FSC-CLIP-sized training step of ``fsc-demo``.

Run on an otherwise idle machine: ``python benchmarks/finetune_jobs.py [--steps 15] [--json PATH]``.

A step here is what dominates a demo fine-tuning step: the text tower on 512 texts of 24 tokens (128 captions and
3 negatives each), the image tower on 128 images of 64x64, backward, AdamW. Three settings:

* ``threads_all``: one process with torch's default intra-op threads (one per core);
* ``threads_1``: one process with one thread;
* ``processes_1x``: one single-thread process per core, all at once (how ``fsc-clip demo`` trains its runs).

``throughput_steps_per_s`` compares them: for ``processes_1x`` it is the sum over the processes. Prints and saves JSON
(``benchmarks/results/finetune_jobs.json`` by default).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from pathlib import Path


def _time_steps(threads: int, steps: int) -> float:
    """Seconds per step of the FSC-CLIP-sized step with ``threads`` torch threads (after one warm-up step)."""
    import logging

    import open_clip
    import torch

    from fsc_clip.models import register_model_configs

    logging.disable(logging.WARNING)  # "no pretrained weights": intended, random init
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    register_model_configs()
    model = open_clip.create_model("fsc-demo")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    texts = torch.randint(1, 400, (512, 24))  # [T, L]
    images = torch.randn(128, 3, 64, 64)  # [B, 3, H, W]

    def step() -> None:
        opt.zero_grad()
        (model.encode_text(texts).sum() + model.encode_image(images).sum()).backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def _worker(args: tuple[int, int]) -> float:
    return _time_steps(*args)


def main() -> int:
    from fsc_clip.cli.main import usable_cores

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "finetune_jobs.json")
    args = ap.parse_args()
    cores = usable_cores()
    load_before = os.getloadavg()[0]
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:  # a fresh process each, so that the thread pool is sized as asked
        all_threads = pool.apply(_worker, ((cores, args.steps),))
    with context.Pool(1) as pool:
        one_thread = pool.apply(_worker, ((1, args.steps),))
    with context.Pool(cores) as pool:
        side_by_side = pool.map(_worker, [(1, args.steps)] * cores)
    record = {
        "machine": f"{platform.machine()}, {cores} usable cores, load average before {load_before:.2f}",
        "steps": args.steps,
        "threads_all": {"threads": cores, "s_per_step": all_threads, "throughput_steps_per_s": 1 / all_threads},
        "threads_1": {"threads": 1, "s_per_step": one_thread, "throughput_steps_per_s": 1 / one_thread},
        "processes_1x": {
            "processes": cores,
            "s_per_step": side_by_side,
            "throughput_steps_per_s": sum(1 / s for s in side_by_side),
        },
    }
    print(json.dumps(record, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
