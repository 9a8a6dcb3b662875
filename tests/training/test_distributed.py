"""torchrun DDP on CPU (gloo, 2 real processes): same weights as 1 process with the doubled batch, and
all ranks stop together on a NaN loss.

Test hook: ``FSC_CLIP_TEST_NAN_AT_STEP=k`` + ``FSC_CLIP_TEST_NAN_RANK=r`` poison the loss of step k on
rank r only (see :mod:`fsc_clip.training.hooks`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fsc_clip.cli.main import main
from fsc_clip.training.hooks import NAN_ENV, NAN_RANK_ENV

from .conftest import assert_weights_close, base_args, env_for_subprocess

FSC = ["--loss-name", "fsc-clip", "--add-random-text-hard-negatives", "precomputed"]


def _torchrun(argv: list[str], nproc: int = 2, **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd += ["-m", "fsc_clip.cli", *argv]
    return subprocess.run(cmd, env={**env_for_subprocess(), **env}, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("per_rank", [["--batch-size", "8"], ["--batch-size", "4", "--accum-freq", "2"]], ids=str)
def test_two_process_gloo_equals_one_process_with_doubled_batch(toy_data, tmp_path: Path, per_rank: list[str]):
    common = [*FSC, "--precomputed-negatives", str(toy_data["negatives"]), "--max-steps", "3"]
    common += ["--set", "checkpoint.every_n_steps=0"]
    ddp = _torchrun(base_args(toy_data, tmp_path, "ddp") + common + per_rank)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert main(base_args(toy_data, tmp_path, "single") + common + ["--batch-size", "16"]) == 0

    a = torch.load(tmp_path / "ddp" / "checkpoints" / "latest.pt", weights_only=True)
    b = torch.load(tmp_path / "single" / "checkpoints" / "latest.pt", weights_only=True)
    assert a["world_size"] == 2 and len(a["rng"]) == 2 and a["step"] == b["step"] == 3
    assert_weights_close(a["state_dict"], b["state_dict"])
    # and training did move the weights (the comparison is not between two untouched models)
    torch.manual_seed(0)
    from fsc_clip.models import load_model

    start = load_model("fsc-tiny", None).model.state_dict()
    assert (start["visual.proj"] - b["state_dict"]["visual.proj"]).abs().max() > 1e-3


@pytest.mark.slow
def test_nan_on_one_rank_stops_all_ranks(toy_data, tmp_path: Path):
    argv = [*base_args(toy_data, tmp_path, "nan"), *FSC, "--precomputed-negatives", str(toy_data["negatives"])]
    argv += ["--batch-size", "8", "--max-steps", "4", "--set", "checkpoint.every_n_steps=1"]
    res = _torchrun(argv, **{NAN_ENV: "3", NAN_RANK_ENV: "1"})
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "non-finite loss" in out and "all ranks stopped" in out
    # Both ranks stopped at step 3: the last checkpoint is step 2 and holds finite weights.
    ckpt = torch.load(tmp_path / "nan" / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_nan_single_process_is_a_clear_error(toy_data, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv(NAN_ENV, "2")
    argv = [*base_args(toy_data, tmp_path, "nan1"), "--loss-name", "clip", "--batch-size", "8", "--max-steps", "3"]
    assert main([*argv, "--set", "checkpoint.every_n_steps=1"]) == 2
    assert "non-finite loss" in capsys.readouterr().err
    assert torch.load(tmp_path / "nan1" / "checkpoints" / "latest.pt", weights_only=True)["step"] == 1
