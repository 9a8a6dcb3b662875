"""Linear probes of a demo model's image embedding: does it encode which object is left, and which color a shape has?

Run: ``python benchmarks/demo_probes.py --world DEMO/world RUN [RUN ...] [--out probes.json]`` where each ``RUN`` is a
demo run folder (``DEMO/runs/base``, ``DEMO/runs/negclip``, ...) or ``random`` (the untrained architecture).

Both probes are shaped like the question a caption asks, so that a CLIP text embedding could answer it with a dot
product. A caption names its objects, so the probes are fit *per pair of named things*:

* ``left_right``: for each unordered pair of shapes (a, b), on training images holding both in different columns,
  a logistic-regression probe on the normalised image embedding predicts whether a is left of b. Chance 0.5. (A
  single probe for all pairs, e.g. "is the alphabetically first shape on the left", cannot be solved by a
  sum-pooled embedding even when every object's position is in it, so it would say nothing.)
* ``binding``: for each shape, on images holding it, a probe predicts its color. Chance 1 / colors (0.125 with the
  packaged 8 colors, 0.33 in the demo's 3 x 3 world).

And one look at the text tower, which needs no probe: the mean cosine similarity of the text embeddings of captions
that differ only in what a hard negative changes, over every pair of (color, shape) objects and every relation of
the world's vocabulary: ``text_relation`` ("a red circle to the left of a blue square" vs "... to the right of
..."), ``text_order`` (vs "a blue square to the left of a red circle") and, for reference, ``text_binding`` (vs "a
blue circle to the left of a red square"). 1.0 means the text tower cannot tell the two captions apart.

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


def text_similarities(run: str, records: list[dict]) -> dict[str, float]:
    """Mean cosine similarity of caption pairs that differ by a relation flip, an order swap or a color swap."""
    import torch

    from fsc_clip.data.synthetic import load_vocab
    from fsc_clip.models import load_model

    vocab = load_vocab()
    objects = sorted({(o["color"], o["shape"]) for r in records for o in r["objects"]})
    pairs: dict[str, list[tuple[str, str]]] = {"text_relation": [], "text_order": [], "text_binding": []}
    for (c1, s1), (c2, s2) in itertools.permutations(objects, 2):
        if s1 == s2 or c1 == c2:
            continue
        for rel in vocab.relations.values():
            phrase, inverse = rel.phrases[0], vocab.relations[rel.inverse].phrases[0]
            caption = f"a {c1} {s1} {phrase} a {c2} {s2}"
            pairs["text_relation"].append((caption, f"a {c1} {s1} {inverse} a {c2} {s2}"))
            pairs["text_order"].append((caption, f"a {c2} {s2} {phrase} a {c1} {s1}"))
            pairs["text_binding"].append((caption, f"a {c2} {s1} {phrase} a {c1} {s2}"))
    lm = load_model("fsc-demo", None if run == "random" else run)
    model = lm.model.eval()

    def encode(texts: list[str]):  # unit-norm text embeddings [len(texts), D], 512 at a time
        chunks = [texts[i : i + 512] for i in range(0, len(texts), 512)]
        return torch.cat([model.encode_text(lm.tokenizer(chunk), normalize=True) for chunk in chunks])

    with torch.no_grad():
        return {
            name: float((encode([a for a, _ in texts]) * encode([b for _, b in texts])).sum(dim=1).mean())
            for name, texts in pairs.items()
        }


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
    results, colors = {}, len({o["color"] for r in records for o in r["objects"]})
    for run in args.runs:
        results[run] = run_probes(embed(run, args.world, records), records) | text_similarities(run, records)
        r = results[run]
        print(f"{run}: left/right per pair {r['left_right']:.3f} (chance 0.5), color of a shape {r['binding']:.3f} "
              f"(chance {1 / colors:.3f}); text cosine: relation flip {r['text_relation']:.4f}, "
              f"order swap {r['text_order']:.4f}, color swap {r['text_binding']:.4f}", flush=True)  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
