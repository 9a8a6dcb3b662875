"""ImageRef loading (crops, .npy BGR frames), content keys and ARO's text perturbations."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.base import ImageRef


def test_image_ref_crop_and_pad(tmp_path):
    arr = np.zeros((20, 30, 3), np.uint8)
    arr[5:10, 10:20] = 255
    Image.fromarray(arr).save(tmp_path / "a.png")
    crop = ImageRef(tmp_path / "a.png", bbox=(10, 5, 10, 5)).load()
    assert crop.size == (10, 5) and np.asarray(crop).min() == 255
    padded = ImageRef(tmp_path / "a.png", bbox=(25, 15, 100, 100)).load()  # past the border: padded, not clamped
    assert padded.size == (100, 100) and np.asarray(padded)[5:, 5:].max() == 0
    degenerate = ImageRef(tmp_path / "a.png", bbox=(10, 10, 0, 5)).load()  # no area: the full image
    assert degenerate.size == (30, 20)


def test_image_ref_npy_bgr(tmp_path):
    arr = np.zeros((4, 4, 3), np.uint8)
    arr[..., 0] = 200  # blue in BGR
    np.save(tmp_path / "f.npy", arr)
    rgb = np.asarray(ImageRef(tmp_path / "f.npy", bgr=True).load())
    assert rgb[0, 0].tolist() == [0, 0, 200]
    assert np.asarray(ImageRef(tmp_path / "f.npy").load())[0, 0].tolist() == [200, 0, 0]


def test_image_ref_key_and_missing(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    a, b = ImageRef(tmp_path / "a.png"), ImageRef(tmp_path / "." / "a.png")
    assert a.key() == b.key()
    assert a.key() != ImageRef(tmp_path / "a.png", bbox=(0, 0, 2, 2)).key()
    with pytest.raises(DataNotFoundError, match=r"missing\.png"):
        ImageRef(tmp_path / "missing.png").load()


def test_aro_pre_caption_and_perturbations():
    import random

    from fsc_clip.evaluation.benchmarks.aro import load_spacy, perturb, pre_caption

    assert pre_caption('A man (riding) a "horse"!  On: the beach.') == "a man riding a horse on the beach"
    assert pre_caption(" ".join(["w"] * 40)).count("w") == 30
    nlp = load_spacy()
    doc = nlp("a young man rides a brown horse on the sandy beach")
    tokens = sorted(t.text for t in doc)

    def run(seed):
        return perturb(doc, np.random.RandomState(seed), random.Random(seed))

    first = run(1)
    assert first == run(1)  # seeded
    assert len(first) == 4 and all(sorted(p.split()) == tokens for p in first)  # permutations of the tokens
    nouns = [t.text for t in doc if t.tag_.startswith("NN")]
    # perturbation 2 keeps nouns and adjectives in place
    kept = [w for w, t in zip(first[1].split(), doc) if t.tag_.startswith(("NN", "JJ"))]
    assert kept == [t.text for t in doc if t.tag_.startswith(("NN", "JJ"))]
    assert nouns
