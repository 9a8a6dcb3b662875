"""Fixtures for the data-layer tests: real PNG files and tables in the on-disk layouts we read."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "pink", "brown", "gray", "cyan"]


def write_png(path: Path, seed: int, size: int = 40) -> None:
    """A small random RGB PNG (real file, decodable by PIL)."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def png_bytes(seed: int, size: int = 40) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def caption(i: int) -> str:
    return f"a {COLORS[i % len(COLORS)]} dog number {i} sitting on a bench"


def negs(i: int) -> list[str]:
    return [f"a bench number {i} sitting on a {COLORS[i % len(COLORS)]} dog", f"a dog sitting under bench {i}"]


@pytest.fixture
def image_rows(tmp_path: Path) -> list[dict]:
    """24 rows: images under tmp_path/images, relative paths, captions and two negatives each."""
    rows = []
    for i in range(24):
        rel = f"images/{i:03d}.png"
        write_png(tmp_path / rel, seed=i)
        rows.append({"filepath": rel, "title": caption(i), "neg_caption": negs(i)})
    return rows


def write_coco_neg_tsv(path: Path, rows: list[dict]) -> Path:
    """The COCO ``train_neg_clip.tsv`` layout: pandas index column, filepath, title, neg_caption (list repr)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["", "title", "filepath", "neg_caption"])
        for i, r in enumerate(rows):
            w.writerow([i, r["title"], r["filepath"], repr(r["neg_caption"])])
    return path


def write_csv(path: Path, rows: list[dict], img_key: str = "image", cap_key: str = "caption") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([img_key, cap_key])
        for r in rows:
            w.writerow([r["filepath"], r["title"]])
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"image": r["filepath"], "caption": r["title"]}) + "\n")
    return path


@pytest.fixture
def dh():
    """This module's helpers (writers for PNGs and tables).

    Several test folders have a ``conftest.py``; under pytest's default import mode they all compete for the
    module name ``conftest``, so we hand out this file's own globals instead of looking the module up by name.
    """
    import types

    return types.SimpleNamespace(**{k: v for k, v in globals().items() if callable(v) and not k.startswith("_")})


@pytest.fixture
def coco_tsv(tmp_path: Path, image_rows: list[dict]) -> Path:
    return write_coco_neg_tsv(tmp_path / "train_neg_clip.tsv", image_rows)


@pytest.fixture
def tok_pre(tiny_model):
    """(tokenizer, train preprocess) of the tiny open_clip model."""
    return tiny_model.tokenizer, tiny_model.preprocess_train
