"""``fsc-clip demo``: the whole method end to end on the embedded synthetic world, offline, on a CPU.

Example::

    fsc-clip demo                     # full demo into ./fsc-clip-demo (about 10 minutes on 2 CPU cores)
    fsc-clip demo --quick --output /tmp/demo
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", default="fsc-clip-demo", help="demo folder (default ./fsc-clip-demo); reused")
    parser.add_argument("--quick", action="store_true", help="a much smaller world and runs (about 2 minutes)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and of every run (default 0)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a demo setting, e.g. --set pretrain.steps=600 --set world.n_train=20000 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from fsc_clip.demo import demo_config, format_table, run_demo

    cfg = demo_config(quick=args.quick, seed=args.seed, overrides=args.overrides)
    result = run_demo(cfg, args.output, progress=not args.no_progress)
    print()
    print(format_table(result.rows))
    print()
    print("wall time per stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
    files = result.report_files
    print(f"Report: {files['html']}")
    print(f"        {files['markdown']}, {files['summary_csv']}, {files['plot_scatter']}")
    return 0
