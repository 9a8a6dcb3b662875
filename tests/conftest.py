"""Shared test setup: offline Hugging Face Hub, deterministic torch, the tiny model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network from tests
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest


@pytest.fixture(scope="session")
def tiny_model():
    """A randomly initialised ``fsc-tiny`` open_clip model (3.4M params, 32x32 images)."""
    import torch

    from fsc_clip.models import load_model

    torch.manual_seed(0)
    return load_model("fsc-tiny")
