"""One small generic registry used by every extension point (losses, negatives, data sources, benchmarks).

Adding a component is one decorated function or class in one new file; listing, lookup and the
"did you mean" error come for free, and tests can be parametrised over ``registry.names()``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised when a name is not registered; the message lists close matches and all choices."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0])


class Registry(Generic[T]):
    """A name → object mapping with decorator registration and helpful lookup errors.

    Args:
        kind: What the registry holds, used in error messages (e.g. ``"benchmark"``).
        lazy_modules: Modules imported on first lookup so that their ``@register`` calls run.
            This keeps ``import fsc_clip`` light: nothing heavy is imported until a name is needed.
    """

    def __init__(self, kind: str, lazy_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy_modules = list(lazy_modules)
        self._loaded = not self._lazy_modules

    def register(self, name: str, obj: T | None = None, *, override: bool = False) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")``."""

        def _add(item: T) -> T:
            if name in self._items and not override:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return _add(obj) if obj is not None else _add

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._lazy_modules:
            importlib.import_module(module)

    def get(self, name: str) -> T:
        """Return the object registered as ``name`` or raise :class:`UnknownNameError`."""
        self._ensure_loaded()
        if name not in self._items:
            close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(sorted(self._items)) or '(none)'}."
            )
        return self._items[name]

    def names(self) -> list[str]:
        """All registered names, sorted."""
        self._ensure_loaded()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._items)
