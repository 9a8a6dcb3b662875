"""Every registered compositional benchmark reads a fixture written in its real native layout.

The fixtures (``eval_fixtures.py``) follow the official releases (docs/evaluation.md, "Benchmark fidelity"): file
names, JSON/CSV fields and folder structure.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import pytest
import torch
from eval_fixtures import WRITERS, write_fixture

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.base import GroupItem, ImageToTextItem, TextToImageItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.embedder import CachedEmbedder

COMPOSITIONAL = [n for n in BENCHMARKS.names() if BENCHMARKS.get(n).kind == "compositional"]


def test_every_compositional_benchmark_has_a_fixture():
    assert sorted(COMPOSITIONAL) == sorted(WRITERS)
    assert len(COMPOSITIONAL) == 13


@pytest.fixture(scope="module")
def embedder(tiny_model):
    return CachedEmbedder(tiny_model, batch_size=32, progress=False)


@pytest.mark.parametrize("name", COMPOSITIONAL)
def test_benchmark_loads_native_fixture(name, tmp_path, embedder):
    expected = write_fixture(name, tmp_path)
    cls = BENCHMARKS.get(name)
    out = cls().run(tmp_path, embedder)
    assert out.counts == expected
    assert list(out.scores) == list(expected)  # published order and names
    assert set(out.scores) == {f"{name}::{s}" for s in cls.sub_scores}
    assert all(0.0 <= v <= 100.0 for v in out.scores.values())
    assert isinstance(out.score, float) and not math.isnan(out.score) and 0.0 <= out.score <= 100.0
    assert out.score == pytest.approx(cls.aggregate(out.scores))


@pytest.mark.parametrize("name", COMPOSITIONAL)
def test_missing_data_is_a_clear_error(name, tmp_path):
    bench = BENCHMARKS.get(name)()
    with pytest.raises(DataNotFoundError) as err:
        bench.load(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / bench.subdir) in msg or str(tmp_path / name) in msg
    assert bench.obtain.split()[0] in msg  # says how to get the data


@pytest.mark.parametrize("name", COMPOSITIONAL)
def test_missing_image_names_the_file(name, tmp_path, embedder):
    expected = write_fixture(name, tmp_path)
    bench = BENCHMARKS.get(name)()
    it = bench.load(tmp_path)[-1]
    path = it.image.path if isinstance(it, ImageToTextItem) else it.images[-1].path
    os.unlink(path)
    if name in ("svo_probes", "vl_checklist"):  # as published, items whose image is missing are skipped
        out = bench.run(tmp_path, embedder)
        assert sum(out.counts.values()) < sum(expected.values())
        assert name == "vl_checklist" or out.extra["skipped_missing_images"] > 1
        return
    named = f"{re.escape(Path(path).name)}|{re.escape(Path(path).parent.name)}, found 9"  # a file or its set folder
    with pytest.raises(DataNotFoundError, match=named):
        bench.run(tmp_path, embedder)


def _direct_sims(lm, item) -> torch.Tensor:
    """Independent path: encode this item's own images/texts directly and return its similarity matrix."""
    from fsc_clip.models import encode

    with torch.no_grad():
        if isinstance(item, ImageToTextItem):
            img = encode(lm.model, images=lm.preprocess_val(item.image.load())[None]).image
            txt = encode(lm.model, texts=lm.tokenizer(list(item.texts))).text
            return (img @ txt.T)[0]
        if isinstance(item, TextToImageItem):
            imgs = torch.stack([lm.preprocess_val(r.load()) for r in item.images])
            img = encode(lm.model, images=imgs).image
            txt = encode(lm.model, texts=lm.tokenizer([item.text])).text
            return (txt @ img.T)[0]
        imgs = torch.stack([lm.preprocess_val(r.load()) for r in item.images])
        img = encode(lm.model, images=imgs).image
        txt = encode(lm.model, texts=lm.tokenizer(list(item.texts))).text
        return txt @ img.T  # [caption, image]


@pytest.mark.parametrize("name", ["sugarcrepe", "imagecode", "winoground", "spec"])
def test_scores_equal_direct_computation(name, tmp_path, tiny_model):
    write_fixture(name, tmp_path)
    bench = BENCHMARKS.get(name)()
    items = bench.load(tmp_path)
    out = bench.run(tmp_path, CachedEmbedder(tiny_model, batch_size=7, progress=False))
    hits: dict[str, list[int]] = {}
    for it in items:
        s = _direct_sims(tiny_model, it)
        if isinstance(it, GroupItem):
            ok = {"text": bool(s[0, 0] > s[1, 0] and s[1, 1] > s[0, 1]),
                  "image": bool(s[0, 0] > s[0, 1] and s[1, 1] > s[1, 0])}  # fmt: skip
            ok["group"] = ok["text"] and ok["image"]
            keys = {f"{it.subset}::{m}" if it.subset else m: v for m, v in ok.items()}
        else:
            others = [float(v) for j, v in enumerate(s) if j != it.label]
            keys = {it.subset: all(float(s[it.label]) > o + 1e-6 for o in others)}
        for k, v in keys.items():
            h = hits.setdefault(f"{name}::{k}", [0, 0])
            h[0] += int(v)
            h[1] += 1
    want = {k: 100.0 * h / n for k, (h, n) in hits.items()}
    assert out.scores == pytest.approx(want)


def test_aro_order_items_drop_identical_perturbations_and_are_seeded(tmp_path):
    write_fixture("aro", tmp_path)
    order = [it for it in BENCHMARKS.get("aro")().load(tmp_path) if it.subset.endswith("_Order")]
    assert all(t != it.texts[0] for it in order for t in it.texts[1:])
    one_word = [it for it in order if it.texts[0] == "cat"]
    assert one_word and all(len(it.texts) == 1 for it in one_word)  # nothing to perturb: trivially correct
    long = [it for it in order if it.texts[0].startswith("a man riding")]
    assert long and any(len(it.texts) == 5 for it in long) and all(len(it.texts) >= 3 for it in long)
    again = [it for it in BENCHMARKS.get("aro")().load(tmp_path) if it.subset.endswith("_Order")]
    assert [it.texts for it in again] == [it.texts for it in order]
    other_seed = [it for it in BENCHMARKS.get("aro")(seed=2).load(tmp_path) if it.subset.endswith("_Order")]
    assert [it.texts for it in other_seed] != [it.texts for it in order]
