"""Precompute hard-negative candidates for a caption file (``fsc-clip negatives``).

Output: JSONL, one object per distinct caption, in input order::

    {"caption": "...", "negatives": {"negclip": [...], "replace": [...], "ngram_shuffle_2": [...]}}

A type that cannot apply to a caption gets an empty list. Candidates depend only on ``(seed, caption)``, so the
result is the same for any worker count or chunking. Chunks are appended with one write + fsync each; re-running
skips captions already in the output (a half-written last line from an interruption is dropped first).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fsc_clip.config import ConfigError
from fsc_clip.errors import DataNotFoundError
from fsc_clip.registry import UnknownNameError


@dataclass
class PrecomputeConfig:
    """Settings of one precompute run."""

    input: str
    output: str
    caption_column: str = "caption"
    style: str = "fsc-clip"
    per_type: int = 4
    seed: int = 0
    workers: int = 1
    chunk_size: int = 256
    progress: bool = True

    def __post_init__(self) -> None:
        if self.per_type < 1:
            raise ConfigError(f"--per-type must be >= 1, got {self.per_type}")
        if self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {self.chunk_size}")


def read_captions(path: str | os.PathLike[str], column: str = "caption") -> list[str]:
    """Distinct non-empty captions of a TSV/CSV/JSONL/TXT file, in file order.

    The format follows the extension (``.tsv``, ``.csv``, ``.jsonl``/``.json``, anything else = one caption per
    line); ``column`` names the caption field of TSV/CSV/JSONL files.

    Raises:
        DataNotFoundError: The file is missing or unreadable.
        ConfigError: The caption column is absent (the message lists the columns found).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"Caption file not found: {path} (pass an existing file to --input).")
    try:
        rows = list(_iter_captions(path, column))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataNotFoundError(f"Cannot read caption file {path}: {err}") from err
    return list(dict.fromkeys(r.strip() for r in rows if r and r.strip()))


def _iter_captions(path: Path, column: str) -> Iterator[str]:
    suffix = path.suffix.lower()
    with path.open(encoding="utf-8", newline="") as handle:
        if suffix in (".tsv", ".csv"):
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            if column not in (reader.fieldnames or []):
                raise ConfigError(
                    f"{path} has no column {column!r} (columns: {', '.join(reader.fieldnames or [])}); "
                    "choose one with --caption-column."
                )
            yield from (row[column] or "" for row in reader)
        elif suffix in (".jsonl", ".json"):
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DataNotFoundError(f"{path}:{number} is not valid JSON ({err.msg}).") from err
                if not isinstance(record, dict) or column not in record:
                    raise ConfigError(f"{path}:{number} has no field {column!r}; choose one with --caption-column.")
                yield str(record[column])
        else:
            yield from handle


def read_done(output: Path) -> set[str]:
    """Captions already in ``output``; a trailing partial line (interrupted write) is truncated away."""
    if not output.exists():
        return set()
    done: set[str] = set()
    good_end = 0
    with output.open("rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            try:
                done.add(json.loads(raw)["caption"])
            except (json.JSONDecodeError, KeyError, TypeError):
                break
            good_end += len(raw)
    if good_end != output.stat().st_size:
        with output.open("r+b") as handle:
            handle.truncate(good_end)
    return done


def _chunk_lines(job: tuple[Sequence[str], str, int, int]) -> str:
    """Worker: JSONL text for one chunk of captions."""
    from fsc_clip.negatives import generate_candidates

    captions, style, per_type, seed = job
    results = generate_candidates(captions, style=style, per_type=per_type, seed=seed)
    return "".join(
        json.dumps({"caption": c, "negatives": r}, ensure_ascii=False) + "\n" for c, r in zip(captions, results)
    )


def precompute(cfg: PrecomputeConfig) -> dict[str, int]:
    """Write (or complete) ``cfg.output``; returns ``{"total", "skipped", "written"}`` caption counts."""
    from tqdm import tqdm

    from fsc_clip.negatives import style_types

    try:
        style_types(cfg.style)  # fail fast on an unknown style, before any worker starts
    except UnknownNameError as err:
        raise ConfigError(f"--style: {err}") from err
    captions = read_captions(cfg.input, cfg.caption_column)
    output = Path(cfg.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    done = read_done(output)
    todo = [c for c in captions if c not in done]
    chunks = [todo[i : i + cfg.chunk_size] for i in range(0, len(todo), cfg.chunk_size)]
    jobs = [(chunk, cfg.style, cfg.per_type, cfg.seed) for chunk in chunks]
    bar = tqdm(total=len(todo), unit="caption", desc="negatives", disable=not cfg.progress)
    with output.open("a", encoding="utf-8") as out:
        for chunk, text in zip(chunks, _run_jobs(jobs, cfg.workers)):
            out.write(text)  # one write per chunk, then fsync: a crash loses at most the current chunk
            out.flush()
            os.fsync(out.fileno())
            bar.update(len(chunk))
    bar.close()
    return {"total": len(captions), "skipped": len(captions) - len(todo), "written": len(todo)}


def _run_jobs(jobs: list[tuple[Sequence[str], str, int, int]], workers: int) -> Iterator[str]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_chunk_lines, jobs)
        return
    import multiprocessing as mp

    # spawn: workers start clean (no forked spaCy/torch thread state) and load the resources once each.
    with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(_chunk_lines, jobs)
