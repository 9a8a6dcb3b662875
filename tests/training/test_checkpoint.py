"""Checkpoint files: weights_only-loadable, atomic, retention, RNG round trip, resume resolution."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from fsc_clip.config import ConfigError
from fsc_clip.errors import ModelLoadError
from fsc_clip.training.checkpoint import (
    atomic_save,
    epoch_checkpoints,
    load_checkpoint,
    resolve_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_rng_state_round_trip_through_weights_only_file(tmp_path: Path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = rng_state()
    atomic_save({"format": "fsc-clip", "rng": [state]}, tmp_path / "c.pt")
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(torch.load(tmp_path / "c.pt", weights_only=True)["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_atomic_save_leaves_no_temp_and_keeps_old_file_on_failure(tmp_path: Path):
    path = tmp_path / "latest.pt"
    atomic_save({"a": torch.ones(1)}, path)
    with pytest.raises(Exception):  # noqa: B017 - a non-picklable object fails inside torch.save
        atomic_save({"a": lambda: 0}, path)
    assert torch.load(path, weights_only=True)["a"].item() == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.pt"]


def test_retention_keeps_newest_epochs(tmp_path: Path):
    for epoch in range(1, 5):
        save_checkpoint({"epoch": epoch}, tmp_path, epoch_file=epoch, keep_last_epochs=2)
    assert [e for e, _ in epoch_checkpoints(tmp_path)] == [3, 4]
    assert load_checkpoint(tmp_path / "latest.pt")["epoch"] == 4


def test_resume_resolution_and_errors(tmp_path: Path):
    run = tmp_path / "run"
    assert resolve_resume("auto", run) is None  # fresh run
    save_checkpoint({"epoch": 0}, run / "checkpoints", None, None)
    assert resolve_resume("auto", run) == run / "checkpoints" / "latest.pt"
    assert resolve_resume(str(run), run) == run / "checkpoints" / "latest.pt"
    with pytest.raises(ConfigError, match="no checkpoint"):
        resolve_resume(str(tmp_path / "missing.pt"), run)
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ModelLoadError, match="not an fsc-clip run checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
