"""Webdataset training loader: tar shards streamed per rank and worker, batched inside the workers.

Order. Every DataLoader worker plays a *virtual worker* ``v``; global batch ``j`` of an epoch is
the ``j // n_workers``-th batch of virtual worker ``j % n_workers`` (the order in which a DataLoader
collects batches from its workers). Virtual worker ``v`` of rank ``r`` reads:
  * without resampling: the epoch's shard permutation (from seed, epoch), split ``[r::W]`` by rank
    and ``[v::n_workers]`` by worker, passing over its shards again (re-shuffled) if they run out;
  * with resampling: shards drawn with replacement from (seed, epoch, r, v).
Samples are shuffled in a buffer seeded from (seed, epoch, r, v). Each worker yields exactly its
share of ``len(loader) = train_num_samples // (W · B)`` batches, so all ranks run the same steps.

Resume. ``set_epoch(e, start_batch=s)`` lets each worker drop the raw (undecoded) samples of the
batches before ``s``; the rest of the epoch then equals an uninterrupted run with the same number of
workers (exactly, unless a bad sample fell inside the skipped part).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from fsc_clip.config import ConfigError
from fsc_clip.data.collate import BadSampleError, BatchBuilder, Sample
from fsc_clip.data.config import DataConfig
from fsc_clip.data.hard_negatives import mix_seed
from fsc_clip.data.loader import TrainLoader
from fsc_clip.data.sources import ShardList


class _SharedEpoch:
    """Epoch and start batch visible to (persistent) worker processes."""

    def __init__(self, num_batches: int) -> None:
        self._epoch = multiprocessing.Value("q", 0)
        self._start = multiprocessing.Value("q", 0)
        self._num_batches = num_batches

    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch.value = int(value)

    @property
    def start_batch(self) -> int:
        return int(self._start.value)

    @start_batch.setter
    def start_batch(self, value: int) -> None:
        self._start.value = int(value)

    def num_batches(self) -> int:
        return self._num_batches


def sample_id(url: str, key: str) -> int:
    """Stable 63-bit id of a webdataset sample (shard file name + key; independent of the folder)."""
    digest = hashlib.blake2b(f"{Path(url).name}/{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def batches_of_worker(v: int, n_workers: int, start: int, total: int) -> tuple[int, int]:
    """(batches virtual worker ``v`` skips, batches it yields) for an epoch resumed at ``start``."""
    skip = max(0, -(-(start - v) // n_workers))  # #{k : v + k·n < start}
    share = max(0, -(-(total - v) // n_workers))  # #{k : v + k·n < total}
    return skip, share - skip


class WdsBatches(IterableDataset):
    """IterableDataset yielding whole :class:`Batch` es built in the worker (see module docstring)."""

    def __init__(self, cfg: DataConfig, urls: list[str], builder: BatchBuilder, batch_size: int, **kw: Any) -> None:
        self.cfg, self.urls, self.builder, self.batch_size = cfg, urls, builder, batch_size
        self.seed, self.rank, self.world_size = kw["seed"], kw["rank"], kw["world_size"]
        self.state: _SharedEpoch = kw["state"]

    def __iter__(self) -> Iterator[Any]:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch, start = int(self.state.epoch), int(self.state.start_batch)
        v = (worker + start) % n_workers  # this worker serves global batches j ≡ v (mod n_workers)
        skip, count = batches_of_worker(v, n_workers, start, self.state.num_batches())
        raw = self._raw_samples(epoch, v, n_workers)
        try:
            for _ in range(skip * self.batch_size):  # resume: drop undecoded samples of finished batches
                next(raw)
            for _ in range(count):
                yield self._next_batch(raw, epoch)
        finally:
            raw.close()  # closes the open shard now, not at garbage collection

    def _next_batch(self, raw: Iterator[dict[str, Any]], epoch: int) -> Any:
        samples, skipped = [], 0
        while len(samples) < self.batch_size:
            try:
                samples.append(self._decode(next(raw), epoch))
            except BadSampleError:
                if self.builder.on_bad_sample == "raise":
                    raise
                skipped += 1
        return self.builder.collate(samples, epoch, skipped)

    def _shard_order(self, epoch: int, v: int, n_workers: int, pass_no: int) -> list[str]:
        if self.cfg.wds_resampled:
            rng = random.Random(mix_seed(self.seed, epoch, self.rank, v, pass_no, 0x5A))
            return [rng.choice(self.urls) for _ in range(max(1, len(self.urls)))]
        urls = list(self.urls)
        random.Random(mix_seed(self.seed, epoch, 0x5B)).shuffle(urls)
        mine = urls[self.rank :: self.world_size][v::n_workers]
        if pass_no:  # later passes over the same shards: a fresh order
            random.Random(mix_seed(self.seed, epoch, self.rank, v, pass_no)).shuffle(mine)
        return mine

    def _raw_samples(self, epoch: int, v: int, n_workers: int) -> Iterator[dict[str, Any]]:
        """Undecoded samples of virtual worker ``v``: shuffled pass after pass over its shards."""
        import webdataset as wds

        handler = wds.reraise_exception if self.builder.on_bad_sample == "raise" else wds.warn_and_continue
        pass_no = 0
        while True:
            shards = self._shard_order(epoch, v, n_workers, pass_no)
            stream = (sample for url in shards for sample in _shard_samples(url, handler))
            n_read = 0
            for sample in self._shuffled(stream, mix_seed(self.seed, epoch, self.rank, v, pass_no, 0x5C)):
                n_read += 1
                yield sample
            if n_read == 0:
                raise BadSampleError(f"no samples could be read from shards {shards[:3]} (rank {self.rank})")
            pass_no += 1

    def _shuffled(self, samples: Iterator[dict[str, Any]], seed: int) -> Iterator[dict[str, Any]]:
        """Buffer shuffle (size ``wds_shuffle_buffer``) of one finite pass; the buffer drains at its end."""
        size = self.cfg.wds_shuffle_buffer
        rng = random.Random(seed)
        buf: list[dict[str, Any]] = []
        for sample in samples:
            buf.append(sample)
            if len(buf) >= max(size, 1):
                k = rng.randrange(len(buf))
                buf[k], buf[-1] = buf[-1], buf[k]
                yield buf.pop()
        rng.shuffle(buf)
        yield from buf

    def _decode(self, sample: dict[str, Any], epoch: int) -> Sample:
        url, key = str(sample.get("__url__", "")), str(sample.get("__key__", ""))
        name = f"{url}:{key}"
        image_key = next((k for k in self.cfg.image_keys if k in sample), None)
        if image_key is None:
            raise BadSampleError(f"no image member ({'/'.join(self.cfg.image_keys)}) in {name}")
        return self.builder.load(sample_id(url, key), sample[image_key], self._caption(sample, name), name, epoch)

    def _caption(self, sample: dict[str, Any], name: str) -> str:
        ext, _, field = self.cfg.wds_caption_key.partition(":")
        raw = sample.get(ext)
        if raw is None:
            return ""
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            if field:
                value = json.loads(text)
                for part in field.split("."):
                    value = value[part]
                text = str(value)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, IndexError):
            raise BadSampleError(f"unreadable caption {self.cfg.wds_caption_key!r} in {name}") from None
        return text.strip()


def _shard_samples(url: str, handler: Any) -> Iterator[dict[str, Any]]:
    """Samples (``{"__key__", "__url__", ext: bytes}``) of one shard; the file is closed when done or abandoned."""
    import webdataset as wds
    from webdataset.tariterators import group_by_keys, tar_file_expander

    try:
        stream = wds.gopen(url)
    except Exception as exn:  # unreadable shard: the handler decides (warn and go on, or re-raise)
        exn.args = (*exn.args, url)
        if handler(exn):
            return
        raise
    try:
        files = tar_file_expander(iter([{"url": url, "stream": stream}]), handler=handler)
        yield from group_by_keys(files, handler=handler)
    finally:
        stream.close()


def _num_samples(cfg: DataConfig, urls: list[str]) -> int:
    """``train_num_samples``, or the sum of open_clip-style ``sizes.json`` counts next to the shards."""
    if cfg.train_num_samples:
        return cfg.train_num_samples
    total = 0
    for url in urls:
        sizes = Path(url).parent / "sizes.json"
        try:
            total += int(json.loads(sizes.read_text())[Path(url).name])
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(
                "data.train_num_samples (--train-num-samples) is required for webdataset data "
                f"(no sizes.json entry for {url})."
            ) from None
    return total


def build_wds_loader(
    cfg: DataConfig,
    shards: ShardList,
    builder: BatchBuilder,
    batch_size: int,
    seed: int,
    rank: int,
    world_size: int,
    pin_memory: bool,
) -> TrainLoader:
    """Loader over webdataset shards (called by :func:`fsc_clip.data.build_train_loader`)."""
    n_workers = max(1, cfg.workers)
    if not cfg.wds_resampled and len(shards.urls) < world_size * n_workers:
        raise ConfigError(
            f"{len(shards.urls)} shard(s) cannot feed {world_size} process(es) × {n_workers} worker(s) without "
            "resampling: set data.wds_resampled=true (--dataset-resampled) or use fewer workers."
        )
    num_batches = _num_samples(cfg, shards.urls) // (batch_size * world_size)
    if num_batches == 0:
        raise ConfigError(f"train_num_samples too small for batch size {batch_size} × {world_size} process(es).")
    state = _SharedEpoch(num_batches)
    dataset = WdsBatches(
        cfg, shards.urls, builder, batch_size, seed=seed, rank=rank, world_size=world_size, state=state
    )
    return TrainLoader(
        dataset,
        state,
        cfg.workers,
        cfg.persistent_workers,
        pin_memory,
        negative_types=builder.negatives.types,
        batch_size=batch_size,
        seed=seed,
    )
