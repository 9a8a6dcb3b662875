"""benchmarks/memory.py: the shape-only (fake tensor) estimate of a training step's peak memory matches the
peak measured on a real CPU step of a small model, and follows the configuration the way real memory does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def memory():
    spec = importlib.util.spec_from_file_location("memory", ROOT / "benchmarks" / "memory.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["memory"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("memory", None)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS reset needs Linux /proc")
@pytest.mark.parametrize(
    "precision,checkpointing", [("fp32", False), ("amp_bf16", False), ("fp32", True)], ids=["fp32", "bf16", "ckpt"]
)
def test_estimate_matches_measured_cpu_step(memory, precision, checkpointing):
    """What one steady-state step adds to memory (activations, gradients, temporaries), estimated from the
    shapes vs measured (peak RSS of a fresh process where every tensor is its own mmap), within 10 %."""
    spec = memory.StepSpec(
        model="fsc-demo", batch=64, loss="fsc-clip", precision=precision, grad_checkpointing=checkpointing, gpu=False
    )
    result = memory.validate(spec)
    assert 0.9 <= result["ratio"] <= 1.1, result


def test_estimate_accounts_for_every_category(memory):
    """Parameters and AdamW state (2 moments) are in the peak; checkpointing saves fewer tensors for backward."""
    plain = memory.estimate(memory.StepSpec(model="fsc-tiny", batch=8, loss="fsc-clip", precision="fp32", gpu=False))
    ckpt = memory.estimate(
        memory.StepSpec(
            model="fsc-tiny", batch=8, loss="fsc-clip", precision="fp32", gpu=False, grad_checkpointing=True
        )
    )
    model = memory.build_model(memory.StepSpec(model="fsc-tiny"), "meta")
    param_mb = sum(p.numel() * 4 for p in model.parameters()) / memory.MIB
    assert plain["param_mb"] == pytest.approx(param_mb, rel=0.01)
    # exp_avg + exp_avg_sq; for a model this small the peak falls in the optimizer step, whose temporaries
    # MemTracker files under the optimizer too
    assert plain["opt_mb"] >= 2 * param_mb
    assert plain["saved_mb"] > 0  # the tensors autograd saved (freed again before this tiny model's peak)
    assert ckpt["saved_mb"] < plain["saved_mb"]
