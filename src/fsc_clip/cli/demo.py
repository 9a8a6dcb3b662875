"""``fsc-clip demo``: the whole method end to end on the embedded synthetic world, offline, on a CPU.

Example::

    fsc-clip demo                     # full demo into ./fsc-clip-demo (about 10 minutes on 2 CPU cores)
    fsc-clip demo --quick --output /tmp/demo   # smoke test of the whole pipeline (under a minute), no findings
    fsc-clip demo --from-scratch      # also pre-train the base instead of using the shipped or cached one
    fsc-clip demo --study ablation    # the paper's loss ablation (Table 2) on the same world, base and recipe
"""

from __future__ import annotations

import argparse

SMOKE_TEST = (
    "fsc-clip demo --quick is a smoke test: a tiny world, few steps and few test items. It checks that every "
    "stage runs; its numbers are noise. Run `fsc-clip demo` for the comparison."
)
LEGEND = (
    "value ±half-width of its 95 % bootstrap interval over test items; Δ lines: difference to base (or to the "
    "study's reference run) [paired 95 % interval], * = excludes 0. Comp: mean of sugarcrepe / winoground / aro; "
    "ZS: zero-shot shape / color / count; I2T / T2I: retrieval R@1."
)
SWITCHES_LEGEND = (
    "global / local: global / local hard-negative loss; focal: SCR focal loss (else cross entropy); ls: SCR label "
    "smoothing. Check marks read from each run's loss configuration."
)
HEADLINES = ("Comp", "ZS", "I2T", "T2I")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", default="fsc-clip-demo", help="demo folder; an existing one is reused (finished stages skipped)"
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke test: a tiny world and a few steps, to check the pipeline runs (its numbers mean nothing)",
    )  # fmt: skip
    parser.add_argument(
        "--from-scratch", action="store_true",
        help="pre-train the base model (default: the one shipped for the default settings, or the one cached in "
        "$FSC_CLIP_CACHE_DIR/demo)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and of every run")
    parser.add_argument(
        "--study", default="methods", choices=_study_names(),
        help="what to compare on the same world, base and recipe: methods (CLIP, NegCLIP, FSC-CLIP full / LoRA) or "
        "ablation (the paper's 8 loss configurations, Table 2; report in <output>/report-ablation)",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", type=int, default=1, metavar="N",
        help="fine-tune each method with N seeds (seed, seed+1, ...) and add a mean ± std table over them",
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a demo setting, e.g. --set pretrain.steps=600 --set world.n_train=20000 --set finetune_jobs=1 "
        "(repeatable)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (the stage lines stay)")


def _study_names() -> list[str]:
    from fsc_clip.demo.config import STUDIES

    return STUDIES.names()


def run(args: argparse.Namespace) -> int:
    from fsc_clip.demo import demo_config, format_table, run_demo
    from fsc_clip.demo.pipeline import format_seed_table, loss_switches, seed_summary

    overrides = [f"seeds={args.seeds}", *args.overrides]
    cfg = demo_config(quick=args.quick, seed=args.seed, overrides=overrides, study=args.study)
    if args.quick:
        print(SMOKE_TEST)
    if cfg.study.name != "methods":
        print(f"study {cfg.study.name}: {cfg.study.description}")
    result = run_demo(cfg, args.output, progress=not args.no_progress, from_scratch=args.from_scratch)
    print()
    if cfg.study.name == "ablation":
        switches = {m.name: loss_switches(m) for m in cfg.methods}
        print(format_table(result.rows, HEADLINES, switches, cfg.study.reference))
        print(SWITCHES_LEGEND)
    else:  # the methods study: every run vs the base and vs its reference (plain CLIP fine-tuning)
        print(format_table(result.rows, reference=cfg.study.reference))
    print(LEGEND)
    if cfg.seeds > 1:
        print()
        print(f"over {cfg.seeds} fine-tuning seeds per method (mean ± std; the base is one model):")
        print(format_seed_table(seed_summary(result.rows)))
    if args.quick:
        print(SMOKE_TEST)
    print()
    print("wall time per stage (s): " + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items()))
    files = result.report_files
    print(f"Report: {files['html']}")
    plots = ", ".join(str(files[k]) for k in ("plot_scatter", "plot_paired") if k in files)
    print(f"        {files['markdown']}, {files['summary_csv']}, {plots}")
    return 0
