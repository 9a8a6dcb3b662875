"""Atomic, user-facing file writes: the one home for every file the toolkit writes.

Every writer goes through :func:`atomic_write`: the content goes to a temporary file in the target's folder,
is flushed and fsync'ed, then renamed over the target (``os.replace`` is atomic on POSIX and Windows). A
crash, a kill or a full disk therefore leaves either the previous file or the new one, never a torn file.
An ``OSError`` (read-only file system, permission denied, disk full) becomes an :class:`~fsc_clip.errors.OutputError`
that names the path and says what to do, so no raw traceback reaches the user.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from fsc_clip.errors import OutputError

_ADVICE = {
    errno.ENOSPC: "the disk is full: free space or choose another output folder",
    errno.EDQUOT: "the disk quota is exceeded: free space or choose another output folder",
    errno.EROFS: "the file system is read-only: choose a writable output folder",
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "permission denied: choose a folder you can write to, or fix its permissions",
}


def output_error(path: str | os.PathLike[str], exc: OSError, action: str = "write") -> OutputError:
    """Build the user-facing error for a failed write of ``path``."""
    advice = _ADVICE.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(f"cannot {action} {path}: {advice} ({exc.__class__.__name__}: {exc.strerror or exc})")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; on success rename it over ``path``.

    Args:
        path: The final file. Its parent folder is created when missing.
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        encoding: Text encoding (ignored for ``"wb"``).

    Yields:
        The open temporary file. If the block raises, the temporary file is removed and ``path`` is untouched.

    Raises:
        OutputError: The folder or file cannot be written (read-only, permissions, disk full).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise output_error(target, exc) from exc
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode a plain open() would
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(target, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2, **kwargs: Any) -> None:
    """Serialise ``obj`` as JSON (with a trailing newline) and write it to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=indent, **kwargs) + "\n")


def write_with(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Atomically write ``path`` with ``writer(handle)`` on a binary handle (e.g. ``torch.save``, ``np.savez``)."""
    with atomic_write(path, "wb") as handle:
        writer(handle)


def ensure_writable_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create ``path`` if needed and prove that a file can be written in it, before any expensive work.

    Args:
        path: The folder.
        what: How to name the folder in the error (e.g. ``"--out"``).

    Returns:
        The folder as a :class:`~pathlib.Path`.

    Raises:
        OutputError: The folder cannot be created or written.
    """
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".fsc-clip-write-probe.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{what} {folder} is not writable: {_ADVICE.get(exc.errno or 0, exc.strerror)}") from exc
    return folder
