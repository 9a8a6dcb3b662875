"""Exceptions whose message is meant for the user: the CLI prints them without a traceback.

Set ``FSC_CLIP_DEBUG=1`` to see the full traceback instead.
"""


class UserError(Exception):
    """Base class: something the user can fix (a missing file, a bad flag, absent data)."""


class DataNotFoundError(UserError, FileNotFoundError):
    """Expected data (a benchmark file, an image folder, a resource) is missing; says how to get it."""


class ResourceNotFoundError(UserError):
    """An optional system resource (spaCy pipeline, WordNet) is missing; says how to install it."""


class ModelLoadError(UserError):
    """A model or checkpoint cannot be loaded; says which tag/path and where we looked."""


class UnsafeCheckpointError(ModelLoadError):
    """A checkpoint needs arbitrary unpickling; we refuse and explain how to convert it."""


class OutputError(UserError, OSError):
    """A file or folder cannot be written (read-only, permission denied, disk full); names the path."""
