"""Resume after a real process kill mid-epoch ends with exactly the weights of an uninterrupted run.

Test hook: ``FSC_CLIP_TEST_KILL_AT_STEP=k`` makes the training process ``os._exit(137)`` right after
optimizer step k (see :mod:`fsc_clip.training.hooks`) — no cleanup, no final checkpoint, like SIGKILL.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fsc_clip.training.hooks import KILL_ENV

from .conftest import base_args, env_for_subprocess


def _train(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "fsc_clip.cli", *argv]
    return subprocess.run(cmd, env={**env_for_subprocess(), **env}, capture_output=True, text=True, timeout=300)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=True)


@pytest.mark.slow
def test_killed_mid_epoch_and_resumed_equals_uninterrupted(toy_data, tmp_path: Path):
    # 48 rows / batch 8 = 6 steps per epoch, 2 epochs; resume points every 2 steps; killed after step 5,
    # i.e. mid-epoch 0 with step 5 done but not saved (the resumed run redoes it from step 4).
    extra = ["--loss-name", "fsc-clip", "--add-random-text-hard-negatives", "precomputed"]
    extra += ["--precomputed-negatives", str(toy_data["negatives"]), "--batch-size", "8", "--epochs", "2"]
    extra += ["--set", "checkpoint.every_n_steps=2", "--set", "model.augment=true"]

    full = _train(base_args(toy_data, tmp_path, "full") + extra)
    assert full.returncode == 0, full.stderr

    killed = _train(base_args(toy_data, tmp_path, "cut") + extra, **{KILL_ENV: "5"})
    assert killed.returncode == 137, killed.stderr
    mid = _weights(tmp_path / "cut")
    assert (mid["epoch"], mid["batch_in_epoch"], mid["step"]) == (0, 4, 4)

    resumed = _train(base_args(toy_data, tmp_path, "cut") + extra + ["--resume", "auto"])
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from" in resumed.stdout + resumed.stderr

    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert (a["step"], a["epoch"]) == (b["step"], b["epoch"]) == (12, 2)
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    for key in ("exp_avg", "exp_avg_sq"):
        for pid, state in a["optimizer"]["state"].items():
            assert torch.equal(state[key], b["optimizer"]["state"][pid][key])
