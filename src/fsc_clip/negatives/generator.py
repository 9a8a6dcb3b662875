"""What a negative type implements (:class:`Generator`) and the registry of types (:data:`GENERATORS`).

This module sits below every generator module and below :mod:`fsc_clip.negatives.base` (the sampling loop), so
a generator registers itself without importing the loop that uses it (no import cycle).
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from fsc_clip.negatives.parse import Parsed
from fsc_clip.registry import Registry


class Generator(Protocol):
    """What a negative type implements."""

    name: str

    def options(self, parsed: Parsed) -> Any | None:
        """What could be changed in this caption; ``None`` (or empty) when the type cannot apply."""

    def draw(self, parsed: Parsed, options: Any, rng: random.Random) -> str | None:
        """One random negative built from ``options`` (``None`` if this attempt produced nothing)."""


GENERATORS: Registry[Generator] = Registry(
    "negative generator",
    lazy_modules=(
        "fsc_clip.negatives.swap",
        "fsc_clip.negatives.replace",
        "fsc_clip.negatives.shuffle",
        "fsc_clip.negatives.svlc",
    ),
)
