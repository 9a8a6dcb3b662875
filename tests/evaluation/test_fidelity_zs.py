"""Fidelity of the zero-shot and Karpathy-retrieval adapters to the files as ELEVATER / BLIP / Karpathy distribute them.

Every fixture is written here, in the real layout and with the real quirk (ELEVATER's per-task index names, its
COCO-format indices with 1-based category ids, zips extracted to folders named after them, Karpathy's all-splits
JSON, captions that BLIP's loader cleans). Sources: the ``source`` key of each ``resources/zeroshot/*.json`` and the
module docstrings of ``benchmarks/zeroshot.py`` / ``benchmarks/retrieval.py``.
"""

from __future__ import annotations

import json
import logging
import random
import re

import pytest
import torch
from eval_fixtures import write_png

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError
from fsc_clip.evaluation.benchmarks.zeroshot import load_task, task_names
from fsc_clip.evaluation.tasks.zeroshot import eleven_point_map, mean_per_class_accuracy

ELEVATER_COMMIT = "00d0af78559d5f3d800ae4668210e6bd1f2f84b9"


def _png(path, seed=0):
    write_png(path, seed)  # the shared fixture image writer


# ----- zero-shot: package data ---------------------------------------------------------------------------------
def test_every_task_records_its_elevater_source_and_test_index():
    for task in task_names():
        spec = load_task(task)
        assert spec.index_format in ("iris", "coco") and spec.index_file and spec.archives, task
    # vision_datasets.json at the recorded commit: the four COCO-format tasks and the two odd iris index names
    coco = {t: load_task(t).index_file for t in task_names() if load_task(t).index_format == "coco"}
    assert coco == {"imagenet-1k": "val.json", "kitti-distance": "test_meta.json", "hateful-memes": "test_meta.json",
                    "resisc45-clip": "test.json"}  # fmt: skip
    assert load_task("voc2007classification").index_file == "test_ic.txt"
    assert load_task("cifar100").index_file == "test_images.txt"
    from importlib import resources

    folder = resources.files("fsc_clip") / "resources" / "zeroshot"
    for task in (*task_names(), "tasks"):
        assert ELEVATER_COMMIT in json.loads((folder / f"{task}.json").read_text(encoding="utf-8"))["source"], task


# sha256(json.dumps([class names (first synonym), templates], ensure_ascii=False))[:16], computed from
# vision_benchmark/datasets/prompts.py (class_map / template_map under each yaml's DATASET.DATASET id) at
# Elevater_Toolkit_IC@00d0af78559d5f3d800ae4668210e6bd1f2f84b9, not from our files: pins names, order and templates.
ELEVATER_PROMPTS_SHA = {
    "caltech101": "77e47f3e26b7d42c", "cifar10": "8fd45ee96f833ca3", "cifar100": "39304a158a03929a",
    "country211": "80194606adfcb78b", "dtd": "e9ba80ec3b0c8487", "eurosat-clip": "06ba55474f15b654",
    "fer2013": "c6edc066992a90d8", "fgvc-aircraft-2013b": "5c9d883620461093", "flower102": "69828d101c2acfd0",
    "food101": "7b7f100e933faa90", "gtsrb": "b90ab45ae0001545", "hateful-memes": "3bebe22d6c620f31",
    "imagenet-1k": "013c913e922205eb", "kitti-distance": "50587de443fbe1cf", "mnist": "2886561c388e6dec",
    "oxford-iiit-pets": "79be5066ffde9427", "patchcamelyon": "39c58d87bca4ed8a", "rendered-sst2": "a6c32e68a3b269e9",
    "resisc45-clip": "3642784ea2c9f73d", "stanfordcar": "2eb1c96d13448b2c", "voc2007classification": "55395d67201b56c0",
}  # fmt: skip


def test_class_names_and_templates_equal_elevater_prompts():
    import hashlib

    assert set(ELEVATER_PROMPTS_SHA) == set(task_names())
    for task, digest in ELEVATER_PROMPTS_SHA.items():
        spec = load_task(task)
        blob = json.dumps([list(spec.classnames), list(spec.templates)], ensure_ascii=False)
        assert hashlib.sha256(blob.encode()).hexdigest()[:16] == digest, task


