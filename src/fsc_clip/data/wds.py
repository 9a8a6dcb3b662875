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

Captions. From a member of the sample (``data.wds_caption_key``: ``txt``, or ``json:caption`` for a JSON field),
or from a side folder of text files (``data.wds_caption_dir``), as the FSC-CLIP authors' CC-3M runs do with
``--caption-key coca_captions`` (ytaek-oh/fsc-clip@604015db3f009a8f7485f1fb7e21d8343c67664a,
``src/training/data.py``: ``_replace_caption_col`` and ``get_wds_dataset``). Their rule, which we follow:

* the folder is ``<folder of the shards>/<caption_key>`` (theirs: next to the first shard; ours: next to each
  shard, the same thing for their one-folder layout; an absolute ``wds_caption_dir`` is used as is);
* if the sample's JSON member has a field named like the folder (``coca_captions``), that field is the caption;
* otherwise the caption is the first line of ``<folder>/<key>.txt``, where ``key`` is the ``"key"`` field of the
  sample's JSON member (img2dataset writes it; it equals the tar member prefix ``__key__``, which we use when the
  JSON member or its field is absent — theirs stops with a ``KeyError`` there);
* a missing caption file stopped their run (an exception inside ``wds.map``, whose default handler re-raises);
  ours makes it a bad sample: named and skipped under ``data.on_bad_sample=skip``, fatal under ``raise``;
* a missing folder fails before training (theirs: an ``assert`` at the first sample).

One difference: their pipeline drops samples without a ``txt`` member before reading the side caption; ours does
not need the ``txt`` member when the side folder supplies the caption.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset

from fsc_clip.config import ConfigError
from fsc_clip.data.collate import BadSampleError, BatchBuilder, Sample
from fsc_clip.data.config import DataConfig
from fsc_clip.data.hard_negatives import mix_seed
from fsc_clip.data.sources import ShardList
from fsc_clip.errors import DataNotFoundError


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
        self.caption_dirs: dict[str, Path] = caption_dirs(cfg, urls) if cfg.wds_caption_dir else {}

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
        samples: list[Sample] = []
        skipped: list[str] = []
        while len(samples) < self.batch_size:
            try:
                samples.append(self._decode(next(raw), epoch))
            except BadSampleError as err:
                if self.builder.on_bad_sample == "raise":
                    raise
                skipped.append(str(err))
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

    def _raw_samples(self, epoch: int, v: int, n_workers: int) -> Generator[dict[str, Any], None, None]:
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
        if self.caption_dirs:
            return self._side_caption(sample, name)
        ext, _, field = self.cfg.wds_caption_key.partition(":")
        raw = sample.get(ext)
        if raw is None:
            members = ", ".join(sorted(k for k in sample if not k.startswith("__"))) or "none"
            raise BadSampleError(
                f"no caption member {ext!r} in {name} (members: {members}); set data.wds_caption_key, or "
                "data.wds_caption_dir for captions in a side folder of <key>.txt files"
            )
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

    def _side_caption(self, sample: dict[str, Any], name: str) -> str:
        """The caption from ``wds_caption_dir`` (the authors' ``_replace_caption_col``; see the module docstring)."""
        url = str(sample.get("__url__", ""))
        folder = self.caption_dirs.get(url) or next(iter(self.caption_dirs.values()))
        meta = _json_member(sample, name)
        field = Path(str(self.cfg.wds_caption_dir)).name
        if meta is not None and field in meta:
            return str(meta[field]).strip()
        key = str(meta["key"]) if meta is not None and "key" in meta else str(sample.get("__key__", ""))
        path = folder / f"{key}.txt"
        try:
            with path.open(encoding="utf-8") as handle:
                return handle.readline().strip()  # first line only, as theirs (readline)
        except FileNotFoundError:
            raise BadSampleError(f"caption file not found: {path} (for {name}, data.wds_caption_dir)") from None
        except (OSError, UnicodeDecodeError) as err:
            raise BadSampleError(f"cannot read caption file {path} (for {name}): {err}") from None


def _json_member(sample: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The sample's decoded JSON member (``None`` without one)."""
    raw = sample.get("json")
    if raw is None:
        return None
    try:
        value = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        raise BadSampleError(f"unreadable json member in {name}") from None
    return value if isinstance(value, dict) else None


def caption_dirs(cfg: DataConfig, urls: list[str]) -> dict[str, Path]:
    """Shard URL -> its caption folder (``wds_caption_dir``, relative to the shard's folder unless absolute).

    Raises:
        ConfigError: A relative folder with remote shards (no folder to resolve it against).
        DataNotFoundError: A caption folder does not exist (named, with the shards that need it).
    """
    spec = Path(str(cfg.wds_caption_dir)).expanduser()
    out: dict[str, Path] = {}
    for url in urls:
        if not spec.is_absolute() and ("://" in url or url.startswith("pipe:")):
            raise ConfigError(
                f"data.wds_caption_dir={cfg.wds_caption_dir!r} is relative but shard {url} is not a local file; "
                "give the caption folder as an absolute path."
            )
        out[url] = spec if spec.is_absolute() else Path(url).parent / spec
    for folder in dict.fromkeys(out.values()):
        if not folder.is_dir():
            example = next(u for u, f in out.items() if f == folder)
            raise DataNotFoundError(
                f"caption folder {folder} (data.wds_caption_dir={cfg.wds_caption_dir!r}, for shards such as "
                f"{example}) does not exist. It should hold one <key>.txt file per sample; for the authors' CC-3M "
                "subset, extract coca_captions.tar.gz next to the shards."
            )
    return out


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


def build_wds_dataset(
    cfg: DataConfig,
    shards: ShardList,
    builder: BatchBuilder,
    batch_size: int,
    seed: int,
    rank: int,
    world_size: int,
) -> tuple[WdsBatches, _SharedEpoch]:
    """The batch stream over webdataset shards and its epoch state (``build_train_loader`` wraps them).

    Raises:
        ConfigError: Too few shards for the processes × workers, or too few samples for one batch.
        DataNotFoundError: The caption folder (``wds_caption_dir``) is missing.
    """
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
    return dataset, state
