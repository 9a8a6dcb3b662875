"""Model zoo: every published compositionality fine-tune of CLIP by name (``load_model("negclip")``).

The entries are data (``fsc_clip/resources/zoo/models.yaml``); this module reads them into typed
:class:`ZooEntry` records, validates them, finds the weights file in the local cache, and hands it to the loader
of the entry's ``format`` (:mod:`fsc_clip.models.zoo.formats`). Nothing here downloads: ``fsc-clip fetch MODEL``
does, on request.

Where files live (checked in this order):

1. ``$FSC_CLIP_CACHE_DIR/zoo/<name>/<filename>`` (files fetched by URL or placed by hand: Google Drive files);
2. the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``) for entries with an ``hf_repo``.

Without ``FSC_CLIP_CACHE_DIR`` the first location is ``~/.cache/fsc_clip/zoo/<name>/``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fsc_clip.errors import ModelLoadError
from fsc_clip.registry import Registry

CACHE_ENV = "FSC_CLIP_CACHE_DIR"
ZOO_FILE = "models.yaml"
_REQUIRED = ("name", "paper", "architecture", "base", "source", "format", "quick_gelu", "context_length", "code")


@dataclass(frozen=True)
class ZooSource:
    """Where an entry's weights come from (any subset; ``filename`` is the file's name once downloaded)."""

    filename: str | None = None
    hf_repo: str | None = None
    url: str | None = None
    gdrive_id: str | None = None  # a single Google Drive file (manual download)
    gdrive_folder: str | None = None  # a Google Drive folder (manual download)
    sha256: str | None = None


@dataclass(frozen=True)
class LoraSpec:
    """loralib adapters stored in the file: merged as ``W + (B @ A) * alpha / rank``."""

    rank: int
    alpha: float


@dataclass(frozen=True)
class PatchSpec:
    """Weight-space interpolation after loading: ``(1 - weight) * base + weight * file``."""

    method: str
    weight: float
    base: str  # open_clip pretrained tag of ``architecture`` (``openai``) or a weights file


@dataclass(frozen=True)
class PublishedRef:
    """One row of ``fsc_clip/resources/published/<table>``: the row whose columns equal ``match``."""

    table: str
    match: dict[str, str]


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint (see the header of ``models.yaml`` for the meaning of each field)."""

    name: str
    paper: str
    architecture: str
    base: str
    source: ZooSource
    format: str
    quick_gelu: bool
    context_length: int
    code: dict[str, str]
    lora: LoraSpec | None = None
    patching: PatchSpec | None = None
    licence: str | None = None
    published: tuple[PublishedRef, ...] = ()
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """Model family of :attr:`architecture` (:mod:`fsc_clip.models.families`)."""
        from fsc_clip.models.families import family_of

        return family_of(self.architecture)

    @property
    def manual_only(self) -> bool:
        """True when no program can download the file (Google Drive, or a Hub repository without a file name)."""
        src = self.source
        return not (src.url or (src.hf_repo and src.filename))


def entry_from_dict(raw: dict[str, Any], where: str = ZOO_FILE) -> ZooEntry:
    """Build a :class:`ZooEntry` from one YAML mapping; errors name the entry and the field."""
    name = raw.get("name", "?")
    missing = [k for k in _REQUIRED if raw.get(k) is None]
    if missing:
        raise ModelLoadError(f"{where}: zoo entry {name!r} lacks field(s) {', '.join(missing)}.")
    try:
        lora = LoraSpec(int(raw["lora"]["rank"]), float(raw["lora"]["alpha"])) if raw.get("lora") else None
        patching = PatchSpec(**raw["patching"]) if raw.get("patching") else None
        published = tuple(
            PublishedRef(p["table"], {str(k): str(v) for k, v in p["match"].items()}) for p in raw.get("published", [])
        )
        return ZooEntry(
            name=str(raw["name"]),
            paper=str(raw["paper"]),
            architecture=str(raw["architecture"]),
            base=str(raw["base"]),
            source=ZooSource(**raw["source"]),
            format=str(raw["format"]),
            quick_gelu=bool(raw["quick_gelu"]),
            context_length=int(raw["context_length"]),
            code=dict(raw["code"]),
            lora=lora,
            patching=patching,
            licence=raw.get("licence"),
            published=published,
            notes=str(raw.get("notes") or ""),
        )
    except (TypeError, KeyError, ValueError) as err:
        raise ModelLoadError(f"{where}: zoo entry {name!r} is malformed ({type(err).__name__}: {err}).") from err


