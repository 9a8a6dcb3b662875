"""Zero-shot tasks: package data as published, every registered task loads fixtures in both layouts, runs."""

from __future__ import annotations

import json

import pytest
import torch
from eval_fixtures import write_png

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks.zeroshot import _norm_class, load_task, task_names

# ELEVATER (docs/evaluation.md, zero-shot table): column -> (#classes, #templates, metric, published test N)
PUBLISHED = {
    "caltech101": (102, 34, "mean-per-class", 6084),
    "cifar10": (10, 18, "accuracy", 10000),
    "cifar100": (100, 18, "accuracy", 10000),
    "country211": (211, 5, "accuracy", 21100),
    "dtd": (47, 8, "accuracy", 1880),
    "eurosat-clip": (10, 3, "accuracy", 5000),
    "fer2013": (7, 6, "accuracy", 3589),
    "fgvc-aircraft-2013b": (100, 2, "mean-per-class", 3333),
    "flower102": (102, 1, "mean-per-class", 6149),
    "food101": (101, 1, "accuracy", 25250),
    "gtsrb": (43, 3, "accuracy", 12630),
    "hateful-memes": (2, 1, "roc_auc", 500),
    "imagenet-1k": (1000, 80, "accuracy", 50000),
    "kitti-distance": (4, 1, "accuracy", 711),
    "mnist": (10, 1, "accuracy", 10000),
    "oxford-iiit-pets": (37, 1, "mean-per-class", 3669),
    "patchcamelyon": (2, 1, "accuracy", 32768),
    "rendered-sst2": (2, 1, "accuracy", 1821),
    "resisc45-clip": (45, 18, "accuracy", 25200),
    "stanfordcar": (196, 8, "accuracy", 8041),
    "voc2007classification": (20, 1, "11point_mAP", 4952),
}
ZS_BENCHMARKS = [n for n in BENCHMARKS.names() if BENCHMARKS.get(n).kind == "zeroshot"]


def test_21_tasks_with_published_classes_templates_metrics():
    assert set(task_names()) == set(PUBLISHED)
    assert sorted(ZS_BENCHMARKS) == sorted(f"zs-{t}" for t in PUBLISHED)
    for name, (n_cls, n_tpl, metric, n_test) in PUBLISHED.items():
        spec = load_task(name)
        assert (len(spec.classnames), len(spec.templates), spec.metric, spec.test_size) == (
            n_cls,
            n_tpl,
            metric,
            n_test,
        )
        assert all("{}" in t for t in spec.templates), name
        assert spec.multilabel == (name == "voc2007classification")


def test_task_specifics():
    assert load_task("cifar100").classnames[:4] == ("chimpanzee", "trout", "skunk", "spider")  # ELEVATER order
    assert load_task("cifar10").templates == load_task("cifar100").templates  # CIFAR-10 uses CIFAR-100's
    assert load_task("fer2013").classnames[3] == "happy"  # first synonym
    assert load_task("hateful-memes").classnames == ("meme", "hatespeech meme")
    assert load_task("hateful-memes").templates == ("a {}.",)
    assert load_task("kitti-distance").templates == ("{}",)
    assert load_task("rendered-sst2").templates == ("a {} review of a movie.",)
    assert load_task("imagenet-1k").classnames[0] == "tench"


def _png(path, seed=0):
    write_png(path, seed)  # the shared fixture image writer


def _folder_name(task, idx, style):
    names = load_task(task).classnames
    if style == "name":
        norm = _norm_class(names[idx])
        if norm and not norm.isdigit() and sum(_norm_class(c) == norm for c in names) == 1:
            return names[idx].replace("/", "_")
    return f"{idx:03d}" if style == "padded" else str(idx)


def write_fixture(data_root, task, layout, all_classes=False):
    """2 images for each of 3 classes (first, second, last); returns the expected label lists in load order.

    With ``all_classes`` (folders layout) every other class gets one image too, so the folder set is complete.
    """
    spec = load_task(task)
    root = data_root / "elevater" / task
    classes = [0, 1, len(spec.classnames) - 1]
    expected = []
    if layout == "labels":
        lines = []
        for n, c in enumerate(classes * 2):
            labs = sorted({c, (c + 1) % len(spec.classnames)}) if spec.multilabel else [c]
            rel = f"test.zip@img/{n}.png" if n % 2 else f"images/{n}.png"
            _png(root / ("test/img" if n % 2 else "images") / f"{n}.png", n)
            lines.append(f"{rel}\t{','.join(map(str, labs))}")
            expected.append(labs)
        (root / "test.txt").write_text("# comment line\n" + "\n".join(lines) + "\n")
    else:
        folder_class = {_folder_name(task, c, s): c for c, s in zip(classes, ["plain", "padded", "name"])}
        others = [c for c in range(len(spec.classnames)) if c not in classes] if all_classes else []
        folder_class.update({_folder_name(task, c, "plain"): c for c in others})
        for folder, c in folder_class.items():
            for k in range(1 if c in others else 2):
                _png(root / "test" / folder / f"{c}_{k}.png", c * 10 + k)
        # folders are read in sorted name order; recompute the expected order like a user would read it
        for d in sorted((root / "test").iterdir()):
            c = folder_class[d.name]
            expected += [[c]] * len(list(d.iterdir()))
    return expected


