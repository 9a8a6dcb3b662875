"""Does a batch of 64 learn the demo's relations when it is made of look-alike images? (docs/demo.md, "Time")

Run: ``python benchmarks/demo_lookalike_batches.py --output DIR [--group 2] [--set KEY=VALUE ...] [--json FILE]``

Why: the full demo needs batch 128 to learn the world's spatial relations (a batch of 128 often holds two images
with the same objects in another arrangement, which only positions tell apart), and batch 128 is why it takes
about 9.5 min on two cores. Batch 64 would take about 6 min but learns no relations with random batches. This
script runs the full demo at batch 64 (``--set finetune.batch_size=64``; more ``--set`` as for ``fsc-clip demo``)
with every fine-tuning batch made of groups of ``--group`` look-alike images (``benchmarks/lookalike_hook``, loaded
into the demo's worker processes through ``PYTHONPATH``). It needs the shipped base (a base pre-trained here would
also see look-alike batches): use it with the default world and seed. ``FSC_CLIP_CACHE_DIR`` is set to
``DIR/cache``. Prints the demo's table; saves each model's Comp / ZS and their paired differences to the base as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HOOK = Path(__file__).resolve().parent / "lookalike_hook"
COLUMNS = ("Comp", "ZS", "I2T", "T2I", "delta_Comp", "delta_Comp_ci_lo", "delta_Comp_ci_hi", "delta_ZS",
           "delta_ZS_ci_lo", "delta_ZS_ci_hi")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--group", type=int, default=2, help="look-alike images per group (2: pairs)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.group < 1:
        ap.error("--group must be >= 1")
    from fsc_clip.demo import demo_config
    from fsc_clip.demo.pipeline import _finetune_rows  # the fine-tuning table's rows, as the demo counts them

    cfg = demo_config(overrides=["finetune.batch_size=64", *args.set])
    out = args.output.resolve()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(HOOK), os.environ.get("PYTHONPATH", "")) if p),
        "FSC_CLIP_CACHE_DIR": str(out / "cache"),
        "FSC_LA_WORLD": str(out / "world"),
        "FSC_LA_TSV": str(out / "finetune" / "finetune_neg_clip.tsv"),
        "FSC_LA_N": str(_finetune_rows(cfg)),
        "FSC_LA_GROUP": str(args.group),
    }
    command = [sys.executable, "-m", "fsc_clip.cli.main", "demo", "--output", str(out), "--no-progress"]
    for item in ["finetune.batch_size=64", *args.set]:
        command += ["--set", item]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        return done.returncode
    with (out / "report" / "summary.csv").open(encoding="utf-8") as f:
        rows = [{"run": r["run"], **{c: r.get(c, "") for c in COLUMNS}} for r in csv.DictReader(f)]
    record = {"group": args.group, "overrides": ["finetune.batch_size=64", *args.set],
              "wall_s": round(time.perf_counter() - t0, 1), "rows": rows}  # fmt: skip
    text = json.dumps(record, indent=1)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
