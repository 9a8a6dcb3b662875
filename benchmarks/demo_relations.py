"""Attempts to make the demo world's spatial relations learnable, measured end to end (docs/demo.md).

Run: ``python benchmarks/demo_relations.py --variant VARIANT --output DIR [--quick] [--set KEY=VALUE ...]
[--out result.json]`` (``--set``: the demo's overrides, e.g. ``finetune.lr=1e-3``, to measure another recipe).

Variants (``one-direction`` and ``lookalikes`` are world settings, ``warmup`` patches the pipeline *in this
process only*); every variant starts from the packaged vocabulary with both directions, whatever the preset says:

* ``one-direction``: every caption of the world, training and test sets, says a relation only as *left of* or
  *above* ("A to the right of B" is said "B to the left of A"; ``world.one_way``). The images are those of the
  default world.
* ``warmup``: before the CLIP pre-training, the image tower is trained with direct supervision to say where each
  shape is (a linear head on the image embedding predicts each shape's row and column, or "absent"; AdamW, lr 1e-3,
  weight decay 0.1, batch 128, ``--warmup-steps``), on the training images; the pre-training then starts from it.
* ``one-direction+warmup``: both.
* ``lookalikes`` (combinable with the others, e.g. ``lookalikes+one-direction``): a smaller vocabulary, by default
  3 shapes (circle, square, triangle) x 3 colors (red, green, blue) (``--shapes``, ``--colors``: the first N
  packaged ones; ``world.shapes``, ``world.colors``), the same 4x4 grid, sizes and relations. A batch of 128 then
  often holds two images with the same objects in another arrangement, which only positions tell apart, so the CLIP
  pre-training itself asks for positions (in the default world it never does).

These two were patches of the package in this script until they became world settings; the worlds they write are
byte-identical to the patched ones (checked on the 3 x 3 one-direction world), so the numbers recorded before hold.

Then the demo pipeline runs as usual (pre-training from scratch, the preset's fine-tuning recipe, one thread per
run; the tables of docs/demo.md measured before the preset's lr became 1e-3 used lr 2e-3: ``--set finetune.lr=2e-3``
gives them back) for CLIP fine-tuned and NegCLIP (``--methods all``: every method of the preset), and
``demo_probes.py`` probes the base and NegCLIP. The shared base cache is redirected to ``DIR/cache``, so a variant's
base never reaches the user's shared cache. The JSON holds the demo's rows (values, intervals, paired differences), the
relation sub-scores, the warm-up's accuracy curve and the probes. Full size: about 14 min on two cores (pre-training
6.5 min with one thread; two variants at once with ``--jobs 1``: about 16 min). A re-run on the same folder reuses
the world, the base and every run whose settings are unchanged (``--methods all`` after the default two methods also
retrains NegCLIP: its negatives file then holds FSC-CLIP's types too; its numbers came out the same).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

SHAPE_SLOTS = ("row", "col")
SUBSCORES = ("synthetic_aro::VG_Relation", "synthetic_sugarcrepe::replace_rel", "synthetic_winoground::group")


def position_warmup(model_name: str, world: Path, steps: int, seed: int) -> tuple[dict[str, Any], list[dict]]:
    """Train the image tower to say each shape's row and column; returns (state dict, accuracy every 100 steps)."""
    import torch
    from PIL import Image

    from fsc_clip.data.synthetic.vocab import load_vocab
    from fsc_clip.models import load_model

    torch.manual_seed(seed)
    lm = load_model(model_name, None)
    model, visual = lm.model, lm.model.visual
    with open(world / "scenes.jsonl", encoding="utf-8") as f:
        scenes = [s for s in map(json.loads, f) if s["image"].startswith("train/")]
    world_cfg = json.loads((world / "manifest.json").read_text(encoding="utf-8"))["config"]
    shapes = list(load_vocab().restricted(world_cfg.get("shapes", 0), world_cfg.get("colors", 0)).shapes)
    images = torch.stack([lm.preprocess_val(Image.open(world / s["image"]).convert("RGB")) for s in scenes])
    targets = torch.zeros(len(scenes), 2 * len(shapes), dtype=torch.long)  # [N, slots]: 0 = absent, else 1 + cell
    for i, s in enumerate(scenes):
        for o in s["objects"]:
            k = shapes.index(o["shape"])
            targets[i, k], targets[i, len(shapes) + k] = o["row"] + 1, o["col"] + 1
    classes = 1 + int(targets.max())
    head = torch.nn.Linear(int(visual.output_dim), targets.shape[1] * classes)
    opt = torch.optim.AdamW([*visual.parameters(), *head.parameters()], lr=1e-3, weight_decay=0.1)
    held = max(1, min(1000, len(scenes) // 12))  # held-out training images for the accuracy
    train_n, gen, history = len(scenes) - held, torch.Generator().manual_seed(seed), []

    def logits(x: Any) -> Any:
        return head(model.encode_image(x)).view(len(x), targets.shape[1], classes)  # [B, slots, classes]

    for step in range(1, steps + 1):
        idx = torch.randint(0, train_n, (128,), generator=gen)
        loss = torch.nn.functional.cross_entropy(logits(images[idx]).flatten(0, 1), targets[idx].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps:
            with torch.no_grad():
                y, present = targets[train_n:], targets[train_n:] > 0
                hit = (logits(images[train_n:]).argmax(-1) == y) & present
            history.append({"step": step, "loss": loss.item(), "placed": int(hit.sum()) / int(present.sum())})
            print(f"warm-up step {step}: loss {loss.item():.3f}, shapes placed {history[-1]['placed']:.3f}", flush=True)
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}, history


def winoground_tags(world: Path) -> list[str]:
    """Each Winoground item's tag (``Noun`` = the two objects of a relation swapped; ``Adjective-*`` = attributes)."""
    lines = (world / "winoground" / "data" / "examples.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["tag"] for line in lines]


def winoground_groups(eval_dir: Path, tags: list[str]) -> dict[str, float]:
    """Winoground group score per tag, from the per-item outcomes the demo saves beside each result."""
    import numpy as np

    group = np.load(eval_dir / "synthetic_winoground.scores.npz")["main/group"]  # [items], 1 = both right
    kinds = np.array(tags)
    return {f"winoground_group::{t}": 100.0 * float(group[kinds == t].mean()) for t in sorted(set(tags))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True, choices=["one-direction", "warmup", "one-direction+warmup",
                                                             "lookalikes", "lookalikes+warmup",
                                                             "lookalikes+one-direction",
                                                             "lookalikes+one-direction+warmup"])  # fmt: skip
    parser.add_argument("--shapes", type=int, default=3, help="lookalikes: shapes kept (the first N packaged)")
    parser.add_argument("--colors", type=int, default=3, help="lookalikes: colors kept (the first N packaged)")
    parser.add_argument("--output", type=Path, required=True, help="demo folder of this variant")
    parser.add_argument("--quick", action="store_true", help="the demo's quick preset (checks that it runs)")
    parser.add_argument("--warmup-steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of warm-up and pre-training (default 1)")
    parser.add_argument("--jobs", type=int, default=0, help="fine-tuning runs at once (0: one per core)")
    parser.add_argument("--methods", default="clip-ft,negclip", help="preset methods to fine-tune (comma list, or all)")
    parser.add_argument("--seeds", type=int, default=1, help="fine-tuning seeds per method (the demo's --seeds)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a demo override, as fsc-clip demo --set (finetune.lr=1e-3); repeatable")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> Any:
    """The demo preset with this run's jobs, seeds, ``--set`` overrides and ``--methods``."""
    from fsc_clip.demo import demo_config

    cfg = demo_config(quick=args.quick, overrides=[f"finetune_jobs={args.jobs}", f"seeds={args.seeds}", *args.set])
    small = "lookalikes" in args.variant
    try:  # the variant decides the vocabulary and the phrasing (replace() runs WorldConfig's checks)
        size = {"shapes": args.shapes, "colors": args.colors} if small else {"shapes": 0, "colors": 0}
        cfg.world = dataclasses.replace(cfg.world, **size, one_way="one-direction" in args.variant)
    except ValueError as err:
        raise SystemExit(f"--shapes/--colors: {err}") from err
    if args.methods != "all":
        known, wanted = [m.name for m in cfg.methods], args.methods.split(",")
        if not wanted or set(wanted) - set(known):
            raise SystemExit(f"--methods: {args.methods!r} is not a comma list of {known} (or all)")
        cfg.methods = [m for m in cfg.methods if m.name in wanted]
    return cfg


def main() -> None:
    args = parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    os.environ["FSC_CLIP_CACHE_DIR"] = str(args.output.resolve() / "cache")  # never the user's shared base cache
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch
    from safetensors.torch import save_file

    import demo_probes
    import fsc_clip.demo.pipeline as pipeline
    from fsc_clip.data.synthetic import generate_world

    torch.set_num_threads(args.threads)  # the base is deterministic for a given thread count
    cfg = build_config(args)
    history: list[dict] = []
    if "warmup" in args.variant:
        world = args.output / "world"
        generate_world(cfg.world, world)  # the pipeline reuses it (same manifest)
        init, record = args.output / "warmup.safetensors", args.output / "warmup.json"
        if init.exists() and record.exists():  # a re-run on the same folder reuses the warm-up (and then the base)
            history = json.loads(record.read_text(encoding="utf-8"))
        else:
            state, history = position_warmup(cfg.model, world, args.warmup_steps, cfg.seed)
            save_file(state, str(init))
            record.write_text(json.dumps(history) + "\n", encoding="utf-8")
        make_config = pipeline._train_config

        def from_warmup(d: Any, name: str, stage: Any, data: Any, method: Any, pretrained: Any, seed: Any = None):
            if name == pipeline.BASE and pretrained is None:
                pretrained = str(init)
            return make_config(d, name, stage, data, method, pretrained, seed)

        pipeline._train_config = from_warmup
    t0 = time.perf_counter()
    res = pipeline.run_demo(cfg, args.output, progress=False, from_scratch=not (args.output / "runs/base").exists())
    print(pipeline.format_table(res.rows))
    seeds = pipeline.seed_summary(res.rows) if args.seeds > 1 else []
    if seeds:
        print(pipeline.format_seed_table(seeds))
    subscores, tags = {}, winoground_tags(args.output / "world")
    for row in res.rows:
        scores: dict[str, float] = {}
        for path in (args.output / "eval" / row["model"]).glob("synthetic_*.json"):
            scores.update(json.loads(path.read_text(encoding="utf-8"))["scores"])
        subscores[row["model"]] = {k: scores.get(k) for k in SUBSCORES}
        subscores[row["model"]] |= winoground_groups(args.output / "eval" / row["model"], tags)
        shown = {k.split("::")[1]: round(v, 1) for k, v in subscores[row["model"]].items() if v is not None}
        print(row["model"], shown)
    with open(args.output / "world" / "scenes.jsonl", encoding="utf-8") as f:
        records = [r for r in map(json.loads, f) if r["image"].startswith("train/") and len(r["objects"]) >= 2][:3000]
    probes = {}
    for name in ("base", "negclip"):
        run = str(args.output / "runs" / name)
        probes[name] = demo_probes.run_probes(demo_probes.embed(run, args.output / "world", records), records)
        probes[name] |= demo_probes.text_similarities(run, records)
        print(name, {k: round(v, 4) for k, v in probes[name].items()}, flush=True)
    if args.out:
        vocab = {"shapes": args.shapes, "colors": args.colors} if "lookalikes" in args.variant else "packaged"
        result = {"variant": args.variant, "vocab": vocab, "quick": args.quick, "warmup_steps": args.warmup_steps,
                  "warmup": history, "overrides": args.set,
                  "rows": res.rows, "seed_summary": seeds, "subscores": subscores, "probes": probes,
                  "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
