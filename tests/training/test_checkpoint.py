"""Checkpoint files: weights_only-loadable, atomic, checksummed, retention, RNG round trip, resume resolution."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from fsc_clip.config import ConfigError
from fsc_clip.errors import ModelLoadError, OutputError
from fsc_clip.models.checkpoint import CorruptCheckpointError, payload_sha256, read_checkpoint, write_run_checkpoint
from fsc_clip.training.checkpoint import (
    epoch_checkpoints,
    load_checkpoint,
    load_newest_valid,
    prune_epochs,
    resolve_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _state(epoch: int, step: int = 0) -> dict:
    """A minimal run state (what load_checkpoint requires); ``w`` (256 KiB) is most of the file's bytes."""
    g = torch.Generator().manual_seed(epoch)
    return {
        "model": {"name": "fsc-tiny", "pretrained": None, "quick_gelu": False, "lora": None},
        "state_dict": {"w": torch.randn(256, 256, generator=g), "b": torch.randn(3, generator=g).bfloat16()},
        "optimizer": {"state": {0: {"step": torch.tensor(float(step))}}, "param_groups": [{"lr": 1e-3, "params": [0]}]},
        "epoch": epoch,
        "batch_in_epoch": 0,
        "step": step,
        "rng": [],
        "config": {"seed": 0},
    }


def test_rng_state_round_trip_through_weights_only_file(tmp_path: Path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = rng_state()
    write_run_checkpoint(tmp_path / "c.pt", {"format": "fsc-clip", "rng": [state]})
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(torch.load(tmp_path / "c.pt", weights_only=True)["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_failed_write_leaves_no_temp_and_keeps_old_file(tmp_path: Path):
    path = tmp_path / "latest.pt"
    write_run_checkpoint(path, {"a": torch.ones(1)})
    with pytest.raises(Exception):  # noqa: B017 - a non-picklable object fails inside torch.save
        write_run_checkpoint(path, {"a": torch.zeros(1), "f": lambda: 0})
    assert torch.load(path, weights_only=True)["a"].item() == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


def test_full_disk_names_the_file_and_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch):
    save_checkpoint(_state(1, 5), tmp_path, epoch_file=None, keep_last_epochs=None)

    def full_disk(fd: int) -> None:  # fault injection at the OS boundary: the kernel reports ENOSPC on flush
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OutputError, match=r"latest\.pt: the disk is full"):
        save_checkpoint(_state(2, 9), tmp_path, epoch_file=2, keep_last_epochs=None)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "latest.pt")["step"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]  # no temporary file, no epoch_2.pt


def test_retention_sorts_by_epoch_number_not_file_name(tmp_path: Path):
    # With >= 11 epochs a name sort puts epoch_10/epoch_11 before epoch_2 and would delete the newest ones.
    for epoch in range(1, 13):
        save_checkpoint(_state(epoch, 2 * epoch), tmp_path, epoch_file=epoch, keep_last_epochs=3)
    assert [e for e, _ in epoch_checkpoints(tmp_path)] == [10, 11, 12]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_10.pt", "epoch_11.pt", "epoch_12.pt", "latest.pt"]
    assert load_checkpoint(tmp_path / "epoch_12.pt")["epoch"] == 12
    assert load_checkpoint(tmp_path / "latest.pt")["epoch"] == 12
    prune_epochs(tmp_path, 1)
    assert [e for e, _ in epoch_checkpoints(tmp_path)] == [12]


def test_resume_resolution_and_errors(tmp_path: Path):
    run = tmp_path / "run"
    assert resolve_resume("auto", run) == []  # fresh run
    assert resolve_resume(None, run) == []
    for epoch in (1, 2, 10):
        save_checkpoint(_state(epoch), run / "checkpoints", epoch, None)
    ckpts = run / "checkpoints"
    newest_first = [ckpts / "latest.pt", ckpts / "epoch_10.pt", ckpts / "epoch_2.pt", ckpts / "epoch_1.pt"]
    assert resolve_resume("auto", run) == newest_first
    assert resolve_resume(str(run), run) == newest_first
    assert resolve_resume(str(ckpts / "epoch_2.pt"), run) == [ckpts / "epoch_2.pt"]  # an explicit file: only it
    with pytest.raises(ConfigError, match="no checkpoint"):
        resolve_resume(str(tmp_path / "missing.pt"), run)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no latest\.pt or epoch_N\.pt"):
        resolve_resume(str(tmp_path / "empty"), run)
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ModelLoadError, match="not an fsc-clip run checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_checksum_covers_every_value():
    base = _state(3, 7)
    digest = payload_sha256(base)
    assert payload_sha256(dict(reversed(list(base.items())))) == digest  # key order is not content
    changed = [
        {**base, "step": 8},
        {**base, "epoch": 3.0},  # same number, other type
        {**base, "config": {"seed": 1}},
        {**base, "state_dict": {**base["state_dict"], "w": base["state_dict"]["w"].double()}},
        {**base, "state_dict": {**base["state_dict"], "w": base["state_dict"]["w"].reshape(128, 512)}},
    ]
    w = base["state_dict"]["w"].clone()
    w.view(torch.int32)[1, 2] ^= 1  # one flipped bit in one float32
    changed.append({**base, "state_dict": {**base["state_dict"], "w": w}})
    assert all(payload_sha256(c) != digest for c in changed)


def _flip(path: Path, offset_fraction: float, n: int = 32) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * offset_fraction)
    for i in range(start, start + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_files_are_rejected_with_their_name_and_the_newest_valid_is_used(tmp_path: Path):
    for epoch in (1, 2):
        save_checkpoint(_state(epoch, 4 * epoch), tmp_path, epoch, None)
    latest, e2, e1 = tmp_path / "latest.pt", tmp_path / "epoch_2.pt", tmp_path / "epoch_1.pt"
    # Truncated (an interrupted copy): torch's zip reader fails; we say which file and why.
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"latest\.pt: it is damaged"):
        load_checkpoint(latest)
    # Flipped bytes inside the tensor data: the file still loads, only the sha256 notices.
    _flip(e2, 0.5)
    with pytest.raises(CorruptCheckpointError, match=r"epoch_2\.pt is damaged"):
        load_checkpoint(e2)
    with pytest.raises(CorruptCheckpointError):
        read_checkpoint(e2)  # the model loader (eval, WiSE-FT) refuses it too
    path, ckpt, rejected = load_newest_valid(resolve_resume(str(tmp_path), tmp_path))
    assert path == e1 and ckpt["epoch"] == 1
    assert [r.split(":")[0] for r in rejected] == [str(latest), str(e2)]
    _flip(e1, 0.9)
    with pytest.raises(ModelLoadError, match="no usable checkpoint") as info:
        load_newest_valid([latest, e2, e1])
    assert all(str(p) in str(info.value) for p in (latest, e2, e1))
