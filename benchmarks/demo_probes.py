"""Linear probes of a demo model's image embedding: does it encode which object is left, and which color a shape has?

Run: ``python benchmarks/demo_probes.py --world DEMO/world RUN [RUN ...] [--out probes.json]`` where each ``RUN`` is a
demo run folder (``DEMO/runs/base``, ``DEMO/runs/negclip``, ...) or ``random`` (the untrained architecture).

Both probes are shaped like the question a caption asks, so that a CLIP text embedding could answer it with a dot
product. A caption names its objects, so the probes are fit *per pair of named things*:

* ``left_right``: for each unordered pair of shapes (a, b), on training images holding both in different columns,
  a logistic-regression probe on the normalised image embedding predicts whether a is left of b. Chance 0.5. (A
  single probe for all pairs, e.g. "is the alphabetically first shape on the left", cannot be solved by a
  sum-pooled embedding even when every object's position is in it, so it would say nothing.)
* ``binding``: for each shape, on images holding it, a probe predicts its color (8 colors). Chance 0.125.

Accuracy is on the held-out quarter of each group's images, summed over groups. 300 full-batch Adam steps,
logits scaled by 10 (the embedding is unit-norm).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402


def embed(run: str, world: Path, records: list[dict]):
    """Unit-norm image embeddings ``[N, D]`` of ``records`` under the model of ``run``."""
    import torch
    from PIL import Image

    from fsc_clip.models import load_model

    lm = load_model("fsc-demo", None if run == "random" else run)
    model = lm.model.eval()
    images = torch.stack([lm.preprocess_val(Image.open(world / r["image"]).convert("RGB")) for r in records])
    with torch.no_grad():
        feats = torch.cat([model.encode_image(images[i : i + 256]) for i in range(0, len(images), 256)])
    return torch.nn.functional.normalize(feats, dim=-1)


def probe(x, y, classes: int) -> tuple[int, int]:
    """(correct, total) on the held-out quarter of a linear probe fit on the first three quarters."""
    import torch

    n = int(0.75 * len(y))
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(x[:n] @ w * 10 + b, y[:n]).backward()
        opt.step()
    with torch.no_grad():
        return int(((x[n:] @ w * 10 + b).argmax(1) == y[n:]).sum()), len(y) - n


def run_probes(x, records: list[dict]) -> dict[str, float]:
    import torch

    shapes = sorted({o["shape"] for r in records for o in r["objects"]})
    colors = sorted({o["color"] for r in records for o in r["objects"]})
    tallies = {"left_right": [0, 0], "binding": [0, 0]}
    for a, b in itertools.combinations(shapes, 2):
        idx, y = [], []
        for k, r in enumerate(records):
            objs = {o["shape"]: o for o in r["objects"]}
            if a in objs and b in objs and objs[a]["col"] != objs[b]["col"]:
                idx.append(k)
                y.append(int(objs[a]["col"] < objs[b]["col"]))
        if len(idx) >= 20:
            c, t = probe(x[idx], torch.tensor(y), 2)
            tallies["left_right"][0] += c
            tallies["left_right"][1] += t
    for s in shapes:
        idx, y = [], []
        for k, r in enumerate(records):
            obj = next((o for o in r["objects"] if o["shape"] == s), None)
            if obj is not None and len(r["objects"]) >= 2:
                idx.append(k)
                y.append(colors.index(obj["color"]))
        c, t = probe(x[idx], torch.tensor(y), len(colors))
        tallies["binding"][0] += c
        tallies["binding"][1] += t
    return {k: c / t for k, (c, t) in tallies.items()} | {f"{k}_n": t for k, (_, t) in tallies.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="a demo's world/ folder")
    parser.add_argument("--images", type=int, default=6000, help="training images used (default 6000)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("runs", nargs="+", help="demo run folders, or 'random'")
    args = parser.parse_args()
    with open(args.world / "scenes.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    records = [r for r in records if r["image"].startswith("train/") and len(r["objects"]) >= 2][: args.images]
    results = {}
    for run in args.runs:
        results[run] = run_probes(embed(run, args.world, records), records)
        print(f"{run}: left/right per pair {results[run]['left_right']:.3f} (chance 0.5), color of a shape "
              f"{results[run]['binding']:.3f} (chance 0.125)", flush=True)  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
