"""VisMin (rabiulcste/vismin; HF dataset mair-lab/vismin-bench): 2 images x 2 captions with one minimal change.

Sources:

- github.com/rabiulcste/vismin @ 29ce2c013b936af26233bb9d7c42ea625e05b28e, ``vismin-bench/``: ``README.md`` (2,084
  samples; four kinds of minimal change: object, attribute, count, spatial relation; ``T0_I0`` = similarity of
  ``text_0`` and ``image_0``, ...), ``eval.py`` (``load_from_disk`` of the HF dataset, split ``test``; CLIP cosine
  similarities of the four pairs), ``metric.py: compute_contrastive_accuracy`` (per ``category``: ``text`` right iff
  ``T0_I0 > T1_I0`` and ``T1_I1 > T0_I1``; ``image`` iff ``T0_I0 > T0_I1`` and ``T1_I1 > T1_I0``; ``group`` iff both:
  Winoground's scores with ``text_k`` belonging to ``image_k``), ``solutions/vqa_solution.csv`` (one row per sample
  with its ``category``: object 579, attribute 294, counting 589, relation 622).
- HF ``mair-lab/vismin-bench`` @ b791454ffb8beb4747129daa73644805ff243569: a ``datasets`` ``save_to_disk`` folder,
  ``data/dataset_dict.json`` and ``data/test/data-0000k-of-00003.arrow`` (Arrow IPC streams) with ``state.json`` and
  ``dataset_info.json``; features ``id`` (int64), ``image_0`` / ``image_1`` (HF ``Image``: a struct ``{bytes, path}``),
  ``text_0``, ``text_1``, ``text_question_0/1`` and ``image_question_0/1`` (for the MLLM task, unused here),
  ``category``.

Layout under ``<data_root>/vismin/``: the dataset repository as downloaded, i.e. ``data/test/data-*.arrow``. Reading
them needs ``pyarrow``. The images are decoded once into ``images/<shard>/<row>_{0,1}.<ext>`` (option ``image_dir``
to put them elsewhere) and reused on later runs.

Scores: ``<category>::text|image|group`` for the four categories, as ``compute_contrastive_accuracy`` prints them
(strict ``>``: a tie is never a success). The column is the mean of the four ``group`` scores (our choice: the
official code reports no single number).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.base import GROUP, Benchmark, GroupItem, ImageRef
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import SchemaError, field
from fsc_clip.evaluation.benchmarks.bivlc import materialise

CATEGORIES = ("object", "attribute", "counting", "relation")
COLUMNS = ("image_0", "text_0", "image_1", "text_1", "category")
N_ITEMS_PUBLISHED = {"object": 579, "attribute": 294, "counting": 589, "relation": 622}  # vqa_solution.csv


def read_arrow_records(path: Path, columns: Sequence[str], what: str) -> list[dict[str, Any]]:
    """The rows of an Arrow IPC file (the stream format ``save_to_disk`` writes, or the file format) as dicts."""
    try:
        import pyarrow as pa  # type: ignore[import-not-found, unused-ignore]  # optional dependency
    except ImportError as err:
        raise DataNotFoundError(f"{what}: reading {path} needs pyarrow: `pip install pyarrow`.") from err
    try:
        with pa.memory_map(str(path)) as source:
            try:
                table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                table = pa.ipc.open_file(source).read_all()
    except Exception as err:  # ArrowInvalid / OSError for a truncated or foreign file
        raise DataNotFoundError(f"{what}: {path} is not a readable Arrow file ({err}). Re-download it.") from err
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SchemaError(f"{what}: {path} has no column(s) {missing} (columns present: {table.column_names}). "
                          "Re-download the dataset mair-lab/vismin-bench.")  # fmt: skip
    return table.select(list(columns)).to_pylist()


@BENCHMARKS.register("vismin")
class VisMin(Benchmark):
    name = "vismin"
    task = GROUP
    kind = "compositional_2025"
    description = "VisMin (2,084 items): image + minimally edited image x 2 captions; text / image / group by category"
    expected_files = ("data/test/",)
    obtain = (
        "Download the HF dataset mair-lab/vismin-bench (its data/ folder: dataset_dict.json, test/data-*.arrow) "
        "into vismin/ and `pip install pyarrow`."
    )
    sub_scores = tuple(f"{c}::{m}" for c in CATEGORIES for m in ("text", "image", "group"))
    required_sub_scores = tuple(f"{c}::group" for c in CATEGORIES)

    def load(self, data_root: str | Path) -> list[GroupItem]:
        root = self.check(data_root)
        shards = sorted((root / "data" / "test").glob("data-*.arrow"))
        if not shards:
            raise DataNotFoundError(f"{self.name}: no data-*.arrow under {root / 'data' / 'test'}. {self.obtain}")
        image_dir = Path(self.options.get("image_dir", root / "images"))
        items = []
        for shard in shards:
            stem = shard.name.split(".")[0]
            for i, rec in enumerate(read_arrow_records(shard, COLUMNS, self.name)):
                category = field(rec, "category", shard, i, self.name)
                if category not in CATEGORIES:
                    raise SchemaError(f"{self.name}: {shard}: row {i} has category {category!r}, expected one of "
                                      f"{CATEGORIES}.")  # fmt: skip
                i0, i1 = (ImageRef(materialise(rec[f"image_{k}"], image_dir / stem / f"{i}_{k}", shard, i,
                                               f"image_{k}", self.name)) for k in (0, 1))  # fmt: skip
                items.append(GroupItem((i0, i1), (str(rec["text_0"]), str(rec["text_1"])), category))
        if dict(Counter(it.subset for it in items)) != N_ITEMS_PUBLISHED:  # recorded: not the released files
            self._extra = {"n_items_published": N_ITEMS_PUBLISHED}
        return items

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float:
        return sum(scores[f"{cls.name}::{c}::group"] for c in CATEGORIES) / len(CATEGORIES)
