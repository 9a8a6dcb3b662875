"""``fsc-clip negatives``: file formats, output format, resume after interruption, worker independence."""

from __future__ import annotations

import csv
import json
import shutil
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
    assert not (tmp_path / "full.jsonl.partial").exists()
    lines = full.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"  # what a killed run leaves: its chunks, the last one half-written,
    partial.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2], encoding="utf-8")
    shutil.copy(tmp_path / "full.jsonl.settings.json", tmp_path / "out.jsonl.settings.json")  # and its settings
    assert _run(inp, out, "--chunk-size", "3") == 0
    assert out.read_text(encoding="utf-8") == full.read_text(encoding="utf-8") and not partial.exists()
    assert _run(inp, out) == 0  # nothing left to do
    assert out.read_text(encoding="utf-8") == full.read_text(encoding="utf-8")


def test_output_is_never_torn_and_new_captions_are_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsc_clip.negatives import precompute as pc

    out = tmp_path / "neg.jsonl"
    assert _run(_write(tmp_path / "a.txt", CAPTIONS[:4]), out) == 0
    before = out.read_bytes()
    more = _write(tmp_path / "b.txt", CAPTIONS)
    real = pc._chunk_lines
    calls = []

    def crash_on_second_chunk(job):  # a kill in the middle of the run, after one chunk was saved
        calls.append(job)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(pc, "_chunk_lines", crash_on_second_chunk)
    assert _run(more, out, "--chunk-size", "2") == 130
    assert out.read_bytes() == before  # the previous output is intact
    assert len(_read(tmp_path / "neg.jsonl.partial")) == 2  # the finished chunk is kept for the re-run
    monkeypatch.setattr(pc, "_chunk_lines", real)
    assert _run(more, out, "--chunk-size", "2") == 0
    rows = _read(out)
    assert [r["caption"] for r in rows] == CAPTIONS and out.read_bytes().startswith(before)
    assert rows == [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]


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


def test_caption_column_is_detected(tmp_path: Path) -> None:
    """Our TSVs (and COCO's train_neg_clip.tsv) use ``title``; a ``caption`` column or JSONL field works too."""
    tsv = _write(tmp_path / "caps.tsv", CAPTIONS[:3])  # columns: filepath, title
    assert main(["negatives", "--input", str(tsv), "--output", str(tmp_path / "a.jsonl"), "--no-progress"]) == 0
    assert [r["caption"] for r in _read(tmp_path / "a.jsonl")] == CAPTIONS[:3]
    jsonl = tmp_path / "caps.jsonl"
    jsonl.write_text(
        "".join(json.dumps({"image": f"{i}.jpg", "caption": c}) + "\n" for i, c in enumerate(CAPTIONS[:3]))
    )
    assert main(["negatives", "--input", str(jsonl), "--output", str(tmp_path / "b.jsonl"), "--no-progress"]) == 0
    assert [r["caption"] for r in _read(tmp_path / "b.jsonl")] == CAPTIONS[:3]


def test_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = _write(tmp_path / "caps.tsv", CAPTIONS)
    odd = tmp_path / "odd.csv"
    odd.write_text("image,description\nx.jpg,a dog\n")
    assert main(["negatives", "--input", str(odd), "--output", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert str(odd) in err and "'image', 'description'" in err and "--caption-column" in err
    args = ["negatives", "--input", str(inp), "--output", str(tmp_path / "o.jsonl"), "--caption-column", "text"]
    assert main(args) == 2
    assert "no column 'text'" in capsys.readouterr().err  # an explicit column must exist: names the columns found
    assert _run(tmp_path / "missing.tsv", tmp_path / "o.jsonl") == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "ok"}\n{not json\n')
    assert _run(bad, tmp_path / "o.jsonl") == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert _run(inp, tmp_path / "o.jsonl", "--style", "nope") == 2
    assert "fsc-clip" in capsys.readouterr().err


def test_unwritable_output_fails_before_any_work(tmp_path: Path) -> None:
    """Through the installed CLI in a subprocess: exit 2, one line naming the path, no traceback."""
    import os
    import subprocess
    import sys

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the output folder should be")
    cases = [
        (tmp_path / "missing_input.tsv", blocker / "neg.jsonl", str(blocker)),  # checked before the input is read
        (_write(tmp_path / "caps.txt", CAPTIONS[:2]), tmp_path, str(tmp_path)),  # --output is a folder
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for inp, out, named in cases:
        cmd = [sys.executable, "-m", "fsc_clip.cli", "negatives", "--input", str(inp), "--output", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert named in proc.stderr and "Traceback" not in proc.stderr and "not found" not in proc.stderr
    assert blocker.read_text() == "a file where the output folder should be"


def test_every_option_has_help_with_its_default() -> None:
    import argparse

    from fsc_clip.cli import negatives

    parser = argparse.ArgumentParser()
    negatives.add_arguments(parser)
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help, action.dest
        assert "default" in action.help or "(required)" in action.help, (action.dest, action.help)


def test_scarce_types_are_warned_with_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    captions = ["Dogs.", "Cats!", "Horses?", "Snow.", "A man in a red shirt riding a brown horse on the beach."]
    with caplog.at_level(logging.WARNING, logger="fsc_clip"):
        assert _run(_write(tmp_path / "c.txt", captions), tmp_path / "n.jsonl") == 0
    text = "\n".join(r.getMessage() for r in caplog.records)
    for neg_type in ("negclip", "replace", "ngram_shuffle_2"):
        assert f"no {neg_type!r} negative for 4 of 5 captions (80.0 %)" in text


def test_context_length_bounds_the_edits(tmp_path: Path) -> None:
    import open_clip

    long = " and ".join(CAPTIONS[:4])
    assert _run(_write(tmp_path / "l.txt", [long]), tmp_path / "n.jsonl", "--context-length", "24") == 0
    (row,) = _read(tmp_path / "n.jsonl")
    for cands in row["negatives"].values():
        views = open_clip.tokenize([long, *cands], context_length=24).tolist()
        assert len({tuple(v) for v in views}) == len(views)


def test_list_negatives(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "negatives"]) == 0
    out = capsys.readouterr().out
    assert "fsc-clip   negclip, replace, ngram_shuffle_2" in out and "svlc" in out


def test_resume_with_other_settings_is_refused_not_mixed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inp = _write(tmp_path / "caps.txt", CAPTIONS)
    out = tmp_path / "neg.jsonl"
    assert _run(_write(tmp_path / "half.txt", CAPTIONS[:3]), out) == 0
    before = out.read_bytes()
    assert _run(inp, out, "--context-length", "20") == 2  # other settings than the existing output's
    err = capsys.readouterr().err
    assert str(out) in err and "context_length: 77 there, 20 now" in err and "--overwrite" in err
    assert out.read_bytes() == before
    assert _run(inp, out, "--context-length", "20", "--overwrite") == 0
    expected = generate_candidates(CAPTIONS, style="fsc-clip", per_type=2, seed=3, context_length=20)
    assert [r["negatives"] for r in _read(out)] == expected
    assert json.loads((tmp_path / "neg.jsonl.settings.json").read_text())["context_length"] == 20


def test_output_of_unknown_origin_is_not_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "neg.jsonl"
    out.write_text(json.dumps({"caption": CAPTIONS[0], "negatives": {}}) + "\n", encoding="utf-8")
    assert _run(_write(tmp_path / "caps.txt", CAPTIONS), out) == 2
    assert "settings are unknown" in capsys.readouterr().err
