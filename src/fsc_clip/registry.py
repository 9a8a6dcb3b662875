"""One small generic registry used by every extension point (losses, negatives, data sources, benchmarks).

Adding a component is one decorated function or class in one new file; listing, lookup and the
"did you mean" error come for free, and tests can be parametrised over ``registry.names()``.
"""

from __future__ import annotations

import difflib
import importlib
import weakref
from collections.abc import Callable, Iterator
from typing import ClassVar, Generic, TypeVar, overload

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

    # every registry ever created, so that tests can check that none leaks registrations (tests/conftest.py)
    _instances: ClassVar[weakref.WeakSet] = weakref.WeakSet()

    def __init__(self, kind: str, lazy_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy_modules = list(lazy_modules)
        self._loaded = not self._lazy_modules
        Registry._instances.add(self)

    @classmethod
    def instances(cls) -> list[Registry]:
        """All live registries (for the test suite's leak check)."""
        return list(cls._instances)

    def snapshot(self) -> dict[str, T]:
        """A copy of the current name -> object mapping (after lazy loading), for :meth:`restore`."""
        self._ensure_loaded()
        return dict(self._items)

    def restore(self, snapshot: dict[str, T]) -> list[str]:
        """Reset the mapping to ``snapshot``; returns the names that were added, removed or replaced since."""
        changed = sorted(
            n for n in set(self._items) | set(snapshot) if n not in self._items or snapshot.get(n) is not self._items[n]
        )
        self._items = dict(snapshot)
        return changed

    @overload
    def register(self, name: str, obj: None = None, *, override: bool = False) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, override: bool = False) -> T: ...

    def register(self, name: str, obj: T | None = None, *, override: bool = False) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")``.

        Without ``obj`` it returns the decorator (typed ``T -> T``), with ``obj`` it registers and returns it; the
        overloads tell a type checker which, so decorated functions keep a callable type.
        """

        def _add(item: T) -> T:
            if name in self._items and not override:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return _add(obj) if obj is not None else _add

    def _ensure_loaded(self) -> None:
        """Import the lazy modules once. A module that fails to import raises here, on every lookup until it
        imports: a registry never silently answers without one of its modules."""
        if self._loaded:
            return
        for module in self._lazy_modules:
            importlib.import_module(module)
        self._loaded = True

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
