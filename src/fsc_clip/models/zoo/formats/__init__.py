"""Loaders for the checkpoint formats of the zoo, one small module per format family, in a registry.

A format turns the weights file of a :class:`~fsc_clip.models.zoo.ZooEntry` into a ready
:class:`~fsc_clip.models.LoadedModel`. Most formats only convert the file into an open_clip state dict
(``to_state_dict``) and share :func:`fsc_clip.models.zoo.formats.common.build_model`; a format that needs
more (a Hub repository, a patching step) gives its own ``load``.

Adding a format: one new module here with ``FORMATS.register("name", ZooFormat(...))`` and its name in
``_MODULES``; its test writes a tiny file the way the source repository writes it (tests/models/test_zoo_formats.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.registry import Registry, UnknownNameError

StateDictReader = Callable[..., dict[str, Any]]  # (entry, path, cache_dir=...) -> open_clip state dict


@dataclass(frozen=True)
class ZooFormat:
    """A checkpoint format: a reader of the file into an open_clip state dict, or a full ``load``."""

    description: str
    source: str  # repository + commit where the layout was read
    to_state_dict: StateDictReader | None = None
    custom_load: Callable[..., Any] | None = None

    def load(
        self, entry: Any, path: Path, *, device: str = "cpu", precision: str = "fp32", cache_dir: str | None = None
    ):
        """Load ``entry`` from ``path`` as a :class:`fsc_clip.models.LoadedModel`."""
        if self.custom_load is not None:
            return self.custom_load(entry, path, device=device, precision=precision, cache_dir=cache_dir)
        from fsc_clip.models.zoo.formats.common import build_model

        assert self.to_state_dict is not None
        state_dict = self.to_state_dict(entry, path, cache_dir=cache_dir)
        return build_model(entry, state_dict, path, device=device, precision=precision)


_MODULES = tuple(
    f"fsc_clip.models.zoo.formats.{m}" for m in ("open_clip_sd", "loralib", "clove", "transformers_clip", "hub")
)
FORMATS: Registry[ZooFormat] = Registry("zoo checkpoint format", lazy_modules=_MODULES)


def get_format(name: str) -> ZooFormat:
    """The format called ``name``; a :class:`ModelLoadError` listing the known ones otherwise."""
    try:
        return FORMATS.get(name)
    except UnknownNameError as err:
        raise ModelLoadError(str(err)) from None
