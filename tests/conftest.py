"""Shared test setup: offline Hugging Face Hub, deterministic torch, the tiny model."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network from tests
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (the README's `-n auto`) the workers share the cores: each worker's torch gets its share of
# threads instead of one per core (set before any test imports torch; a test's own OMP_NUM_THREADS still wins).
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _XDIST_WORKERS > 1:
    from fsc_clip.cli.main import usable_cores  # the package's one home of the core count; imports no torch

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, usable_cores() // _XDIST_WORKERS)))


@pytest.fixture(scope="session")
def tiny_model():
    """A randomly initialised ``fsc-tiny`` open_clip model (3.4M params, 32x32 images)."""
    import torch

    from fsc_clip.models import load_model

    torch.manual_seed(0)
    return load_model("fsc-tiny")


def _registries() -> list:
    import sys

    mod = sys.modules.get("fsc_clip.registry")
    if mod is None:
        return []
    if "fsc_clip.evaluation.aggregate" in sys.modules:
        # benchmark modules register profiles / headlines when imported: load them before the snapshot
        from fsc_clip.evaluation.benchmarks import BENCHMARKS

        BENCHMARKS.names()
    return mod.Registry.instances()


@pytest.fixture(autouse=True)
def _no_registry_leaks(request):
    """Fail a test that leaves a global registry changed (an extra, missing or replaced entry), and restore it.

    Registries are snapshotted after their lazy modules are loaded, so lazy loading during a test is not a leak.
    A test that registers something must remove it again (``try/finally`` with ``Registry.restore``).
    """
    before = [(reg, reg.snapshot()) for reg in _registries()]
    yield
    leaks = [f"{reg.kind}: {', '.join(changed)}" for reg, snap in before if (changed := reg.restore(snap))]
    if leaks:
        pytest.fail(f"{request.node.nodeid} left global registrations behind (restored now): {'; '.join(leaks)}")
