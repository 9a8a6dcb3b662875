"""Precompute hard-negative candidates for a caption file (``fsc-clip negatives``).

Output: JSONL, one object per distinct caption, in input order::

    {"caption": "...", "negatives": {"negclip": [...], "replace": [...], "ngram_shuffle_2": [...]}}

A type that cannot apply to a caption gets an empty list. Candidates depend only on ``(seed, caption)``, so the
result is the same for any worker count or chunking.

Never a torn output: work goes to ``<output>.partial`` (one append + fsync per chunk, so an interrupted run loses at
most one chunk and a re-run resumes from it), and the output itself is only written at the end, atomically
(:func:`fsc_clip.fileio.atomic_write`): previous output lines first, then the new ones. Re-running skips captions
already in the output. An output folder that cannot be written is reported before any caption is read.

Never mixed: the settings the candidates depend on (style, per_type, seed, context_length) are recorded in
``<output>.settings.json``; resuming with other settings, or into a file without that record, is refused
(``--overwrite`` replaces the output instead).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsc_clip.config import ConfigError
from fsc_clip.errors import DataNotFoundError, OutputError
from fsc_clip.fileio import atomic_write, ensure_writable_dir, output_error, write_json
from fsc_clip.negatives.stats import NegativeStats
from fsc_clip.negatives.window import DEFAULT_CONTEXT_LENGTH
from fsc_clip.registry import UnknownNameError

logger = logging.getLogger(__name__)

# Caption columns tried, in order, when --caption-column is not given: ``title`` is what our own TSVs use (COCO's
# train_neg_clip.tsv layout, the demo's splits, the training default ``data.csv_caption_key``).
CAPTION_COLUMNS: tuple[str, ...] = ("title", "caption", "captions", "text", "sentence")


@dataclass
class PrecomputeConfig:
    """Settings of one precompute run (``caption_column=None``: detect it, see :data:`CAPTION_COLUMNS`)."""

    input: str
    output: str
    caption_column: str | None = None
    style: str = "fsc-clip"
    per_type: int = 4
    seed: int = 0
    workers: int = 1
    chunk_size: int = 256
    progress: bool = True
    context_length: int | None = DEFAULT_CONTEXT_LENGTH
    overwrite: bool = False

    def settings(self) -> dict[str, Any]:
        """What the candidates depend on; a resumed run must match these exactly (see :func:`check_settings`)."""
        keys = ("style", "per_type", "seed", "context_length")
        return {key: getattr(self, key) for key in keys}

    def __post_init__(self) -> None:
        if self.per_type < 1:
            raise ConfigError(f"--per-type must be >= 1, got {self.per_type}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.context_length is not None and self.context_length <= 2:
            raise ConfigError(f"--context-length must be > 2 (SOT + EOT + text), got {self.context_length}")


def read_captions(path: str | os.PathLike[str], column: str | None = None) -> list[str]:
    """Distinct non-empty captions of a TSV/CSV/JSONL/TXT file, in file order.

    The format follows the extension (``.tsv``, ``.csv``, ``.jsonl``/``.json``, anything else = one caption per
    line); ``column`` names the caption field of TSV/CSV/JSONL files (``None``: the first of
    :data:`CAPTION_COLUMNS` present).

    Raises:
        DataNotFoundError: The file is missing or unreadable.
        ConfigError: The caption column is absent or cannot be detected (the message names the file and lists the
            columns found).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"Caption file not found: {path} (pass an existing file to --input).")
    try:
        rows = list(_iter_captions(path, column))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataNotFoundError(f"Cannot read caption file {path}: {err}") from err
    return list(dict.fromkeys(r.strip() for r in rows if r and r.strip()))


