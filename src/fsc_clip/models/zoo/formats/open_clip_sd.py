"""Plain state dicts: open_clip training checkpoints and OpenAI ``clip``-package state dicts.

- ``open_clip``: what open_clip's ``training/main.py`` saves, ``{"epoch", "name", "state_dict", "optimizer"}``
  with ``module.`` prefixes after DDP (mlfoundations/open_clip and its forks: vinid/open_clip for NegCLIP,
  lezhang7/Enhance-FineGrained @ ef87eb7, ytaek-oh/fsc-clip @ 604015d ``src/training/main.py``), or a bare state dict.
- ``openai_clip``: ``{"model_state_dict": model.state_dict(), ...}`` of a model built by ``clip.load`` (GNM-CLIP,
  ugorsahin/Generative-Negative-Mining @ 59e365e ``training/train.py``): OpenAI key names (identical to open_clip's
  ``CLIP``) and fp16 tensors when trained on GPU; we load them in fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsc_clip.models.zoo.formats import FORMATS, ZooFormat
from fsc_clip.models.zoo.formats.common import read_state_dict


def _open_clip(entry: Any, path: Path, cache_dir: str | None = None) -> dict[str, Any]:
    return read_state_dict(path, wrappers=("state_dict",))


def _openai_clip(entry: Any, path: Path, cache_dir: str | None = None) -> dict[str, Any]:
    return read_state_dict(path, wrappers=("model_state_dict", "state_dict"))


FORMATS.register(
    "open_clip",
    ZooFormat(
        "open_clip state dict (bare, {'state_dict': ...}, DDP 'module.' prefix)",
        "mlfoundations/open_clip training/main.py; ytaek-oh/fsc-clip@604015d src/training/main.py",
        to_state_dict=_open_clip,
    ),
)
FORMATS.register(
    "openai_clip",
    ZooFormat(
        "OpenAI clip-package state dict in {'model_state_dict': ...} (fp16 allowed)",
        "ugorsahin/Generative-Negative-Mining@59e365e training/train.py",
        to_state_dict=_openai_clip,
    ),
)
