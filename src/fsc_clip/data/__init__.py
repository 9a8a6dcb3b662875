"""Training data: sources (CSV/TSV/JSONL tables, webdataset shards), hard negatives, batching.

``from fsc_clip.data import DataConfig, build_train_loader, Batch`` is all a trainer needs; torch,
PIL and webdataset are imported only when a loader is built.
"""

from fsc_clip.data.batch import Batch
from fsc_clip.data.collate import BadSampleError
from fsc_clip.data.config import DataConfig
from fsc_clip.data.loader import TrainLoader, build_train_loader, epoch_batches
from fsc_clip.data.sources import SOURCES, ShardList, Table, load_source, parse_negative_list

__all__ = [
    "SOURCES",
    "BadSampleError",
    "Batch",
    "DataConfig",
    "ShardList",
    "Table",
    "TrainLoader",
    "build_train_loader",
    "epoch_batches",
    "load_source",
    "parse_negative_list",
]