# ----- zero-shot: ELEVATER layouts ----------------------------------------------------------------------------
def test_voc_elevater_index_test_ic_with_zip_extracted_to_test_folder(tmp_path):
    # ELEVATER's VOC: test_ic.txt lines "test.zip@<path> <labels>"; test.zip extracted becomes test/, the same name
    # as the image-folder layout, so the index must win over reading test/ as class folders.
    root = tmp_path / "elevater" / "voc2007classification"
    lines = ["test.zip@JPEGImages/000001.jpg 11,14", "test.zip@JPEGImages/000002.jpg 6"]
    for k in (1, 2):
        _png(root / "test" / "JPEGImages" / f"00000{k}.jpg", k)
    (root / "test_ic.txt").write_text("\n".join(lines) + "\n")
    refs, labels, layout = BENCHMARKS.get("zs-voc2007classification")().load_samples(tmp_path)
    assert layout == "test_ic.txt" and labels == [[11, 14], [6]]
    assert [r.path.name for r in refs] == ["000001.jpg", "000002.jpg"]


def test_cifar100_elevater_index_name(tmp_path):
    root = tmp_path / "elevater" / "cifar100"
    _png(root / "test_images" / "a.png")
    (root / "test_images.txt").write_text("test_images.zip@a.png 99\n")
    refs, labels, layout = BENCHMARKS.get("zs-cifar100")().load_samples(tmp_path)
    assert (layout, labels, refs[0].path.name) == ("test_images.txt", [[99]], "a.png")


def _coco_index(root, cats, images, anns, name="test_meta.json"):
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


def test_coco_format_index_maps_sorted_category_ids(tmp_path):
    # kitti-distance as ELEVATER ships it: test_meta.json + test_images.zip; ids start at 1 and the categories are
    # listed out of order: the class index is the position in *sorted id* order (vision-datasets' adaptor).
    root = tmp_path / "elevater" / "kitti-distance"
    cats = [{"id": 3, "name": "c"}, {"id": 1, "name": "a"}, {"id": 4, "name": "d"}, {"id": 2, "name": "b"}]
    images = [{"id": 2, "file_name": "img/2.png", "zip_file": "test_images.zip"},
              {"id": 1, "file_name": "img/1.png", "zip_file": "test_images.zip"},
              {"id": 3, "file_name": "plain/3.png"}]  # fmt: skip
    anns = [{"id": 1, "image_id": 1, "category_id": 4}, {"id": 2, "image_id": 2, "category_id": 1},
            {"id": 3, "image_id": 3, "category_id": 3}]  # fmt: skip
    _png(root / "test_images" / "img" / "1.png", 1)
    _png(root / "test_images" / "img" / "2.png", 2)
    _png(root / "plain" / "3.png", 3)
    _coco_index(root, cats, images, anns)
    refs, labels, layout = BENCHMARKS.get("zs-kitti-distance")().load_samples(tmp_path)
    assert layout == "test_meta.json"
    assert [r.path.name for r in refs] == ["1.png", "2.png", "3.png"]  # image id order
    assert labels == [[3], [0], [2]]  # category 4 -> 3, 1 -> 0, 3 -> 2


def test_coco_format_schema_errors_name_file_record_field(tmp_path):
    root = tmp_path / "elevater" / "hateful-memes"
    _png(root / "img" / "1.png")
    cats = [{"id": 1, "name": "meme"}, {"id": 2, "name": "hatespeech meme"}]
    images = [{"id": 1, "file_name": "1.png", "zip_file": "img.zip"}]
    bench = BENCHMARKS.get("zs-hateful-memes")()
    _coco_index(root, cats, images, [{"id": 1, "image_id": 1, "category_id": 2}, {"id": 2, "image_id": 1}])
    with pytest.raises(SchemaError, match=r"test_meta\.json: record 'annotations\[1\]' has no field 'category_id'"):
        bench.load_samples(tmp_path)
    _coco_index(root, cats, [{"id": 1, "zip_file": "img.zip"}], [])
    with pytest.raises(SchemaError, match=r"record 'images\[0\]' has no field 'file_name'"):
        bench.load_samples(tmp_path)
    _coco_index(root, cats[:1], images, [])
    with pytest.raises(SchemaError, match="1 categories but the task has 2 classes"):
        bench.load_samples(tmp_path)
    _coco_index(root, cats, images, [{"id": 1, "image_id": 7, "category_id": 1}])
    with pytest.raises(SchemaError, match=r"annotations\[0\] refers to an unknown image_id 7"):
        bench.load_samples(tmp_path)
    _coco_index(root, cats, images, [])  # a single-label image without annotation
    with pytest.raises(SchemaError, match=r"image id 1: single-label task but got 0 labels"):
        bench.load_samples(tmp_path)


