"""Training data sources: a registry from ``DataConfig.source`` to a reader.

A table reader (CSV, TSV, JSONL) returns a :class:`Table` — image paths, captions and optional
precomputed negative candidates, one entry per row — which the map-style loader indexes. The
webdataset reader returns a :class:`ShardList`, streamed by the webdataset loader. Adding a format
is one ``@SOURCES.register`` function returning one of the two.
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fsc_clip.config import ConfigError
from fsc_clip.data.config import DataConfig
from fsc_clip.errors import DataNotFoundError
from fsc_clip.registry import Registry


class PackedStrings:
    """An immutable list of strings stored as one UTF-8 buffer + offsets (two numpy arrays).

    Millions of Python ``str`` objects would be copied page by page into every forked DataLoader
    worker as their reference counts change (copy-on-write); two flat arrays are shared for free.
    """

    def __init__(self, items: list[str]) -> None:
        import numpy as np

        encoded = [s.encode("utf-8") for s in items]
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self._offsets[1:])
        self._data = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return self._data[self._offsets[i] : self._offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class PackedNegatives:
    """Per-row ``{type: candidates}`` (or ``None``), packed as JSON in :class:`PackedStrings`."""

    def __init__(self, rows: list[dict[str, list[str]] | None]) -> None:
        self._rows = PackedStrings([json.dumps(r, ensure_ascii=False) if r else "" for r in rows])

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> dict[str, list[str]] | None:
        text = self._rows[i]
        return json.loads(text) if text else None

    def __iter__(self):
        return (self[i] for i in range(len(self)))


@dataclass
class Table:
    """Rows of an image–caption table (paths already resolved), packed for cheap sharing with workers."""

    paths: PackedStrings
    captions: PackedStrings
    negatives: PackedNegatives | None  # per row: type -> candidates
    origin: str  # the file, for messages
    negative_types: list[str] = field(default_factory=list)  # types present in ``negatives``, first-seen order

    def __len__(self) -> int:
        return len(self.captions)

    @classmethod
    def from_lists(
        cls, paths: list[str], captions: list[str], negatives: list[dict[str, list[str]] | None] | None, origin: str
    ) -> Table:
        packed = PackedNegatives(negatives) if negatives is not None else None
        types = list(dict.fromkeys(t for row in negatives or [] for t in row or {}))
        return cls(PackedStrings(paths), PackedStrings(captions), packed, origin, types)


@dataclass
class ShardList:
    """Webdataset shard URLs (brace-expanded, ``::``-joined specs flattened), in spec order."""

    urls: list[str]
    origin: str


SOURCES: Registry[Callable[[DataConfig], Table | ShardList]] = Registry("data source")


def resolve_source(cfg: DataConfig) -> str:
    """The registered source name for ``cfg`` (resolving ``auto`` from the path)."""
    if cfg.source != "auto":
        return cfg.source
    spec = cfg.train_data.strip()
    lower = spec.lower()
    if "::" in spec or "{" in spec or lower.endswith(".tar") or (Path(spec).is_dir() and any(Path(spec).glob("*.tar"))):
        return "webdataset"
    for suffix, name in ((".tsv", "tsv"), (".csv", "csv"), (".jsonl", "jsonl"), (".json", "jsonl")):
        if lower.endswith(suffix):
            return name
    raise ConfigError(
        f"data.train_data={spec!r}: cannot tell the format from the name; set data.source to one of "
        f"{', '.join(SOURCES.names())}."
    )


def load_source(cfg: DataConfig) -> Table | ShardList:
    """Read ``cfg.train_data`` with the configured (or detected) source."""
    if not cfg.train_data:
        raise ConfigError("data.train_data is empty: pass --train-data PATH (a .csv/.tsv/.jsonl table or .tar shards).")
    return SOURCES.get(resolve_source(cfg))(cfg)


def parse_negative_list(text: object) -> list[str]:
    """Parse a precomputed-negatives cell: a Python/JSON list literal, or one plain caption.

    ``ast.literal_eval`` only evaluates literals, so a hostile cell cannot run code; a cell that is
    not a well-formed list of strings yields no candidates rather than an error.
    """
    if isinstance(text, (list, tuple)):
        return [str(t) for t in text if isinstance(t, str) and t.strip()]
    if not isinstance(text, str) or not text.strip():
        return []
    text = text.strip()
    if text[0] not in "[(":
        return [text]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [v for v in value if isinstance(v, str) and v.strip()]


def _require_file(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataNotFoundError(f"{what} not found: {p} (set --train-data / data.train_data to an existing file).")
    return p


def _image_root(cfg: DataConfig, table_path: Path) -> Path:
    root = Path(cfg.image_root).expanduser() if cfg.image_root else table_path.parent
    if cfg.image_root and not root.is_dir():
        raise DataNotFoundError(f"data.image_root {root} is not a folder; point it at the folder holding the images.")
    return root


def _resolve(root: Path, rel: str) -> str:
    rel = rel.strip()
    return rel if not rel or Path(rel).is_absolute() else str(root / rel)


def _check_columns(found: list[str], cfg: DataConfig, path: Path) -> None:
    for key, flag in ((cfg.csv_img_key, "csv_img_key"), (cfg.csv_caption_key, "csv_caption_key")):
        if key not in found:
            raise ConfigError(
                f"{path}: no column {key!r} (columns: {found}). Set data.{flag} (--{flag.replace('_', '-')}) "
                "to the right name."
            )


def _read_delimited(cfg: DataConfig, default_sep: str) -> Table:
    path = _require_file(cfg.train_data, "Training table")
    root = _image_root(cfg, path)
    sep = cfg.csv_separator or default_sep
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # negative lists can be long cells
    paths: list[str] = []
    captions: list[str] = []
    negs: list[dict[str, list[str]] | None] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=sep)
        columns = list(reader.fieldnames or [])
        _check_columns(columns, cfg, path)
        neg_key = cfg.csv_neg_key if cfg.csv_neg_key in columns else None
        for row in reader:
            paths.append(_resolve(root, row.get(cfg.csv_img_key) or ""))
            captions.append((row.get(cfg.csv_caption_key) or "").strip())
            if neg_key:
                cands = parse_negative_list(row.get(neg_key))
                negs.append({cfg.csv_neg_type: cands} if cands else None)
    return Table.from_lists(paths, captions, negs if neg_key else None, str(path))


@SOURCES.register("csv")
def read_csv(cfg: DataConfig) -> Table:
    """Comma-separated table with a header (open_clip's ``--csv-img-key``/``--csv-caption-key`` layout)."""
    return _read_delimited(cfg, ",")


@SOURCES.register("tsv")
def read_tsv(cfg: DataConfig) -> Table:
    """Tab-separated table with a header, e.g. COCO ``train_neg_clip.tsv`` (filepath, title, neg_caption)."""
    return _read_delimited(cfg, "\t")


@SOURCES.register("jsonl")
def read_jsonl(cfg: DataConfig) -> Table:
    """One JSON object per line with image path, caption and optionally negatives fields.

    The negatives field may be a list (one type, ``csv_neg_type``) or a mapping type -> candidates.
    """
    path = _require_file(cfg.train_data, "Training JSONL")
    root = _image_root(cfg, path)
    paths: list[str] = []
    captions: list[str] = []
    negs: list[dict[str, list[str]] | None] = []
    has_negs = False
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{lineno}: not valid JSON ({err.msg})") from err
            if not paths:
                _check_columns(list(row), cfg, path)
            paths.append(_resolve(root, str(row.get(cfg.csv_img_key) or "")))
            captions.append(str(row.get(cfg.csv_caption_key) or "").strip())
            raw = row.get(cfg.csv_neg_key) if cfg.csv_neg_key else None
            if isinstance(raw, dict):
                entry = {str(t): parse_negative_list(c) for t, c in raw.items()}
                entry = {t: c for t, c in entry.items() if c}
            else:
                cands = parse_negative_list(raw)
                entry = {cfg.csv_neg_type: cands} if cands else {}
            has_negs = has_negs or bool(entry)
            negs.append(entry or None)
    return Table.from_lists(paths, captions, negs if has_negs else None, str(path))


def expand_shards(spec: str) -> list[str]:
    """Expand a webdataset spec: ``::``-separated parts, each brace-expanded; a folder means its ``*.tar``."""
    from braceexpand import braceexpand

    urls: list[str] = []
    for part in (p.strip() for p in spec.split("::")):
        if not part:
            continue
        if Path(part).is_dir():
            urls.extend(sorted(str(p) for p in Path(part).glob("*.tar")))
        else:
            urls.extend(braceexpand(part))
    return urls


@SOURCES.register("webdataset")
def read_webdataset(cfg: DataConfig) -> ShardList:
    """Webdataset ``.tar`` shards (local paths, or any URL/``pipe:`` that webdataset can open)."""
    urls = expand_shards(cfg.train_data)
    local = [u for u in urls if "://" not in u and not u.startswith("pipe:")]
    missing = [u for u in local if not Path(u).is_file()]
    if not urls or (local and len(missing) == len(local)):
        raise DataNotFoundError(
            f"No webdataset shards found for data.train_data={cfg.train_data!r}"
            + (f" (e.g. {missing[0]} does not exist)" if missing else "")
            + ". Use a brace pattern like /data/cc3m/{00000..00331}.tar; join several with '::'."
        )
    if missing:
        raise DataNotFoundError(f"{len(missing)} of {len(urls)} shards are missing, e.g. {missing[0]}.")
    return ShardList(urls, cfg.train_data)


def list_source_lines() -> list[str]:
    """Lines for ``fsc-clip list sources``: each registered data source with its one-line description."""
    lines = []
    for name in SOURCES.names():
        doc = (SOURCES.get(name).__doc__ or "").strip().splitlines()
        lines.append(f"{name:<11} {doc[0] if doc else ''}")
    return lines
