"""Pack the default demo's pre-trained base into package data, and check that it scores exactly as the original.

Run (maintainers, after a change to the world or to the pre-training preset; a test fails until then)::

    fsc-clip demo --output DEMO                      # default settings, seed 0: trains the base
    python benchmarks/pack_demo_base.py --demo DEMO  # writes src/fsc_clip/resources/synthetic/demo-base.safetensors

It refuses a demo folder whose base key (model, seed, world settings and version, pre-training settings) is not
the default preset's, packs ``DEMO/runs/base`` with the embedding rows of every token in ``DEMO/world`` and
``DEMO/finetune`` (:mod:`fsc_clip.demo.shipped`), unpacks the file again and evaluates both models on all five
synthetic benchmarks of the world: every score must be equal. It prints and saves a JSON record
(``benchmarks/results/pack_demo_base.json`` unless ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "fsc_clip" / "resources" / "synthetic" / "demo-base.safetensors"


def _scores(run: Path, world: Path, out: Path) -> dict[str, dict[str, float]]:
    from fsc_clip.demo.pipeline import BENCHMARKS
    from fsc_clip.evaluation import evaluate
    from fsc_clip.models import load_model

    results = evaluate(load_model("fsc-demo", str(run)), list(BENCHMARKS), world, out, progress=False)
    return {name: dict(result["scores"]) for name, result in results.items()}


def main() -> int:
    import yaml

    from fsc_clip.config import from_dict
    from fsc_clip.demo import DemoConfig, demo_config
    from fsc_clip.demo.pipeline import base_cache_dir
    from fsc_clip.demo.shipped import pack_base, unpack_base

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", type=Path, required=True, help="a default `fsc-clip demo` output folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" / "pack_demo_base.json")
    ap.add_argument("--note", default="", help="provenance recorded in the file (machine, threads, commit)")
    args = ap.parse_args()

    saved = from_dict(DemoConfig, yaml.safe_load((args.demo / "demo_config.yaml").read_text(encoding="utf-8")))
    key = base_cache_dir(demo_config()).name.removeprefix("base-")
    if base_cache_dir(saved).name != f"base-{key}":
        print(f"{args.demo}: its base is not the default preset's (key {base_cache_dir(saved).name}, "
              f"default base-{key}); run `fsc-clip demo` with default settings first", file=sys.stderr)  # fmt: skip
        return 2
    t0 = time.perf_counter()
    run = args.demo / "runs" / "base"
    packed = pack_base(run, [args.demo / "world", args.demo / "finetune"], args.out, key, args.note)
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = Path(tmp) / "unpacked"
        unpack_base(args.out, unpacked)
        original = _scores(run, args.demo / "world", Path(tmp) / "eval-original")
        shipped = _scores(unpacked, args.demo / "world", Path(tmp) / "eval-shipped")
    equal = original == shipped
    record = {**packed, "file": str(args.out.relative_to(REPO)) if args.out.is_relative_to(REPO) else str(args.out),
              "scores_equal": equal, "scores": original, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(record, indent=1))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    if not equal:
        print("the packed base does NOT score as the original: do not ship it", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