def test_iris_line_without_label_is_a_schema_error(tmp_path):
    root = tmp_path / "elevater" / "dtd"
    _png(root / "a.png")
    (root / "test.txt").write_text("a.png 3\nb.png\n")
    with pytest.raises(SchemaError, match=r"test\.txt:2: expected '<image path> <label\(s\)>'"):
        BENCHMARKS.get("zs-dtd")().load_samples(tmp_path)


# ----- zero-shot: incomplete data -----------------------------------------------------------------------------
def test_index_with_missing_images_errors_or_scores_present_with_allow_partial(tmp_path, caplog):
    root = tmp_path / "elevater" / "gtsrb"
    _png(root / "final_test" / "0.png", 0)
    _png(root / "final_test" / "2.png", 2)
    (root / "test.txt").write_text("".join(f"final_test.zip@{k}.png {k}\n" for k in range(3)))
    with pytest.raises(DataNotFoundError, match=r"1 of the 3 test images listed in .*test\.txt are missing.*1\.png"):
        BENCHMARKS.get("zs-gtsrb")().load_samples(tmp_path)
    bench = BENCHMARKS.get("zs-gtsrb")(allow_partial=True)
    with caplog.at_level(logging.WARNING):
        _, labels, _ = bench.load_samples(tmp_path)
    assert labels == [[0], [2]] and bench.extra_info()["missing_images"] == 1
    assert "1 of the 3 test images" in caplog.text


def test_class_folders_missing_some_classes(tmp_path):
    root = tmp_path / "elevater" / "mnist" / "test"
    for c in (0, 1, 2):
        _png(root / str(c) / "x.png", c)
    with pytest.raises(DataNotFoundError, match=r"no images for 7 of 10 classes, e\.g\. \['3', '4', '5'"):
        BENCHMARKS.get("zs-mnist")().load_samples(tmp_path)
    bench = BENCHMARKS.get("zs-mnist")(allow_partial=True)
    _, labels, _ = bench.load_samples(tmp_path)
    assert labels == [[0], [1], [2]] and bench.extra_info()["missing_classes"] == 7


