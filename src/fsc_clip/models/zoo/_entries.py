"""Registers the entries of ``fsc_clip/resources/zoo/models.yaml`` in :data:`fsc_clip.models.zoo.ZOO` (lazily)."""

from __future__ import annotations

from fsc_clip.models.zoo import ZOO, read_zoo_file

for _entry in read_zoo_file()[1]:
    ZOO.register(_entry.name, _entry)