def caption_column(path: Path, columns: Sequence[str], wanted: str | None, where: str = "") -> str:
    """The caption column: ``wanted`` if given and present, else the first of :data:`CAPTION_COLUMNS` present."""
    listed = ", ".join(repr(c) for c in columns) or "none"
    if wanted is not None:
        if wanted not in columns:
            raise ConfigError(
                f"{path}{where} has no column {wanted!r} (columns: {listed}); choose one with --caption-column."
            )
        return wanted
    for name in CAPTION_COLUMNS:
        if name in columns:
            return name
    raise ConfigError(
        f"{path}{where}: cannot tell which column holds the captions (columns: {listed}; looked for "
        f"{', '.join(CAPTION_COLUMNS)}); pass --caption-column NAME."
    )


def _iter_captions(path: Path, column: str | None) -> Iterator[str]:
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8", newline="") as handle:
        if suffix in (".tsv", ".csv"):
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            name = caption_column(path, list(reader.fieldnames or []), column)
            yield from (row[name] or "" for row in reader)
        elif suffix in (".jsonl", ".json"):
            yield from _iter_jsonl(path, handle, column)
        else:
            yield from handle


def _iter_jsonl(path: Path, handle: Any, column: str | None) -> Iterator[str]:
    name = column
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataNotFoundError(f"{path}:{number} is not valid JSON ({err.msg}).") from err
        if not isinstance(record, dict):
            raise ConfigError(f"{path}:{number} is not a JSON object; each line must be one record.")
        if name is None:  # detected from the first record, then required of every record
            name = caption_column(path, list(record), None, f":{number}")
        if name not in record:
            raise ConfigError(
                f"{path}:{number} has no field {name!r} (fields: {', '.join(record) or 'none'}); "
                "choose one with --caption-column."
            )
        yield str(record[name])


def partial_path(output: Path) -> Path:
    """Where an unfinished run keeps its chunks (next to the output)."""
    return output.with_name(output.name + ".partial")


def read_done(path: Path, truncate: bool = False) -> tuple[set[str], int]:
    """Captions of the complete lines of a JSONL file, and the byte length of those lines.

    With ``truncate`` a trailing partial line (interrupted write) is cut off the file.
    """
    if not path.exists():
        return set(), 0
    done: set[str] = set()
    good_end = 0
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                done.add(json.loads(raw)["caption"])
            except (json.JSONDecodeError, KeyError, TypeError):
                break
            good_end += len(raw)
    if truncate and good_end != path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(good_end)
    return done, good_end


def _chunk_lines(job: tuple[Sequence[str], str, int, int, int | None]) -> tuple[str, NegativeStats]:
    """Worker: JSONL text for one chunk of captions, and its counts."""
    from fsc_clip.negatives import generate_candidates

    captions, style, per_type, seed, context_length = job
    stats = NegativeStats()
    results = generate_candidates(
        captions, style=style, per_type=per_type, seed=seed, context_length=context_length, stats=stats
    )
    text = "".join(
        json.dumps({"caption": c, "negatives": r}, ensure_ascii=False) + "\n" for c, r in zip(captions, results)
    )
    return text, stats


def settings_path(output: Path) -> Path:
    """The sidecar recording the settings an output (and its ``.partial``) was made with."""
    return output.with_name(output.name + ".settings.json")


def check_settings(cfg: PrecomputeConfig, output: Path) -> None:
    """Refuse to resume into an output made with other settings, so two runs are never silently mixed.

    With ``cfg.overwrite`` the old output, its ``.partial`` and its settings are discarded first (the user asked to
    replace them), so the new run starts clean and an interrupted one can still only resume with its own settings.
    """
    partial, sidecar = partial_path(output), settings_path(output)
    if cfg.overwrite:
        for path in (output, partial, sidecar):
            path.unlink(missing_ok=True)
        return
    if not (output.exists() or partial.exists()):
        return
    if not sidecar.exists():
        raise OutputError(
            f"{output} exists but was not written by this version of `fsc-clip negatives` (no {sidecar.name}), so "
            "its settings are unknown and resuming could mix candidates of different settings. Pass --overwrite to "
            "replace it, or choose another --output."
        )
    try:
        old = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise OutputError(f"{sidecar} is unreadable ({exc}); pass --overwrite or choose another --output.") from exc
    new = cfg.settings()
    diff = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
    if diff:
        detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise OutputError(
            f"{output} was made with other settings ({detail}); resuming would mix them. Pass the same settings, "
            "--overwrite to replace it, or choose another --output."
        )


