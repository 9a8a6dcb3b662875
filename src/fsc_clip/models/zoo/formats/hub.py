"""open_clip models published on the Hugging Face Hub (``hf-hub:org/repo``: ``open_clip_config.json`` + weights).

CLIC: AmitPeleg/CLIC@dc845c75f867be8194a5ddc188975174cccff4e4 ``models.py`` loads
``open_clip.create_model_and_transforms(f"hf-hub:nmndeep/{name}")``; the Hub config carries the architecture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.models.zoo.formats import FORMATS, ZooFormat


def _load_hub(entry: Any, path: Path, *, device: str = "cpu", precision: str = "fp32", cache_dir: str | None = None):
    from fsc_clip.models.build import HF_HUB_PREFIX, load_open_clip

    if not entry.source.hf_repo:
        raise ModelLoadError(f"zoo entry {entry.name!r}: format open_clip_hub needs source.hf_repo.")
    lm = load_open_clip(HF_HUB_PREFIX + entry.source.hf_repo, device=device, precision=precision, cache_dir=cache_dir)
    lm.spec.name = entry.name
    lm.spec.pretrained = HF_HUB_PREFIX + entry.source.hf_repo
    return lm


FORMATS.register(
    "open_clip_hub",
    ZooFormat(
        "open_clip model on the Hugging Face Hub (open_clip_config.json + open_clip weights)",
        "AmitPeleg/CLIC@dc845c75f867be8194a5ddc188975174cccff4e4 models.py",
        custom_load=_load_hub,
    ),
)
