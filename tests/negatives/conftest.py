"""Shared fixtures: the real spaCy pipeline and WordNet (skips the module when they are not installed)."""

from __future__ import annotations

import pytest

from fsc_clip.errors import ResourceNotFoundError


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the copied WordNet database out of the user's cache, but share it across the session."""
    import os

    os.environ.setdefault("FSC_CLIP_CACHE_DIR", str(tmp_path_factory.mktemp("fsc_clip_cache")))


@pytest.fixture(scope="session")
def nlp_resources() -> None:
    """Load spaCy + WordNet once; skip tests needing them when absent on this machine."""
    from fsc_clip.negatives.lexicon import get_lexicon
    from fsc_clip.negatives.resources import load_spacy

    try:
        load_spacy()
        get_lexicon()
    except ResourceNotFoundError as err:  # pragma: no cover - depends on the machine
        pytest.skip(f"NLP resources missing: {err}")
