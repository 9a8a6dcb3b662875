"""Tiny on-disk training data written by the tests: a TSV of PNG images + captions (+ negatives).

The toy world is learnable: each 32×32 image has a left and a right half in two of eight colors, and
its caption names them ("a red left and a blue right"). The precomputed negatives (JSONL, three
types) swap or replace the colors, some captions lack some types (mask coverage).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

COLORS = {
    "red": (220, 30, 30),
    "green": (30, 200, 30),
    "blue": (30, 30, 220),
    "yellow": (230, 220, 30),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
    "purple": (140, 30, 160),
    "orange": (250, 140, 20),
}


def write_toy_data(root: Path, n: int = 48, seed: int = 0) -> dict[str, Path]:
    """Write ``n`` image–caption pairs; returns the TSV and negatives JSONL paths."""
    from PIL import Image

    rng = random.Random(seed)
    names = list(COLORS)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows, negs = ["filepath\ttitle\tneg_caption"], []
    for i in range(n):
        left, right = rng.sample(names, 2)
        img = Image.new("RGB", (32, 32), COLORS[left])
        img.paste(Image.new("RGB", (16, 32), COLORS[right]), (16, 0))
        img.save(root / "images" / f"{i:04d}.png")
        caption = f"a {left} left and a {right} right"
        swapped = f"a {right} left and a {left} right"
        other = rng.choice([c for c in names if c not in (left, right)])
        replaced = f"a {left} left and a {other} right"
        shuffled = f"left a {left} and right a {right}"
        rows.append(f"images/{i:04d}.png\t{caption}\t{json.dumps([swapped])}")
        entry = {"negclip": [swapped], "replace": [replaced]}
        if i % 3:  # a third of the captions lack the shuffle type
            entry["ngram_shuffle_2"] = [shuffled]
        negs.append({"caption": caption, "negatives": entry})
    tsv = root / "train.tsv"
    tsv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    jsonl = root / "negatives.jsonl"
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in negs), encoding="utf-8")
    return {"tsv": tsv, "negatives": jsonl}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine two spinning threads per process are several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_toy_data(tmp_path_factory.mktemp("toy"))


def base_args(data: dict[str, Path], out: Path, name: str) -> list[str]:
    """CLI arguments shared by the tests: tiny model, CPU, fp32, no augmentation, quiet."""
    return [
        "train",
        "--train-data", str(data["tsv"]),
        "--model", "fsc-tiny",
        "--pretrained", "none",
        "--device", "cpu",
        "--precision", "fp32",
        "--output", str(out),
        "--name", name,
        "--warmup", "2",
        "--lr", "1e-3",
        "--seed", "0",
        "--set", "model.augment=false",
        "--set", "logging.progress=false",
        "--set", "logging.every_n_steps=1",
    ]  # fmt: skip


def env_for_subprocess() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


def assert_weights_close(got: dict, want: dict, rtol: float = 1e-4, atol: float = 2e-5) -> None:
    """Compare two state dicts after a few AdamW steps of mathematically identical training.

    The key-bias block ``[D:2D]`` of every ``attn.in_proj_bias`` has an exactly-zero true gradient (softmax
    ignores a per-query constant); what it receives is float round-off that Adam normalises, so it is
    compared loosely.
    """
    import torch

    for key, value in want.items():
        other = got[key]
        if key.endswith("attn.in_proj_bias"):
            d = value.shape[0] // 3
            torch.testing.assert_close(other[d : 2 * d], value[d : 2 * d], rtol=0, atol=2e-4, msg=key)
            other, value = torch.cat([other[:d], other[2 * d :]]), torch.cat([value[:d], value[2 * d :]])
        torch.testing.assert_close(other, value, rtol=rtol, atol=atol, msg=key)