@cache
def read_zoo_file() -> tuple[dict[str, str], tuple[ZooEntry, ...]]:
    """``(papers, entries)`` of the shipped ``models.yaml``."""
    import yaml

    text = (resources.files("fsc_clip") / "resources" / "zoo" / ZOO_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    entries = tuple(entry_from_dict(raw) for raw in data["models"])
    return dict(data.get("papers") or {}), entries


ZOO: Registry[ZooEntry] = Registry("zoo model", lazy_modules=("fsc_clip.models.zoo._entries",))


def list_zoo() -> list[ZooEntry]:
    """Every zoo entry, by name."""
    return [ZOO.get(n) for n in ZOO.names()]


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name`` (case-insensitive).

    Raises:
        ModelLoadError: unknown name (the message suggests close names).
    """
    from fsc_clip.registry import UnknownNameError

    try:
        return ZOO.get(name.lower())
    except UnknownNameError as err:
        raise ModelLoadError(f"{err} See `fsc-clip list models --zoo`.") from None


def is_zoo_name(name: str | None) -> bool:
    """Whether ``name`` names a zoo entry (and not an open_clip architecture)."""
    return bool(name) and str(name).lower() in ZOO


def cache_root() -> Path:
    """``$FSC_CLIP_CACHE_DIR`` or ``~/.cache/fsc_clip``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fsc_clip").expanduser()


def local_dir(entry: ZooEntry) -> Path:
    """The folder for URL / Google Drive downloads of ``entry``: ``<cache_root>/zoo/<name>/``."""
    return cache_root() / "zoo" / entry.name


def local_path(entry: ZooEntry) -> Path | None:
    """Where a URL / Google Drive download of ``entry`` is stored (``None`` when its file name is unknown)."""
    return local_dir(entry) / entry.source.filename if entry.source.filename else None


def find_cached_file(entry: ZooEntry, cache_dir: str | None = None) -> Path | None:
    """The entry's weights file if it is on this machine (never downloads).

    When the authors do not name the file (``filename: null``), the single weights file placed in
    :func:`local_dir` is used.
    """
    from fsc_clip.models.checkpoint import WEIGHT_SUFFIXES

    path = local_path(entry)
    if path is not None and path.is_file():
        return path
    if path is None and local_dir(entry).is_dir():
        placed = sorted(p for p in local_dir(entry).iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
        if len(placed) == 1:
            return placed[0]
    src = entry.source
    if src.hf_repo and src.filename:
        from huggingface_hub import try_to_load_from_cache

        for name in _hub_candidates(entry):
            hit = try_to_load_from_cache(src.hf_repo, name, cache_dir=cache_dir)
            if isinstance(hit, str):
                return Path(hit)
    return None


def _hub_candidates(entry: ZooEntry) -> list[str]:
    name = entry.source.filename or ""
    if entry.format == "transformers_clip":  # the file name is not stated by READ-CLIP: both names exist on the Hub
        return list(dict.fromkeys([name, "model.safetensors", "pytorch_model.bin"]))
    return [name]


def missing_file_error(entry: ZooEntry) -> ModelLoadError:
    """The error for a zoo model whose file is not on this machine: what to place where, or what to run."""
    src = entry.source
    lines = [f"Zoo model {entry.name!r}: its weights are not on this machine (nothing is downloaded automatically)."]
    if not entry.manual_only:
        lines.append(f"  Download them with:  fsc-clip fetch {entry.name}")
    place = local_path(entry)
    target = str(place) if place else f"{local_dir(entry)}/ (the one weights file of the folder)"
    if src.gdrive_id:
        lines.append(f"  Google Drive file:   https://drive.google.com/uc?id={src.gdrive_id}")
        out = place or local_dir(entry) / "weights.pt"
        lines.append(f"    e.g. pip install gdown && gdown {src.gdrive_id} -O {out}")
    if src.gdrive_folder:
        lines.append(f"  Google Drive folder: https://drive.google.com/drive/folders/{src.gdrive_folder}")
        lines.append("    download the model's checkpoint from it in a browser (the file name is not documented)")
    if src.hf_repo:
        lines.append(f"  Hugging Face repo:   https://huggingface.co/{src.hf_repo}")
    lines.append(f"  Place the file at {target} (set {CACHE_ENV} to move this folder),")
    lines.append(f"  or pass it directly: --model {entry.name} --pretrained /path/to/file.")
    return ModelLoadError("\n".join(lines))


def resolve_file(entry: ZooEntry, pretrained: str | None = None, cache_dir: str | None = None) -> Path:
    """The weights file to load: ``pretrained`` when given (a path), else the cached file.

    Raises:
        ModelLoadError: no file (the message names the file to place and where, in well under a second).
    """
    if pretrained:
        path = Path(pretrained).expanduser()
        if not path.exists():
            raise ModelLoadError(f"--pretrained {pretrained} for zoo model {entry.name!r}: no such file.")
        return path
    if entry.format == "open_clip_hub":
        return Path(entry.source.hf_repo or "")  # open_clip's hub loader resolves it (offline-aware)
    found = find_cached_file(entry, cache_dir)
    if found is None:
        raise missing_file_error(entry)
    return found


def load_zoo_model(
    name: str,
    pretrained: str | None = None,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    cache_dir: str | None = None,
    force_quick_gelu: bool | None = None,
    entry: ZooEntry | None = None,
):
    """Load zoo model ``name`` (or ``entry``) from the cache or from ``pretrained`` (a local file).

    The activation is the entry's (QuickGELU for every OpenAI-initialised model) without any flag; a
    contradicting ``force_quick_gelu`` is refused rather than silently degrading the model.

    Returns:
        A :class:`fsc_clip.models.LoadedModel` whose spec names the zoo entry.
    """
    from fsc_clip.models.zoo.formats import get_format

    entry = entry or get_entry(name)
    if force_quick_gelu is not None and bool(force_quick_gelu) != entry.quick_gelu:
        want = "QuickGELU" if entry.quick_gelu else "GELU"
        raise ModelLoadError(f"zoo model {entry.name!r} was trained with {want}; drop the QuickGELU flag.")
    path = resolve_file(entry, pretrained, cache_dir)
    return get_format(entry.format).load(entry, path, device=device, precision=precision, cache_dir=cache_dir)


@cache
def _published_table(table: str) -> tuple[list[str], tuple[dict[str, str], ...]]:
    text = (resources.files("fsc_clip") / "resources" / "published" / table).read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    return list(reader.fieldnames or []), tuple(reader)


def published_rows(entry: ZooEntry) -> list[tuple[PublishedRef, dict[str, str]]]:
    """The published rows of ``entry``, each with its reference.

    Raises:
        ModelLoadError: a reference matches no row or several rows (names the table and the match).
    """
    out = []
    for ref in entry.published:
        _cols, rows = _published_table(ref.table)
        # column names compared case-insensitively: the tables' headers are kept as their sources spell them
        lowered = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in rows]
        hits = [r for r, low in zip(rows, lowered) if all(low.get(k.lower()) == v for k, v in ref.match.items())]
        if len(hits) != 1:
            raise ModelLoadError(
                f"zoo entry {entry.name!r}: {ref.table} has {len(hits)} rows matching {ref.match} (expected 1)."
            )
        out.append((ref, hits[0]))
    return out


def list_zoo_lines() -> list[str]:
    """Lines for ``fsc-clip list models --zoo``."""
    lines = [f"# fsc-clip model zoo ({len(ZOO)} published checkpoints; load with --model NAME)"]
    lines.append(f"{'name':<34} {'arch':<9} {'family':<10} {'format':<18} {'gelu':<6} source")
    for e in list_zoo():
        src = e.source
        where = (
            f"hf:{src.hf_repo}"
            if src.hf_repo
            else (src.url or f"gdrive (manual): {src.gdrive_id or src.gdrive_folder}")
        )
        gelu = "quick" if e.quick_gelu else "gelu"
        lines.append(f"{e.name:<34} {e.architecture:<9} {e.family:<10} {e.format:<18} {gelu:<6} {where}")
    return lines


__all__ = [
    "CACHE_ENV",
    "ZOO",
    "LoraSpec",
    "PatchSpec",
    "PublishedRef",
    "ZooEntry",
    "ZooSource",
    "cache_root",
    "entry_from_dict",
    "find_cached_file",
    "get_entry",
    "is_zoo_name",
    "list_zoo",
    "list_zoo_lines",
    "load_zoo_model",
    "local_dir",
    "local_path",
    "missing_file_error",
    "published_rows",
    "read_zoo_file",
    "resolve_file",
]