def check_output(output: Path) -> None:
    """Fail before any work when ``output`` cannot be written (exit 2 through the CLI, naming the path)."""
    if output.is_dir():
        raise OutputError(f"--output {output} is a folder; give a file name such as {output / 'negatives.jsonl'}.")
    ensure_writable_dir(output.parent, what=f"--output folder (for {output.name})")


def precompute(cfg: PrecomputeConfig) -> dict[str, Any]:
    """Write (or complete) ``cfg.output``.

    Returns:
        ``{"total", "skipped", "written"}`` caption counts and ``"warnings"`` (messages about scarce or
        invisible negatives, also logged).
    """
    from tqdm import tqdm

    from fsc_clip.negatives import style_types
    from fsc_clip.negatives.resources import check_spacy_setting

    try:
        style_types(cfg.style)  # fail fast on an unknown style, before any worker starts
    except UnknownNameError as err:
        raise ConfigError(f"--style: {err}") from err
    output = Path(cfg.output)
    check_output(output)
    check_spacy_setting()
    check_settings(cfg, output)
    captions = read_captions(cfg.input, cfg.caption_column)
    partial = partial_path(output)
    write_json(settings_path(output), cfg.settings())
    done_out, out_bytes = read_done(output)
    done_partial, _ = read_done(partial, truncate=True)
    todo = [c for c in captions if c not in done_out and c not in done_partial]
    chunks = [todo[i : i + cfg.chunk_size] for i in range(0, len(todo), cfg.chunk_size)]
    jobs = [(chunk, cfg.style, cfg.per_type, cfg.seed, cfg.context_length) for chunk in chunks]
    stats = NegativeStats(context_length=cfg.context_length)
    bar = tqdm(total=len(todo), unit="caption", desc="negatives", disable=not cfg.progress)
    try:
        with partial.open("a", encoding="utf-8") as out:
            for chunk, (text, chunk_stats) in zip(chunks, _run_jobs(jobs, cfg.workers)):
                out.write(text)  # one write per chunk, then fsync: a crash loses at most the current chunk
                out.flush()
                os.fsync(out.fileno())
                stats.merge(chunk_stats)
                bar.update(len(chunk))
    except OSError as exc:
        raise output_error(partial, exc) from exc
    finally:
        bar.close()
    if todo or done_partial or not output.exists() or output.stat().st_size != out_bytes:
        _publish(output, out_bytes, partial)
    partial.unlink(missing_ok=True)
    warnings = stats.messages()
    for message in warnings:
        logger.warning(message)
    return {"total": len(captions), "skipped": len(captions) - len(todo), "written": len(todo), "warnings": warnings}


def _publish(output: Path, out_bytes: int, partial: Path) -> None:
    """Atomically replace ``output`` by its complete lines followed by the lines of ``partial``."""
    with atomic_write(output, "wb") as dest:
        if out_bytes:
            with output.open("rb") as src:
                _copy_prefix(src, dest, out_bytes)
        with partial.open("rb") as src:
            shutil.copyfileobj(src, dest)


def _copy_prefix(src: Any, dest: Any, n: int) -> None:
    while n > 0:
        block = src.read(min(n, 1 << 20))
        if not block:
            break
        dest.write(block)
        n -= len(block)


def _run_jobs(
    jobs: Sequence[tuple[Sequence[str], str, int, int, int | None]], workers: int
) -> Iterator[tuple[str, NegativeStats]]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_chunk_lines, jobs)
        return
    import multiprocessing as mp

    # spawn: workers start clean (no forked spaCy/torch thread state) and load the resources once each.
    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_chunk_lines, jobs)
