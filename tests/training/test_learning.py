"""The trainer actually learns: loss falls on the learnable toy set; bad samples are skipped and counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fsc_clip.cli.main import main

from .conftest import base_args


def _losses(run: Path, key: str = "loss") -> list[float]:
    return [json.loads(line)[key] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_fsc_clip_loss_decreases_over_a_few_dozen_steps(toy_data, tmp_path: Path):
    argv = [*base_args(toy_data, tmp_path, "learn"), "--loss-name", "fsc-clip", "--add-random-text-hard-negatives"]
    argv += ["precomputed", "--precomputed-negatives", str(toy_data["negatives"]), "--batch-size", "8"]
    argv += ["--epochs", "4", "--lr-scheduler", "const", "--set", "checkpoint.every_n_steps=0"]
    assert main(argv) == 0
    losses = _losses(tmp_path / "learn")
    assert len(losses) == 24
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    clip = _losses(tmp_path / "learn", "clip_loss")
    assert sum(clip[-5:]) < sum(clip[:5])


def test_bad_samples_are_skipped_and_counted(toy_data, tmp_path: Path):
    data = tmp_path / "bad"
    shutil.copytree(toy_data["tsv"].parent, data)
    (data / "images" / "0001.png").write_bytes(b"not a png")  # corrupt
    (data / "images" / "0002.png").unlink()  # missing
    lines = (data / "train.tsv").read_text().splitlines()
    path, _caption, negs = lines[4].split("\t")
    lines[4] = f"{path}\t \t{negs}"  # empty caption
    (data / "train.tsv").write_text("\n".join(lines) + "\n")
    bad = {"tsv": data / "train.tsv", "negatives": data / "negatives.jsonl"}
    argv = [*base_args(bad, tmp_path, "skip"), "--loss-name", "clip", "--batch-size", "16", "--epochs", "1"]
    assert main(argv) == 0
    records = [json.loads(line) for line in (tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3  # the epoch completed
    assert records[-1]["skipped_samples"] == 3