@pytest.mark.parametrize("layout", ["labels", "folders"])
@pytest.mark.parametrize("name", ZS_BENCHMARKS)
def test_every_task_loads_its_fixture(tmp_path, name, layout):
    bench = BENCHMARKS.get(name)(allow_partial=layout == "folders")  # the fixture has 3 classes
    expected = write_fixture(tmp_path, bench.task_name, layout)
    refs, labels, used = bench.load_samples(tmp_path)
    assert len(refs) == 6 and all(r.exists() for r in refs)
    assert labels == expected
    assert used == ("test.txt" if layout == "labels" else "test/<class>/")


def test_voc_folder_layout_merges_multilabel_files(tmp_path):
    root = tmp_path / "elevater" / "voc2007classification" / "test"
    _png(root / "person" / "a.png", 1)
    _png(root / "14" / "b.png", 2)
    _png(root / "dog" / "a.png", 1)  # the same image filed under two classes
    refs, labels, _ = BENCHMARKS.get("zs-voc2007classification")(allow_partial=True).load_samples(tmp_path)
    assert [r.path.name for r in refs] == ["b.png", "a.png"]  # class folders in sorted order: 14, dog, person
    assert labels == [[14], [11, 14]]


def test_unnamed_class_folders_map_by_sorted_order(tmp_path):
    root = tmp_path / "elevater" / "cifar10" / "test"
    for i in range(10):  # e.g. ImageNet-style WNID folders: one per class, names unknown to the task
        _png(root / f"n{1000 + i:08d}" / "x.png", i)
    bench = BENCHMARKS.get("zs-cifar10")()
    _, labels, _ = bench.load_samples(tmp_path)
    assert labels == [[i] for i in range(10)] and "sorted folder order" in bench.extra_info()["class_folders"]
    (root / "n00001000" / "x.png").rename(root / "x.png")
    (root / "n00001000").rmdir()  # 9 folders: the names cannot be mapped
    with pytest.raises(DataNotFoundError, match="neither an index"):
        bench.load_samples(tmp_path)


def test_missing_and_bad_data_errors(tmp_path):
    bench = BENCHMARKS.get("zs-cifar10")()
    with pytest.raises(DataNotFoundError, match=r"elevater/cifar10"):
        bench.check(tmp_path)
    root = tmp_path / "elevater" / "cifar10"
    _png(root / "x.png", 0)
    (root / "test.txt").write_text("x.png 10\n")
    with pytest.raises(DataNotFoundError, match="neither an index"):
        bench.load_samples(tmp_path)
    (root / "test.txt").write_text("missing.png 1\n")
    with pytest.raises(DataNotFoundError, match=r"1 of the 1 test images listed in .*test.txt are missing"):
        bench.load_samples(tmp_path)
    (root / "test.txt").write_text("x.png 1,2\n")
    with pytest.raises(DataNotFoundError, match="single-label"):
        bench.load_samples(tmp_path)


def test_limit_option_subsamples_evenly(tmp_path):
    write_fixture(tmp_path, "cifar10", "labels")
    refs, _, _ = BENCHMARKS.get("zs-cifar10")(limit=3).load_samples(tmp_path)
    assert len(refs) == 3 and [r.path.name for r in refs] == ["0.png", "2.png", "4.png"]


@pytest.mark.parametrize(
    "name,layout",
    [("zs-cifar10", "folders"), ("zs-voc2007classification", "labels"), ("zs-hateful-memes", "labels"),
     ("zs-oxford-iiit-pets", "folders")],
)  # fmt: skip
def test_run_matches_direct_computation(tiny_model, tmp_path, name, layout):
    from fsc_clip.evaluation.embedder import CachedEmbedder
    from fsc_clip.evaluation.tasks.zeroshot import compute_metric
    from fsc_clip.models import encode

    bench = BENCHMARKS.get(name)(allow_partial=True)  # folder fixtures hold 3 of the classes
    write_fixture(tmp_path, bench.task_name, layout)
    out = bench.run(tmp_path, CachedEmbedder(tiny_model, progress=False))
    key = f"elevator::{bench.task_name}"
    assert list(out.scores) == [key] and out.counts == {key: 6}
    assert 0.0 <= out.score <= 100.0 and out.score == out.scores[key]
    assert out.extra["metric"] == PUBLISHED[bench.task_name][2]

    # independent path: raw encode of preprocessed images and prompts, per-class loop
    spec = bench.spec
    refs, labels, _ = bench.load_samples(tmp_path)
    with torch.no_grad():
        img = encode(tiny_model.model, images=torch.stack([tiny_model.preprocess_val(r.load()) for r in refs])).image
        cols = []
        for c in spec.classnames:
            t = encode(tiny_model.model, texts=tiny_model.tokenizer([tp.format(c) for tp in spec.templates])).text
            m = (t / t.norm(dim=-1, keepdim=True)).mean(0)
            cols.append(m / m.norm())
    probs = (100 * img @ torch.stack(cols, 1)).softmax(-1)
    if spec.multilabel:
        target = torch.zeros(len(refs), len(spec.classnames), dtype=torch.long)
        for i, labs in enumerate(labels):
            target[i, labs] = 1
    else:
        target = torch.tensor([lab[0] for lab in labels])
    assert out.score == pytest.approx(100 * compute_metric(spec.metric, probs, target), abs=1e-3)
    json.dumps(out.extra)  # serialisable
