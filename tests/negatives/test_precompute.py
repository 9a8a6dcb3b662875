"""``fsc-clip negatives``: file formats, output format, resume after interruption, worker independence."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fsc_clip.cli.main import main
from fsc_clip.negatives import generate_candidates, style_types

pytestmark = pytest.mark.usefixtures("nlp_resources")

CAPTIONS = [
    "A man in a red shirt riding a brown horse on the beach.",
    "Two dogs playing with a frisbee in the park.",
    "a woman holding an umbrella while walking down a busy street",
    "The man's dog is sitting in front of an old brick building.",
    "A large giraffe standing next to a tall tree.",
    "a dog.",
    "A kitchen with white cabinets and a stainless steel refrigerator.",
    "Several people are standing near a red double decker bus.",
    "A plate of food with broccoli and a slice of pizza.",
    "A cat is sleeping on top of a wooden table next to a laptop.",
]


def _write(path: Path, captions: list[str]) -> Path:
    suffix = path.suffix
    if suffix in (".tsv", ".csv"):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writerow(["filepath", "title"])
            writer.writerows([f"img{i}.jpg", c] for i, c in enumerate(captions))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"title": c, "id": i}) + "\n" for i, c in enumerate(captions)))
    else:
        path.write_text("\n".join(captions) + "\n")
    return path


def _run(inp: Path, out: Path, *extra: str) -> int:
    args = ["negatives", "--input", str(inp), "--output", str(out), "--caption-column", "title"]
    return main([*args, "--per-type", "2", "--seed", "3", "--no-progress", *extra])


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl", ".txt"])
def test_output_format(tmp_path: Path, suffix: str) -> None:
    inp = _write(tmp_path / f"caps{suffix}", CAPTIONS + CAPTIONS[:2])  # duplicates are written once
    out = tmp_path / "neg.jsonl"
    assert _run(inp, out, "--chunk-size", "4") == 0
    rows = _read(out)
    assert [r["caption"] for r in rows] == CAPTIONS
    expected = generate_candidates(CAPTIONS, style="fsc-clip", per_type=2, seed=3)
    for row, exp in zip(rows, expected):
        assert set(row) == {"caption", "negatives"}
        assert list(row["negatives"]) == style_types("fsc-clip")
        assert row["negatives"] == exp
        assert all(1 <= len(c) <= 2 for c in row["negatives"].values()) or row["caption"] == "a dog."
    assert rows[CAPTIONS.index("a dog.")]["negatives"] == {"negclip": [], "replace": [], "ngram_shuffle_2": []}


def test_resume_after_interruption(tmp_path: Path) -> None:
    inp = _write(tmp_path / "caps.txt", CAPTIONS)
    full = tmp_path / "full.jsonl"
    assert _run(inp, full, "--chunk-size", "3") == 0
    lines = full.read_text(encoding="utf-8").splitlines(keepends=True)
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2], encoding="utf-8")  # killed mid-write
    assert _run(inp, partial, "--chunk-size", "3") == 0
    assert partial.read_text(encoding="utf-8") == full.read_text(encoding="utf-8")
    assert _run(inp, partial) == 0  # nothing left to do
    assert partial.read_text(encoding="utf-8") == full.read_text(encoding="utf-8")


def test_chunking_does_not_change_candidates() -> None:
    whole = generate_candidates(CAPTIONS, per_type=2, seed=3)
    pieces = [
        r for i in range(0, len(CAPTIONS), 3) for r in generate_candidates(CAPTIONS[i : i + 3], per_type=2, seed=3)
    ]
    assert whole == pieces
    assert generate_candidates(CAPTIONS[::-1], per_type=2, seed=3) == whole[::-1]  # order-independent too


@pytest.mark.slow  # two spawned workers each load spaCy + WordNet (~1 min on the shared 2-core machine)
def test_worker_count_does_not_change_results(tmp_path: Path) -> None:
    inp = _write(tmp_path / "caps.tsv", CAPTIONS)
    one, two = tmp_path / "w1.jsonl", tmp_path / "w2.jsonl"
    assert _run(inp, one, "--chunk-size", "2") == 0
    assert _run(inp, two, "--chunk-size", "3", "--workers", "2") == 0
    assert one.read_text(encoding="utf-8") == two.read_text(encoding="utf-8")


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = _write(tmp_path / "caps.tsv", CAPTIONS)
    assert main(["negatives", "--input", str(inp), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "no column 'caption'" in capsys.readouterr().err  # default column absent: names the columns found
    assert _run(tmp_path / "missing.tsv", tmp_path / "o.jsonl") == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok"}\n{not json\n')
    assert _run(bad, tmp_path / "o.jsonl") == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert _run(inp, tmp_path / "o.jsonl", "--style", "nope") == 2
    assert "fsc-clip" in capsys.readouterr().err


def test_list_negatives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "negatives"]) == 0
    out = capsys.readouterr().out
    assert "fsc-clip   negclip, replace, ngram_shuffle_2" in out and "svlc" in out
