"""BiVLC (IMirandaM/BiVLC; HF dataset imirandam/BiVLC): SugarCrepe items with a generated negative *image*.

Source: github.com/IMirandaM/BiVLC @ 84f0d1751e7212d97cdeaeb01353862c09908bcb (README "Dataset instances",
``main_evaluation_BiVLC.py``, ``src/CLIP_fine_tuning/CLIP_utils.py: evaluate_BiVLC``). The HF dataset's ``test`` split
is released as parquet shards ``data/test-0000k-of-00002.parquet`` with six columns: ``image`` and ``negative_image``
(HF ``Image`` features: a struct ``{bytes, path}`` with the encoded file), ``caption``, ``negative_caption``, ``type``
(replace / swap / add) and ``subtype`` (obj / att / rel). Published size: 2,933 instances.

Layout under ``<data_root>/bivlc/``: ``data/test-*.parquet`` as released. Reading them needs ``pyarrow``. The images
are decoded from the parquet once into ``images/<shard>/<row>_{pos,neg}.<ext>`` (option ``image_dir`` to put them
elsewhere), so that they are cached and embedded like every other image.

Scores (``evaluate_BiVLC``, strict ``>``; a tie is never a success), with c0 = caption, c1 = negative caption,
i0 = image, i1 = negative image:

- ``I2T``: ``s(c0,i0) > s(c1,i0)`` and ``s(c1,i1) > s(c0,i1)`` (Winoground's text score);
- ``T2I``: ``s(c0,i0) > s(c0,i1)`` and ``s(c1,i1) > s(c1,i0)`` (Winoground's image score);
- ``group``: both. Each also per type (``replace::I2T``, ...), as the script prints them. Column: ``group``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef, Item
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field
from fsc_clip.fileio import write_bytes

TYPES = ("replace", "swap", "add")
METRICS = (("I2T", "text"), ("T2I", "image"), ("group", "group"))  # BiVLC name, GroupItem outcome
COLUMNS = ("image", "caption", "negative_caption", "negative_image", "type", "subtype")
N_ITEMS = 2933  # README "Dataset statistics"


def read_parquet_records(path: Path, columns: Sequence[str], what: str) -> list[dict[str, Any]]:
    """The rows of a parquet file as dicts (``pyarrow``); clear errors for a missing library or column."""
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]  # optional dependency
    except ImportError as err:
        raise DataNotFoundError(
            f"{what}: reading {path} needs the parquet reader pyarrow: `pip install pyarrow`."
        ) from err
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError for a truncated or foreign file
        raise DataNotFoundError(f"{what}: {path} is not a readable parquet file ({err}). Re-download it.") from err
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SchemaError(
            f"{what}: {path} has no column(s) {missing} (columns present: {table.column_names}). Re-download the "
            "released parquet files."
        )
    return table.select(list(columns)).to_pylist()


def image_suffix(data: bytes) -> str:
    """File extension from the encoded bytes' magic number (PIL reads any of them whatever the name)."""
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    return ".img"


def materialise(value: Any, target_stem: Path, path: Path, index: int, column: str, what: str) -> Path:
    """Write an HF ``Image`` cell (``{bytes, path}``) to ``target_stem + ext`` unless an identical file is there."""
    data = value.get("bytes") if isinstance(value, dict) else None
    if not isinstance(data, bytes | bytearray) or not data:
        raise SchemaError(
            f"{what}: {path}: row {index} column {column!r} holds no encoded image bytes (got "
            f"{type(value).__name__}). Re-download the released parquet files."
        )
    target = target_stem.with_suffix(image_suffix(bytes(data)))
    if not (target.is_file() and target.stat().st_size == len(data)):
        write_bytes(target, bytes(data))
    return target


@BENCHMARKS.register("bivlc")
class BiVLC(Benchmark):
    name = "bivlc"
    task = GROUP
    description = "BiVLC (2,933 items): image + generated negative image x caption + negative caption (I2T/T2I/group)"
    expected_files = ("data/",)
    obtain = (
        "Download the parquet files of the HF dataset imirandam/BiVLC (data/test-*.parquet) into bivlc/data/ "
        "and `pip install pyarrow`."
    )
    kind = "compositional_2025"
    sub_scores = (*(m for m, _ in METRICS), *(f"{t}::{m}" for t in TYPES for m, _ in METRICS))
    required_sub_scores = ("group",)

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        shards = sorted((root / "data").glob("test-*.parquet"))
        if not shards:
            raise DataNotFoundError(f"{self.name}: no test-*.parquet under {root / 'data'}. {self.obtain}")
        image_dir = Path(self.options.get("image_dir", root / "images"))
        items = []
        for shard in shards:
            stem = shard.name.split(".")[0]
            for i, rec in enumerate(read_parquet_records(shard, COLUMNS, self.name)):
                typ = field(rec, "type", shard, i, self.name)
                if typ not in TYPES:
                    raise SchemaError(f"{self.name}: {shard}: row {i} has type {typ!r}, expected one of {TYPES}.")
                pos = materialise(rec["image"], image_dir / stem / f"{i}_pos", shard, i, "image", self.name)
                neg = materialise(rec["negative_image"], image_dir / stem / f"{i}_neg", shard, i, "negative_image",
                                  self.name)  # fmt: skip
                texts = (str(rec["caption"]), str(rec["negative_caption"]))
                items.append(GroupItem((ImageRef(pos), ImageRef(neg)), texts, typ, str(rec["subtype"] or "")))
        if len(items) != N_ITEMS:
            self._extra = {"n_items_published": N_ITEMS}
        return items

    def score(self, items: Sequence[Item], outcomes: Mapping[str, Sequence[bool]]) -> tuple[dict, dict]:
        """Pooled I2T / T2I / group accuracy, overall and per type (``item.subset``)."""
        from fsc_clip.evaluation.tasks import as_hit

        hits: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for i, it in enumerate(items):
            for metric, key in METRICS:
                for sub in (metric, f"{it.subset}::{metric}"):
                    full = self.full(sub)
                    counts[full] = counts.get(full, 0) + 1
                    hits[full] = hits.get(full, 0) + as_hit(outcomes[key][i])
        return {k: 100.0 * hits[k] / counts[k] for k in counts}, counts

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return scores[f"{cls.name}::group"]
