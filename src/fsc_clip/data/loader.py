"""``build_train_loader``: the training loader over a table (map-style) or webdataset shards.

Epoch order for tables: a permutation of all rows from (seed, epoch); like ``DistributedSampler``
with ``drop_last=True`` the permutation is cut to a multiple of ``world_size`` and rank ``r``
takes positions ``r, r + W, r + 2W, ...``; its samples form consecutive batches of ``batch_size``
and an incomplete last batch is dropped. So every rank runs the same number of steps, no sample
appears on two ranks in one epoch, and step ``t`` of W ranks × batch B covers exactly the samples
of step ``t`` of one process × batch W·B. ``len(loader) = (N // W) // B``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from fsc_clip.config import ConfigError
from fsc_clip.data.batch import Batch
from fsc_clip.data.collate import BadSampleError, BatchBuilder, CachedTokenizer, Sample, identity
from fsc_clip.data.config import DataConfig
from fsc_clip.data.hard_negatives import PRECOMPUTED, NegativeSampler, load_precomputed
from fsc_clip.data.sources import ShardList, Table, load_source
from fsc_clip.negatives.stats import NegativeStats

logger = logging.getLogger(__name__)

MAX_SUBSTITUTES = 1000
NAMED_SKIPS = 5  # bad samples named on the console (per loader); later ones are only counted


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int, world_size: int) -> list[list[int]]:
    """The batches (lists of row ids) of ``rank`` in ``epoch``; see the module docstring."""
    import numpy as np

    perm = np.random.default_rng([int(seed), int(epoch)]).permutation(n)
    per_rank = n // world_size
    mine = perm[: per_rank * world_size][rank::world_size]
    n_batches = per_rank // batch_size
    return [mine[b * batch_size : (b + 1) * batch_size].tolist() for b in range(n_batches)]


class _EpochSampler:
    """Yields ``(epoch, row ids)`` per batch, from ``start_batch`` on (ids only: nothing is loaded)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world_size: int) -> None:
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size
        self.epoch, self.start_batch = 0, 0

    def num_batches(self) -> int:
        return (self.n // self.world_size) // self.batch_size

    def __iter__(self) -> Iterator[tuple[int, list[int]]]:
        batches = epoch_batches(self.n, self.batch_size, self.seed, self.epoch, self.rank, self.world_size)
        for ids in batches[self.start_batch :]:
            yield self.epoch, ids

    def __len__(self) -> int:
        return max(0, self.num_batches() - self.start_batch)


class TableBatches:
    """Map-style dataset: ``dataset[(epoch, row_ids)]`` -> :class:`Batch` (built in a worker).

    A bad row (missing/corrupt image, empty caption) is counted and its slot filled by the next
    good row in table order, so batches keep their size (DDP all-gathers need equal shapes) and the
    substitute depends only on the data.
    """

    def __init__(self, table: Table, builder: BatchBuilder) -> None:
        self.table = table
        self.builder = builder
        self._bad: dict[int, str] = {}  # per worker process: rows known to be unusable -> why

    def __len__(self) -> int:
        return len(self.table)

    def _load(self, row: int, epoch: int) -> Sample:
        if row in self._bad:
            raise BadSampleError(self._bad[row])
        path = self.table.paths[row]
        try:
            sample = self.builder.load(
                row, path, self.table.captions[row], f"{path} (row {row} of {self.table.origin})", epoch
            )
        except BadSampleError as err:
            self._bad[row] = str(err)
            raise
        if self.table.negatives is not None:
            sample.negatives = self.table.negatives[row]
        return sample

    def _substitute(self, row: int, epoch: int) -> Sample:
        n = len(self.table)
        for step in range(1, min(n, MAX_SUBSTITUTES)):
            cand = (row + step) % n
            if cand in self._bad:
                continue
            try:
                return self._load(cand, epoch)
            except BadSampleError:  # remembered in self._bad; counted and named when its own row comes up
                continue
        raise BadSampleError(
            f"{self.table.origin}: no usable sample within {MAX_SUBSTITUTES} rows after row {row}; "
            "check data.image_root and the image column."
        )

    def __getitem__(self, item: tuple[int, list[int]]) -> Batch:
        epoch, rows = item
        samples: list[Sample] = []
        skipped: list[str] = []
        for row in rows:
            try:
                samples.append(self._load(row, epoch))
            except BadSampleError as err:
                if self.builder.on_bad_sample == "raise":
                    raise
                skipped.append(str(err))
                samples.append(self._substitute(row, epoch))
        return self.builder.collate(samples, epoch, skipped)


class TrainLoader:
    """Iterable over one epoch of :class:`Batch` es; call :meth:`set_epoch` before each epoch.

    Attributes:
        negative_types: names of the K negative slots (empty without negatives).
        total_skipped: bad samples met so far (running total over the loader's life).
        num_samples: samples per epoch on this rank (``len(self) * batch_size``).
    """

    def __init__(self, dataset: Any, state: Any, workers: int, persistent: bool, pin_memory: bool, **kw: Any):
        import torch
        from torch.utils.data import DataLoader, IterableDataset

        self.dataset = dataset
        self.state = state  # has .epoch, .start_batch, .num_batches(); the sampler for tables
        self.negative_types: list[str] = list(kw.pop("negative_types", []))
        self.batch_size: int = kw.pop("batch_size")
        self.rank: int = kw.pop("rank", 0)
        self.total_skipped = 0
        self._named_skips = 0
        self._negatives_reported = False
        self._loader = DataLoader(
            dataset,
            batch_size=None,
            sampler=None if isinstance(dataset, IterableDataset) else state,
            num_workers=workers,
            collate_fn=identity,
            pin_memory=pin_memory,
            persistent_workers=persistent and workers > 0,
            # The DataLoader draws a base seed per epoch; from its own generator, not the trainer's global RNG.
            generator=torch.Generator().manual_seed(int(kw.pop("seed", 0))),
            **kw,
        )

    @property
    def num_samples(self) -> int:
        return len(self) * self.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's order; skip the first ``start_batch`` batches without loading them."""
        if start_batch < 0 or start_batch > len(self):
            raise ValueError(f"start_batch={start_batch} outside [0, {len(self)}]")
        self.state.epoch, self.state.start_batch = int(epoch), int(start_batch)

    def __len__(self) -> int:
        return self.state.num_batches()

    def __iter__(self) -> Iterator[Batch]:
        stats = NegativeStats()
        try:
            for batch in self._loader:
                self.total_skipped += batch.n_skipped
                self._name_skipped(batch.skipped)
                if batch.neg_stats is not None:
                    stats.merge(batch.neg_stats)
                yield batch
        finally:  # also when the consumer stops early (max steps, an exception): report what was seen
            self._report_negatives(stats)

    def _name_skipped(self, reasons: list[str]) -> None:
        """Name the first :data:`NAMED_SKIPS` bad samples on the console, with the way to make them fatal."""
        where = f"rank {self.rank}: " if self.rank else ""
        for reason in reasons:
            if self._named_skips >= NAMED_SKIPS:
                return
            self._named_skips += 1
            hint = ""
            if self._named_skips == 1:
                hint = (
                    " It was replaced by another sample (data.on_bad_sample=skip); set data.on_bad_sample=raise "
                    "(fsc-clip train --set data.on_bad_sample=raise) to stop at the first bad sample instead."
                )
            elif self._named_skips == NAMED_SKIPS:
                hint = " Further bad samples are counted (skipped_samples in metrics.jsonl) but not named."
            logger.warning(f"{where}skipped bad training sample: {reason}.{hint}")

    def _report_negatives(self, stats: NegativeStats) -> None:
        """Warn once (rank 0) when negatives of a type are scarce or were invisible to the model."""
        if self._negatives_reported or self.rank != 0 or not stats.captions:
            return
        messages = stats.messages()
        if messages:
            self._negatives_reported = True
            for message in messages:
                logger.warning(f"{message} (counted over the {stats.captions:,} samples loaded so far)")


def build_train_loader(
    cfg: DataConfig,
    tokenizer: Callable[[list[str]], Any],
    preprocess: Callable[[Any], Any],
    batch_size: int,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> TrainLoader:
    """Build the training loader for ``cfg`` (tables or webdataset shards).

    Args:
        cfg: data settings.
        tokenizer: ``callable(list[str]) -> LongTensor [N, L]``.
        preprocess: PIL -> ``[3, H, W]`` train transform.
        batch_size: per-rank batch size.
        seed: run seed; epoch order, augmentation and negatives derive from (seed, epoch, sample).
        rank: this process's rank; world_size: number of processes.
        pin_memory: pin batches (CUDA training).

    Raises:
        ConfigError: bad settings (too little data for the batch size, unknown source, ...).
        DataNotFoundError: the table, image root, shards or negatives file does not exist.
    """
    if batch_size <= 0 or world_size <= 0 or not 0 <= rank < world_size:
        raise ConfigError(f"bad batch_size={batch_size} / rank={rank} / world_size={world_size}")
    data = load_source(cfg)
    precomputed = load_precomputed(cfg.precomputed_negatives) if cfg.precomputed_negatives else {}
    row_types = data.negative_types if isinstance(data, Table) else []
    style = cfg.negatives or (
        PRECOMPUTED if cfg.precomputed_negatives else None
    )  # a negatives file alone turns them on
    context_length = getattr(tokenizer, "context_length", None)  # open_clip tokenizers carry it
    negatives = NegativeSampler(style, precomputed, row_types, seed, context_length=context_length)
    # Epochs re-tokenize the same texts: a per-worker cache of their ids (the same ids, see CachedTokenizer).
    builder = BatchBuilder(CachedTokenizer(tokenizer), preprocess, negatives, seed, cfg.on_bad_sample)
    common = {"negative_types": negatives.types, "batch_size": batch_size, "seed": seed, "rank": rank}
    if isinstance(data, ShardList):
        from fsc_clip.data.wds import build_wds_dataset  # torch + webdataset only when shards are used

        dataset, state = build_wds_dataset(cfg, data, builder, batch_size, seed, rank, world_size)
        return TrainLoader(dataset, state, cfg.workers, cfg.persistent_workers, pin_memory, **common)
    n_batches = (len(data) // world_size) // batch_size
    if n_batches == 0:
        raise ConfigError(
            f"{data.origin} has {len(data)} rows: too few for batch size {batch_size} × {world_size} process(es); "
            "lower --batch-size."
        )
    return TrainLoader(
        TableBatches(data, builder),
        _EpochSampler(len(data), batch_size, seed, rank, world_size),
        cfg.workers,
        cfg.persistent_workers,
        pin_memory,
        **common,
    )
