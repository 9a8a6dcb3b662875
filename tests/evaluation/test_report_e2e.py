"""End to end on a tiny model: `fsc-clip eval --benchmarks zeroshot,retrieval` over fixtures, then `fsc-clip report`."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_retrieval_benchmarks import write_fixture as write_retrieval
from test_zeroshot_benchmarks import write_fixture as write_zeroshot


def test_eval_zeroshot_and_retrieval_then_report(tmp_path, capsys):
    from fsc_clip.cli.main import main

    data = tmp_path / "data"
    write_zeroshot(data, "cifar10", "folders")
    write_zeroshot(data, "voc2007classification", "labels")
    for name in ("coco_karpathy", "flickr30k", "coco_counterfactuals"):
        write_retrieval(data, name)
    runs = []
    for run_name, which in (("tiny-a", "zeroshot,retrieval"), ("tiny-b", "retrieval")):
        out = tmp_path / "results" / run_name
        argv = ["eval", "--model", "fsc-tiny", "--benchmarks", which, "--data-root", str(data),
                "--output", str(out), "--batch-size", "8", "--no-progress"]  # fmt: skip
        assert main(argv) == 0
        runs.append(out)
    written = sorted(p.name for p in runs[0].glob("*.json"))
    assert {"zs-cifar10.json", "zs-voc2007classification.json", "coco_karpathy.json", "flickr30k.json",
            "coco_counterfactuals.json"} <= set(written)  # fmt: skip
    assert "zs-mnist.json" not in written  # missing data is skipped for group words
    res = json.loads((runs[0] / "coco_karpathy.json").read_text())
    assert res["kind"] == "retrieval" and set(res["scores"]) == {
        f"coco_karpathy::{d}/R@{k}" for d in ("i2t", "t2i") for k in (1, 5, 10)
    }
    zs = json.loads((runs[0] / "zs-voc2007classification.json").read_text())
    assert list(zs["scores"]) == ["elevator::voc2007classification"] and zs["extra"]["metric"] == "11point_mAP"

    rep = tmp_path / "report"
    assert main(["report", *map(str, runs), "--profile", "fsc", "--output", str(rep), "--baseline", "tiny-a"]) == 0
    rows = list(csv.DictReader((rep / "summary.csv").open()))
    assert [r["run"] for r in rows] == ["tiny-a", "tiny-b"]
    a = json.loads((runs[0] / "coco_karpathy.json").read_text())["scores"]
    f = json.loads((runs[0] / "flickr30k.json").read_text())["scores"]
    c = json.loads((runs[0] / "coco_counterfactuals.json").read_text())["scores"]
    expected = (a["coco_karpathy::i2t/R@1"] + f["flickr30k::i2t/R@1"] + c["coco_counterfactuals::i2t/R@1"]) / 3
    assert abs(float(rows[0]["I2T"]) - expected) < 1e-9
    assert rows[0]["ZS"] == ""  # only 2 of the 21 tasks were evaluated
    assert rows[0]["zs_tasks"] == "2"
    assert (rep / "plots" / "comp_vs_zs.png").stat().st_size > 0
