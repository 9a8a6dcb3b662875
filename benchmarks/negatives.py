"""Hard-negative throughput and coverage for style ``fsc-clip`` on a COCO-style caption corpus.

Run: ``python benchmarks/negatives.py --out negatives.json [--workers 2] [--captions FILE]``.

Measured per pass over the corpus (every pass re-seeds with a new epoch):

* ``cold``: first pass in a fresh process after the resources are loaded (spaCy parse + WordNet tables built).
* ``warm`` (headline ``captions_per_s``): WordNet tables already built, parse cache cleared, so every caption
  is parsed again; this is the steady state of a fresh caption stream (the reference's ~95 captions/s per core
  is also a warm figure).
* ``cached``: parse cache hit (what online generation costs from the second epoch on).

``identical_to_caption`` counts, over the cold pass, negatives equal to their caption after normalisation (ours, and
an independent one: lower case, punctuation deleted) or in the first 77 CLIP tokens; the promise is 0.

Each rate is given per wall-clock second and per CPU second of the process (the latter is robust to other jobs
on a shared machine). BLAS threads are pinned to 1 so that "per process" means "per core".
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "data" / "captions.txt"
STYLE = "fsc-clip"


def _timed_pass(captions: list[str], epoch: int) -> tuple[list[list[str | None]], float, float]:
    from fsc_clip.negatives import generate_negatives

    wall, cpu = time.perf_counter(), time.process_time()
    negatives, _ = generate_negatives(captions, style=STYLE, seed=0, epoch=epoch)
    return negatives, time.perf_counter() - wall, time.process_time() - cpu


def single_process(captions: list[str]) -> dict:
    """Load time, then cold / warm / cached passes in this process; coverage from the cold pass."""
    from fsc_clip.negatives import style_types
    from fsc_clip.negatives.lexicon import get_lexicon
    from fsc_clip.negatives.parse import PARSE_CACHE
    from fsc_clip.negatives.resources import load_spacy

    start = time.perf_counter()
    load_spacy()
    get_lexicon()
    load_s = time.perf_counter() - start
    n = len(captions)
    negatives, cold_wall, cold_cpu = _timed_pass(captions, epoch=0)
    PARSE_CACHE.clear()
    _, warm_wall, warm_cpu = _timed_pass(captions, epoch=1)
    _, cached_wall, cached_cpu = _timed_pass(captions, epoch=2)
    types = style_types(STYLE)
    coverage = {t: sum(row[k] is not None for row in negatives) / n for k, t in enumerate(types)}
    identical = _identical(captions, negatives)
    return {
        "load_s": load_s,
        "captions_per_s": n / warm_wall,
        "captions_per_cpu_s": n / warm_cpu,
        "captions_per_s_cold": n / cold_wall,
        "captions_per_cpu_s_cold": n / cold_cpu,
        "captions_per_s_cached": n / cached_wall,
        "captions_per_cpu_s_cached": n / cached_cpu,
        "coverage": coverage,
        "identical_to_caption": identical,
        "examples": [[c, *row] for c, row in zip(captions[:5], negatives[:5])],
    }


def _identical(captions: list[str], negatives: list[list[str | None]]) -> int:
    """Negatives equal to their caption textually (two normalisations) or to a 77-token CLIP text tower."""
    import re

    import open_clip

    from fsc_clip.negatives.text import normalize

    def plain(text: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())

    count = 0
    for caption, row in zip(captions, negatives):
        for neg in row:
            if neg is None:
                continue
            same_text = normalize(neg) == normalize(caption) or plain(neg) == plain(caption)
            tokens = open_clip.tokenize([caption, neg])  # [2, 77]
            count += same_text or bool((tokens[0] == tokens[1]).all())
    return count


def _worker(job: tuple[list[str], list[str]]) -> tuple[float, float, float]:
    """Warm up on the whole corpus (untimed), then time a re-parse of this worker's shard."""
    from fsc_clip.negatives.parse import PARSE_CACHE

    corpus, shard = job
    _timed_pass(corpus, epoch=0)
    PARSE_CACHE.clear()
    wall, cpu = time.time(), time.process_time()
    _timed_pass(shard, epoch=1)
    return wall, time.time(), time.process_time() - cpu


def multi_process(captions: list[str], workers: int) -> dict:
    """Warm throughput of ``workers`` processes splitting the corpus (wall time from first start to last end)."""
    shards = [captions[i::workers] for i in range(workers)]
    with mp.get_context("spawn").Pool(workers) as pool:
        results = pool.map(_worker, [(captions, shard) for shard in shards])
    wall = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    cpu = sum(c for _, _, c in results)
    return {"captions_per_s_workers": len(captions) / wall, "captions_per_cpu_s_workers": len(captions) / cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file for the results")
    parser.add_argument("--captions", default=str(CORPUS), help="one caption per line")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N captions (0 = all)")
    args = parser.parse_args()
    captions = [c for c in Path(args.captions).read_text(encoding="utf-8").splitlines() if c.strip()]
    captions = captions[: args.limit] if args.limit else captions
    result = {"style": STYLE, "n_captions": len(captions), "workers": args.workers}
    result.update(single_process(captions))
    result.update(multi_process(captions, args.workers))
    result["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores"
    result["load_average_at_end"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print_table(result)


def _print_table(r: dict) -> None:
    rows = [
        ("1 process, warm (every caption parsed)", r["captions_per_s"], r["captions_per_cpu_s"]),
        ("1 process, cold (first pass)", r["captions_per_s_cold"], r["captions_per_cpu_s_cold"]),
        ("1 process, parse cached", r["captions_per_s_cached"], r["captions_per_cpu_s_cached"]),
        (f"{r['workers']} workers, warm", r["captions_per_s_workers"], r["captions_per_cpu_s_workers"]),
    ]
    print(f"style {r['style']}, {r['n_captions']} captions, resources loaded in {r['load_s']:.1f} s")
    print(f"{'setting':<42}{'captions/s':>12}{'captions/CPU-s':>16}")
    for name, wall, cpu in rows:
        print(f"{name:<42}{wall:>12.0f}{cpu:>16.0f}")
    print("coverage: " + ", ".join(f"{t} {100 * v:.1f}%" for t, v in r["coverage"].items()))
    print(f"negatives identical to their caption (text or first 77 tokens): {r['identical_to_caption']}")


if __name__ == "__main__":
    main()