def test_cli_names_the_missing_images_without_traceback(tmp_path, capsys):
    from fsc_clip.cli.main import main

    root = tmp_path / "data" / "elevater" / "cifar10"
    _png(root / "val" / "a.png")
    (root / "test.txt").write_text("val.zip@a.png 0\nval.zip@b.png 1\n")
    argv = ["eval", "--model", "fsc-tiny", "--random-init", "--benchmarks", "zs-cifar10",
            "--data-root", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "1 of the 2 test images" in err and "b.png" in err and "Traceback" not in err


# ----- zero-shot: metrics against ports of the official code --------------------------------------------------
def _sklearn_pr_curve(y, s):
    """float64 port of sklearn ``precision_recall_curve``: points at distinct thresholds, recall descending,
    plus the end point (1, 0)."""
    order = sorted(range(len(s)), key=lambda i: -s[i])
    points, tp, fp = [], 0, 0
    for rank, i in enumerate(order):
        tp, fp = tp + y[i], fp + 1 - y[i]
        if rank == len(order) - 1 or s[order[rank + 1]] != s[i]:
            points.append((tp / (tp + fp), tp / sum(y)))
    return [p for p, _ in reversed(points)] + [1.0], [r for _, r in reversed(points)] + [0.0]


def _elevater_ap11(y, s):
    """vision-evaluation ``PrecisionRecallCurveMixin._calc_precision_recall_interp`` with 11 thresholds 1..0."""
    precision, recall = _sklearn_pr_curve(y, s)
    out, idx, tmp = [], 0, 0.0
    for threshold in [1 - k / 10 for k in range(11)]:
        while idx < len(recall) and threshold <= recall[idx]:
            tmp = max(tmp, precision[idx])
            idx += 1
        out.append(tmp)
    return sum(out) / len(out)


def test_eleven_point_map_equals_port_of_vision_evaluation():
    rng = random.Random(0)
    for _ in range(20):
        n, c = rng.randint(3, 30), rng.randint(1, 5)
        scores = [[round(rng.random(), 1) for _ in range(c)] for _ in range(n)]  # rounded: ties occur
        targets = [[rng.randint(0, 1) for _ in range(c)] for _ in range(n)]
        for j in range(c):
            targets[rng.randrange(n)][j] = 1  # every class has a positive (as in VOC 2007 test)
        ref = sum(_elevater_ap11([t[j] for t in targets], [s[j] for s in scores]) for j in range(c)) / c
        assert eleven_point_map(torch.tensor(scores), torch.tensor(targets)) == pytest.approx(ref, abs=1e-12)


def test_mean_per_class_equals_balanced_accuracy_of_argmax():
    rng = random.Random(1)
    for _ in range(20):
        n, c = rng.randint(2, 40), rng.randint(2, 6)
        scores = [[rng.random() for _ in range(c)] for _ in range(n)]  # continuous: no ties, argmax = strict rule
        labels = [rng.randrange(c) for _ in range(n)]
        pred = [max(range(c), key=lambda k: s[k]) for s in scores]
        per_class = [sum(p == y for p, y in zip(pred, labels) if y == k) / labels.count(k) for k in set(labels)]
        ref = sum(per_class) / len(per_class)  # sklearn balanced_accuracy_score (ELEVATER's mean-per-class)
        got = mean_per_class_accuracy(torch.tensor(scores), torch.tensor(labels))
        assert got == pytest.approx(ref, abs=1e-12)


# ----- retrieval: Karpathy-format files ----------------------------------------------------------------------
def _blip_caption(caption, max_words=30):
    """BLIP ``data/utils.py`` pre_caption, transcribed."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption).rstrip("\n").strip(" ")
    words = caption.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else caption


RAW = ["A Man riding a HORSE.", "Two dogs (brown) play: fetch!", " ".join(f"w{k}" for k in range(35)) + "."]


def test_blip_captions_are_cleaned_like_blip(tmp_path):
    root = tmp_path / "flickr30k"
    _png(root / "flickr30k-images" / "1.jpg")
    (root / "flickr30k_test.json").write_text(json.dumps([{"image": "flickr30k-images/1.jpg", "caption": RAW}]))
    bench = BENCHMARKS.get("flickr30k")()
    _, captions, owner = bench.load_pool(tmp_path)
    assert captions == ["a man riding a horse", "two dogs brown play fetch", " ".join(f"w{k}" for k in range(30))]
    assert captions == [_blip_caption(c) for c in RAW] and owner == [0, 0, 0]
    assert bench.extra_info()["captions"] == "pre_caption(max_words=30)"
    assert BENCHMARKS.get("flickr30k")(raw_captions=True).load_pool(tmp_path)[1] == RAW


def _karpathy_image(split, filename, raws, filepath=None):
    sentences = [{"raw": r, "tokens": r.lower().split(), "imgid": 0, "sentid": k} for k, r in enumerate(raws)]
    rec = {"split": split, "filename": filename, "imgid": 0, "sentids": [], "sentences": sentences}
    return {**rec, "filepath": filepath} if filepath else rec


def test_karpathy_dataset_coco_json_reads_test_split_only(tmp_path):
    root = tmp_path / "coco_karpathy"
    images = [_karpathy_image("train", "COCO_train2014_000000000009.jpg", ["x"], "train2014"),
              _karpathy_image("test", "COCO_val2014_000000000042.jpg", RAW[:2], "val2014"),
              _karpathy_image("restval", "COCO_val2014_000000000073.jpg", ["y"], "val2014"),
              _karpathy_image("test", "COCO_val2014_000000000074.jpg", RAW, "val2014")]  # fmt: skip
    for rec in images:
        if rec["split"] == "test":
            _png(root / rec["filepath"] / rec["filename"])
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    bench = BENCHMARKS.get("coco_karpathy")()
    refs, captions, owner = bench.load_pool(tmp_path)
    assert [r.path.name for r in refs] == ["COCO_val2014_000000000042.jpg", "COCO_val2014_000000000074.jpg"]
    assert captions == [_blip_caption(c) for c in RAW[:2] + RAW] and owner == [0, 0, 1, 1, 1]
    assert bench.extra_info()["annotation"] == "dataset_coco.json"


def test_karpathy_dataset_flickr30k_json_has_no_filepath(tmp_path):
    root = tmp_path / "flickr30k"
    _png(root / "flickr30k-images" / "1000092795.jpg")
    images = [_karpathy_image("test", "1000092795.jpg", RAW[:1]), _karpathy_image("val", "99.jpg", ["z"])]
    (root / "dataset_flickr30k.json").write_text(json.dumps({"images": images, "dataset": "flickr30k"}))
    refs, captions, _ = BENCHMARKS.get("flickr30k")().load_pool(tmp_path)
    assert refs[0].path == root / "flickr30k-images" / "1000092795.jpg" and captions == ["a man riding a horse"]


def test_karpathy_schema_errors_name_file_record_field(tmp_path):
    root = tmp_path / "coco_karpathy"
    _png(root / "val2014" / "a.jpg")
    ok = {"image": "val2014/a.jpg", "caption": ["a"]}
    (root / "coco_karpathy_test.json").write_text(json.dumps([ok, {"image": "val2014/a.jpg", "captions": ["a"]}]))
    with pytest.raises(SchemaError, match=r"coco_karpathy_test\.json: record 1 has no field 'caption'"):
        BENCHMARKS.get("coco_karpathy")().load_pool(tmp_path)
    (root / "coco_karpathy_test.json").unlink()
    bad = _karpathy_image("test", "a.jpg", ["a"], "val2014")
    bad["sentences"][0].pop("raw")
    (root / "dataset_coco.json").write_text(json.dumps({"images": [bad]}))
    with pytest.raises(SchemaError, match=r"record 'images\[0\]\.sentences\[0\]' has no field 'raw'"):
        BENCHMARKS.get("coco_karpathy")().load_pool(tmp_path)
    (root / "dataset_coco.json").write_text(json.dumps({"images": [_karpathy_image("val", "a.jpg", ["a"])]}))
    with pytest.raises(SchemaError, match="lists no test images"):
        BENCHMARKS.get("coco_karpathy")().load_pool(tmp_path)


def test_karpathy_missing_images_error_or_dropped_with_their_captions(tiny_model, tmp_path):
    from fsc_clip.evaluation.embedder import CachedEmbedder

    root = tmp_path / "flickr30k"
    recs = [{"image": f"flickr30k-images/{k}.jpg", "caption": [f"cap {k} {j}" for j in range(2 + k)]} for k in range(3)]
    for k in (0, 2):
        _png(root / "flickr30k-images" / f"{k}.jpg", k)
    (root / "flickr30k_test.json").write_text(json.dumps(recs))
    with pytest.raises(
        DataNotFoundError, match=r"1 of the 3 images listed in .*flickr30k_test\.json are missing.*1\.jpg"
    ):
        BENCHMARKS.get("flickr30k")().load_pool(tmp_path)
    bench = BENCHMARKS.get("flickr30k")(allow_partial=True)
    refs, captions, owner = bench.load_pool(tmp_path)
    assert [r.path.name for r in refs] == ["0.jpg", "2.jpg"]
    assert captions == ["cap 0 0", "cap 0 1", "cap 2 0", "cap 2 1", "cap 2 2", "cap 2 3"]
    assert owner == [0, 0, 1, 1, 1, 1]
    out = bench.run(tmp_path, CachedEmbedder(tiny_model, progress=False))
    assert out.extra["missing_images"] == 1 and out.counts["flickr30k::i2t/R@1"] == 2
    assert out.counts["flickr30k::t2i/R@1"] == 6
