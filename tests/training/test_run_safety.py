"""``fsc-clip train`` as a user runs it (subprocess): runs are never silently replaced or mixed, damaged
checkpoints are skipped with a message, and every foreseeable failure (unwritable output, full disk, missing or
malformed data, damaged checkpoints) ends with exit code 2 and a message naming the path, never a traceback.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fsc_clip.training.logger import read_metrics

from .conftest import base_args, env_for_subprocess

TINY = ["--loss-name", "clip", "--batch-size", "24", "--lr-scheduler", "const"]  # 48 rows: 2 steps per epoch


def _cli(argv: list[str], limit_file_size: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:  # a real OS limit (works for root too): writes beyond it fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    return subprocess.run(
        [sys.executable, "-m", "fsc_clip.cli", *argv],
        env=env_for_subprocess(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit if limit_file_size else None,
    )


def _assert_user_error(result: subprocess.CompletedProcess, *names: object) -> str:
    err = result.stderr
    assert result.returncode == 2, err
    assert "Traceback" not in err, err
    for name in names:
        assert str(name) in err, (name, err)
    return err


def _state_dict(run: Path, name: str = "latest.pt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, weights_only=True)["state_dict"]


def _flip_bytes(path: Path, at: float = 0.5, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + n] = bytes(b ^ 0xFF for b in data[start : start + n])
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_rerun_refuses_then_overwrite_moves_the_old_run_aside(toy_data, tmp_path: Path):
    argv = [*base_args(toy_data, tmp_path, "x"), *TINY, "--epochs", "1"]
    assert _cli(argv).returncode == 0
    run = tmp_path / "x"
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    metrics = (run / "metrics.jsonl").read_text()

    # Same name, another model, no --resume: refused before anything is written.
    other = [*argv, "--set", "model.name=fsc-tiny-b"]
    err = _assert_user_error(_cli(other), run, "--resume", "--overwrite")
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before
    assert (run / "metrics.jsonl").read_text() == metrics

    # --resume with other settings: refused, naming each differing key.
    err = _assert_user_error(_cli([*argv, "--resume", "auto", "--lr", "0.5", "--seed", "3"]), "latest.pt")
    assert "optim.lr: run has 0.001, now 0.5" in err and "seed: run has 0, now 3" in err
    # ... before the model is loaded: an unknown architecture is reported as a difference, not as a load error.
    _assert_user_error(_cli([*other, "--resume", "auto"]), "model.name: run has 'fsc-tiny', now 'fsc-tiny-b'")

    # --overwrite: the old run is moved aside (not deleted) and the message says where.
    result = _cli([*argv, "--overwrite"])
    assert result.returncode == 0, result.stderr
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("x.old-")]
    assert len(moved) == 1 and str(moved[0]) in result.stderr
    assert {p.name: p.read_bytes() for p in (moved[0] / "checkpoints").iterdir()} == before
    assert (moved[0] / "metrics.jsonl").read_text() == metrics
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == [1, 2]  # the new run's own records only


@pytest.mark.slow
def test_damaged_latest_falls_back_to_the_newest_valid_checkpoint(toy_data, tmp_path: Path):
    # Reference: 2 epochs (4 steps) in one go. Interrupted: a real run stopped after step 3 (epoch_1.pt holds
    # step 2, latest.pt step 3); latest.pt is truncated, so resuming must continue from epoch_1.pt, redo step 3
    # (recorded once in metrics.jsonl), end with the reference weights and say what it did.
    full = [*base_args(toy_data, tmp_path, "full"), *TINY, "--epochs", "2"]
    assert _cli(full).returncode == 0
    cut = [*base_args(toy_data, tmp_path, "cut"), *TINY, "--epochs", "2"]
    assert _cli([*cut, "--max-steps", "3"]).returncode == 0
    run = tmp_path / "cut"
    latest = run / "checkpoints" / "latest.pt"
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 3])
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 4, "epo')  # a torn last line, as a crash during an append leaves it

    resumed = _cli([*cut, "--resume", "auto"])
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert f"Checkpoint rejected: {latest}" in resumed.stderr
    assert f"Resuming from {run / 'checkpoints' / 'epoch_1.pt'} (fallback): epoch 1 finished" in resumed.stderr
    assert "continuing with epoch 2" in resumed.stderr
    records = read_metrics(run / "metrics.jsonl")
    assert [(r["step"], r["epoch"]) for r in records] == [(1, 1), (2, 1), (3, 2), (4, 2)]  # same numbering
    want, got = _state_dict(tmp_path / "full"), _state_dict(run)
    assert all(torch.equal(got[k], v) for k, v in want.items())

    # Flipped bytes in every checkpoint: exit 2 naming each file and why; nothing raw from torch.
    for path in (run / "checkpoints").glob("*.pt"):
        _flip_bytes(path)
    err = _assert_user_error(_cli([*cut, "--resume", "auto", "--epochs", "3"]), latest, "epoch_2.pt", "epoch_1.pt")
    assert "no usable checkpoint" in err and "--overwrite" in err


@pytest.mark.slow
def test_foreseeable_failures_exit_2_naming_the_path(toy_data, tmp_path: Path):
    args = [*TINY, "--epochs", "1"]
    # Unwritable output, detected before the model is loaded: with an unknown model, the output error must come
    # first. Root ignores chmod, so the folder is made unwritable by a mechanism that binds root too: a path
    # *under a regular file* (ENOTDIR); as non-root, a chmod 0o500 folder as well.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad_out = blocker / "runs"
    argv = [*base_args(toy_data, bad_out, "r"), *args, "--set", "model.name=no-such-model"]
    _assert_user_error(_cli(argv), bad_out, "not writable")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _assert_user_error(_cli([*base_args(toy_data, locked, "r"), *args]), locked, "not writable")

    # Missing data file; a column that the table does not have.
    missing = tmp_path / "nope.tsv"
    argv = [*base_args(toy_data, tmp_path, "m"), *args, "--train-data", str(missing)]
    _assert_user_error(_cli(argv), missing)
    argv = [*base_args(toy_data, tmp_path, "c"), *args, "--csv-caption-key", "caption"]
    _assert_user_error(_cli(argv), toy_data["tsv"], "'caption'", "--csv-caption-key")

    # Full disk: a real file-size limit (EFBIG) hits the first checkpoint write; the torch writer's own
    # "unexpected pos" error must not be what the user sees.
    err = _assert_user_error(_cli([*base_args(toy_data, tmp_path, "f"), *args], limit_file_size=1 << 20), "latest.pt")
    assert "unexpected pos" not in err and "File too large" in err
    assert not any((tmp_path / "f" / "checkpoints").iterdir())  # no torn or temporary checkpoint left behind

    # A damaged checkpoint given explicitly: no substitute, exit 2 naming it.
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    _assert_user_error(_cli([*base_args(toy_data, tmp_path, "j"), *args, "--resume", str(junk)]), junk, "damaged")


@pytest.mark.slow
def test_full_disk_on_resume_keeps_the_previous_checkpoint(toy_data, tmp_path: Path):
    argv = [*base_args(toy_data, tmp_path, "d"), *TINY]
    assert _cli([*argv, "--epochs", "1"]).returncode == 0
    latest = tmp_path / "d" / "checkpoints" / "latest.pt"
    before = latest.read_bytes()
    result = _cli([*argv, "--epochs", "2", "--resume", "auto"], limit_file_size=1 << 20)
    err = _assert_user_error(result, latest)
    assert "File too large" in err
    assert latest.read_bytes() == before  # intact, still loads and verifies
    assert _cli([*argv, "--epochs", "2", "--resume", "auto"]).returncode == 0


@pytest.mark.slow
def test_defaults_on_a_table_without_negatives_say_which_flag_adds_them(toy_data, tmp_path: Path):
    table = tmp_path / "plain.tsv"
    lines = toy_data["tsv"].read_text().splitlines()
    table.write_text("".join("\t".join(line.split("\t")[:2]) + "\n" for line in lines))  # no neg_caption column
    (tmp_path / "images").symlink_to(toy_data["tsv"].parent / "images")
    # Only what the machine needs (tiny model, CPU, small batch): the loss, negatives and the rest are defaults.
    argv = ["train", "--train-data", str(table), "--model", "fsc-tiny", "--pretrained", "none", "--device", "cpu"]
    argv += ["--batch-size", "16", "--output", str(tmp_path / "runs"), "--name", "d", "--no-progress"]
    err = _assert_user_error(_cli(argv), table, "--add-random-text-hard-negatives")
    assert len(err.strip().splitlines()) == 1
    result = _cli([*argv, "--loss-name", "clip", "--max-steps", "1"])  # the flag the message names works
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "step/s" not in result.stderr  # --no-progress: no bar
    assert json.loads((tmp_path / "runs" / "d" / "metrics.jsonl").read_text())["epoch"] == 1
