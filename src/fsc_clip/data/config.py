"""``DataConfig``: where the training pairs come from and how each batch is built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fsc_clip.config import ConfigError

SourceName = Literal["auto", "csv", "tsv", "jsonl", "webdataset"]


@dataclass
class DataConfig:
    """Training data settings (the ``data:`` section of a training recipe).

    Attributes:
        train_data: Table file (``.csv``/``.tsv``/``.jsonl``) or webdataset shard spec
            (``/data/cc3m/{00000..00331}.tar``; several specs joined with ``::``).
        source: Reader to use; ``auto`` picks from the file suffix (``.tar`` or ``{..}`` → webdataset).
        image_root: Folder that relative image paths in a table are resolved against
            (default: the table's own folder).
        csv_img_key: Column (or JSONL field) holding the image path.
        csv_caption_key: Column (or JSONL field) holding the caption.
        csv_separator: Column separator of CSV/TSV tables (``None``: ``,`` for .csv, tab for .tsv).
        csv_neg_key: Column (or JSONL field) holding precomputed negatives (a Python/JSON list
            literal such as COCO ``train_neg_clip.tsv``'s ``neg_caption``); used when present.
        csv_neg_type: Negative type that ``csv_neg_key`` candidates fill (NegCLIP swaps → ``negclip``).
        negatives: ``None`` = no hard negatives; a style name (``fsc-clip``, ``negclip``, ...) = one
            negative per type of the style, taken from precomputed candidates where available and
            generated online otherwise; ``precomputed`` = only the precomputed candidates.
        precomputed_negatives: JSONL from ``fsc-clip negatives``
            (``{"caption": ..., "negatives": {type: [candidates]}}``), joined to samples by caption.
            Setting it while ``negatives`` is ``None`` means ``negatives: precomputed``.
        workers: DataLoader worker processes (0 = load in the main process).
        on_bad_sample: ``skip`` (count it and fill the slot with the next good sample) or
            ``raise`` (stop with the file name).
        wds_caption_key: Member of a webdataset sample holding the caption: an extension (``txt``)
            or ``ext:field`` for a JSON member (``json:caption``).
        wds_caption_dir: Read captions from a side folder instead (the FSC-CLIP authors' CC-3M recipe,
            ``--caption-key coca_captions``): the first line of ``<folder>/<key>.txt``, ``key`` being the
            sample's JSON ``"key"`` (else its tar key); a JSON field named like the folder wins when present.
            Relative to each shard's folder unless absolute. Overrides ``wds_caption_key``.
        wds_image_keys: Extensions tried, in order, for the image member.
        wds_resampled: Sample shards with replacement (infinite stream; needs ``train_num_samples``).
        wds_shuffle_buffer: Sample-level shuffle buffer per worker (0 = no shuffle within shards).
        train_num_samples: Samples per epoch for webdataset data (required there: tar shards have no
            cheap length); ignored for tables.
        persistent_workers: Keep worker processes (and their loaded NLP resources) between epochs.
    """

    train_data: str = ""
    source: SourceName = "auto"
    image_root: str | None = None
    csv_img_key: str = "filepath"
    csv_caption_key: str = "title"
    csv_separator: str | None = None
    csv_neg_key: str | None = "neg_caption"
    csv_neg_type: str = "negclip"
    negatives: str | None = None
    precomputed_negatives: str | None = None
    workers: int = 0
    on_bad_sample: Literal["skip", "raise"] = "skip"
    wds_caption_key: str = "txt"
    wds_caption_dir: str | None = None
    wds_image_keys: list[str] | None = None
    wds_resampled: bool = False
    wds_shuffle_buffer: int = 1000
    train_num_samples: int | None = None
    persistent_workers: bool = True

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"data.workers must be >= 0, got {self.workers}")
        if self.wds_shuffle_buffer < 0:
            raise ConfigError(f"data.wds_shuffle_buffer must be >= 0, got {self.wds_shuffle_buffer}")
        if self.train_num_samples is not None and self.train_num_samples <= 0:
            raise ConfigError(f"data.train_num_samples must be positive, got {self.train_num_samples}")
        if self.wds_caption_dir in ("", "none", "None", "null"):
            self.wds_caption_dir = None
        if self.negatives in ("", "none", "None", "null"):
            self.negatives = None
        if self.csv_separator is not None:
            self.csv_separator = {"\\t": "\t", "tab": "\t"}.get(self.csv_separator, self.csv_separator)
            if len(self.csv_separator) != 1:
                raise ConfigError(f"data.csv_separator must be one character, got {self.csv_separator!r}")

    @property
    def image_keys(self) -> list[str]:
        """Image member extensions for webdataset samples."""
        return list(self.wds_image_keys or ["jpg", "png", "jpeg", "webp"])
