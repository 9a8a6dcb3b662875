"""Small helpers shared by the benchmark adapters (file reading with clear errors, image lookup)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".JPEG", ".JPG", ".PNG", ".webp")


def read_json(path: Path, what: str = "") -> Any:
    """Parse a JSON file; a JSON-lines file (one object per line) is returned as a list."""
    if not path.is_file():
        raise DataNotFoundError(f"{what + ': ' if what else ''}expected {path} but it does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise DataNotFoundError(
                f"{what + ': ' if what else ''}{path} is not valid JSON / JSON lines: {err}"
            ) from err


def records(data: Any) -> list[dict]:
    """A list of records from a JSON list or a dict of id -> record (ids kept as ``_id``)."""
    if isinstance(data, dict):
        return [{"_id": k, **v} if isinstance(v, dict) else {"_id": k, "value": v} for k, v in data.items()]
    return list(data)


def find_image(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` if it exists, else ``folder/stem<ext>`` for the usual image extensions."""
    direct = folder / stem
    if direct.is_file():
        return direct
    for ext in IMAGE_EXTS:
        cand = folder / f"{stem}{ext}"
        if cand.is_file():
            return cand
    return None


def require_images(refs: Iterable[Any], what: str, obtain: str) -> None:
    """Raise DataNotFoundError naming the first missing image file (and how many) before anything is encoded.

    For benchmarks that score in their own ``run()`` (``Benchmark.check_images`` takes items)."""
    missing = sorted({str(r.path) for r in refs if not r.exists()})
    if missing:
        raise DataNotFoundError(f"{what}: {len(missing)} image file(s) missing, e.g. {missing[0]}. {obtain}")


class SchemaError(DataNotFoundError):
    """A benchmark file parses but a record lacks a field (or has the wrong type); names file, record and field."""


def field(record: Any, name: str, path: Path, index: int | str, what: str = "") -> Any:
    """``record[name]``, or a :class:`SchemaError` naming the file, the record and the missing field.

    Args:
        record: One parsed record (dict, or a CSV row as a dict).
        name: The field to read.
        path: The file the record came from (named in the error).
        index: The record's index or id (named in the error).
        what: The benchmark name, prefixed to the message.
    """
    if isinstance(record, dict) and name in record:
        return record[name]
    present = sorted(record) if isinstance(record, dict) else type(record).__name__
    raise SchemaError(
        f"{what + ': ' if what else ''}{path}: record {index!r} has no field {name!r} (fields present: {present}). "
        "The file does not have the layout this benchmark expects: re-download it from the official source "
        "(see `fsc-clip list benchmarks`)."
    )
