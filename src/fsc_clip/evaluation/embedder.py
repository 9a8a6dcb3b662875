"""Content-keyed, batched embedding of images and texts for one model (shared across benchmarks).

Every unique image (file + crop, keyed by :meth:`ImageRef.key`) and every unique text string is encoded once
per :class:`CachedEmbedder`; the runner keeps one embedder per model for all the benchmarks it evaluates, so
COCO images shared by ARO, SugarCrepe, WhatsUp and VALSE are encoded once.

Distributed (``torchrun``): every rank runs the same benchmarks, so every rank asks for the same missing inputs in
the same order; each encodes every ``world_size``-th batch of them and the embeddings are all-gathered, so all
ranks hold the full table. Batches are the ones a single process would form, so the embeddings are bit-identical.

On-disk cache (``cache_dir``): one ``.npy`` per embedding under ``<cache_dir>/<namespace>/{images,texts}/``, the
namespace being the weights fingerprint (:mod:`fsc_clip.evaluation.fingerprint`) plus device type and input dtype,
the file name the SHA-256 of the content key (:meth:`ImageRef.key`, or the text). Written atomically, read with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsc_clip.evaluation.items import ImageRef

log = logging.getLogger(__name__)


class _ImageDataset(torch.utils.data.Dataset):
    """Loads (and crops) images and applies the model's validation transform, in DataLoader workers."""

    def __init__(self, refs: Sequence[ImageRef], preprocess: Any) -> None:
        self.refs = list(refs)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.refs[i].load())  # [3, H, W]


def _given(features: torch.Tensor | None, kind: str) -> torch.Tensor:
    """``encode()``'s features of the inputs it was given (it fills those; a None here is a bug, not bad data)."""
    if features is None:
        raise RuntimeError(f"encode() returned no {kind} features for the {kind}s it was given")
    return features


def _image_input_dtype(model: torch.nn.Module) -> torch.dtype:
    """Dtype the image tower expects: that of its first conv / linear weight (fp16 / bf16 models keep some
    parameters, e.g. positional embeddings or LayerNorms, in fp32, so "the first parameter" is not enough)."""
    tower = getattr(model, "visual", model)
    for module in tower.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            return module.weight.dtype
    return torch.float32


def _my_batches(n: int, batch_size: int, rank: int, world: int) -> list[int]:
    """Indices (of ``n`` inputs) of every ``world``-th batch from ``rank``: the single-process batches, dealt out."""
    starts = range(rank * batch_size, n, world * batch_size)
    return [i for s in starts for i in range(s, min(s + batch_size, n))]


class _DiskCache:
    """One ``.npy`` file per embedding (float32 ``[D]``), named by the SHA-256 of its content key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, kind: str, key: Hashable) -> Path:
        digest = hashlib.sha256(repr(key).encode("utf-8", "surrogatepass")).hexdigest()
        return self.root / kind / digest[:2] / f"{digest}.npy"

    def load(self, kind: str, key: Hashable) -> torch.Tensor | None:
        path = self._path(kind, key)
        try:
            return torch.from_numpy(np.load(path, allow_pickle=False))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:  # a damaged file: re-encode (and overwrite it)
            log.warning("embedding cache: cannot read %s (%s); encoding again", path, err)
            return None

    def save(self, kind: str, key: Hashable, row: torch.Tensor) -> None:
        from fsc_clip.fileio import write_with

        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_with(path, lambda handle: np.save(handle, row.numpy(), allow_pickle=False))


class CachedEmbedder:
    """Embeds images/texts with a loaded model; L2-normalised float32 CPU embeddings, cached by content.

    Args:
        loaded_model: A :class:`fsc_clip.models.LoadedModel` (model, tokenizer, preprocess_val, spec).
        device: Where to run the model (the model is expected to be there already).
        batch_size: Images / texts per forward pass.
        workers: DataLoader workers for image decoding (0 = in the main process).
        progress: Show tqdm progress bars.
        dist: A :class:`fsc_clip.training.distributed.DistInfo`; with ``world_size > 1`` the encoding is sharded
            across ranks (every rank must make the same calls in the same order).
        cache_dir: Persist embeddings there (keyed by weights fingerprint + content); ``None``: memory only.

    Attributes:
        stats: Accumulated timings: ``encode_s`` (model forward passes), ``load_s`` (waiting for decoded image
            batches), ``tokenize_s``, and counts ``n_images`` / ``n_texts`` actually encoded.
    """

    def __init__(
        self,
        loaded_model: Any,
        device: str = "cpu",
        batch_size: int = 64,
        workers: int = 0,
        progress: bool = True,
        dist: Any = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.lm = loaded_model
        self.device = torch.device(device)
        self.batch_size = max(1, int(batch_size))
        self.workers = max(0, int(workers))
        self.progress = progress
        self._images: dict[tuple, torch.Tensor] = {}
        self._texts: dict[str, torch.Tensor] = {}
        self._dtype = _image_input_dtype(loaded_model.model)
        self.stats: dict[str, float] = {"encode_s": 0.0, "load_s": 0.0, "tokenize_s": 0.0, "n_images": 0, "n_texts": 0}
        self.stats["n_disk"] = 0
        self.rank: int = dist.rank if dist is not None else 0
        self.world: int = dist.world_size if dist is not None else 1
        self._dist = dist
        self._disk = _DiskCache(Path(cache_dir).expanduser() / self._namespace()) if cache_dir else None

    def _namespace(self) -> str:
        """Cache folder of these weights on this device type and input dtype (their numerics differ)."""
        from fsc_clip.evaluation.fingerprint import weights_fingerprint

        weights = weights_fingerprint(self.lm)["sha256"]
        return f"{weights}-{self.device.type}-{str(self._dtype).removeprefix('torch.')}"

    # ----- public API (fsc_clip.evaluation.items.Embedder) ------------------------------------------------
    def prefetch(self, refs: Sequence[ImageRef] = (), texts: Sequence[str] = (), desc: str = "") -> None:
        """Encode every not-yet-cached image and text."""
        new_refs = {k: r for r in refs if (k := r.key()) not in self._images}  # same keys on every rank
        todo_refs = self._missing("images", new_refs, self._images)
        if todo_refs:
            self._encode_images([(k, new_refs[k]) for k in todo_refs], desc)
        todo_texts = self._missing("texts", {t: t for t in texts if t not in self._texts}, self._texts)
        if todo_texts:
            self._encode_texts(todo_texts, desc)

    def _missing(self, kind: str, new: dict[Any, Any], table: dict) -> list:
        """Keys of ``new`` (in order) to encode: not on disk here, or on some rank (ranks must encode the same list;
        their disk caches may differ, e.g. one per node)."""
        if not new:
            return []
        missing = {k for k in new if not self._from_disk(kind, k, table)}
        if self.world > 1:
            from fsc_clip.training.distributed import gather_objects

            missing = set().union(*gather_objects(missing, self._dist))  # type: ignore[arg-type]
        return [k for k in new if k in missing]

    def _from_disk(self, kind: str, key: Hashable, table: dict) -> bool:
        row = self._disk.load(kind, key) if self._disk is not None else None
        if row is not None:
            table[key] = row
            self.stats["n_disk"] += 1
        return row is not None

    def _share(self, kind: str, mine: list[tuple[Hashable, torch.Tensor]], table: dict) -> None:
        """Store this rank's new embeddings (and persist them), then the other ranks' (all-gathered)."""
        for key, row in mine:
            table[key] = row
            if self._disk is not None:
                self._disk.save(kind, key, row)
        if self.world == 1:
            return
        from fsc_clip.training.distributed import gather_objects

        # numpy rows travel between our own ranks over the process group
        for rank, rows in enumerate(gather_objects([(k, r.numpy()) for k, r in mine], self._dist)):
            if rank != self.rank:
                table.update((k, torch.from_numpy(r)) for k, r in rows)  # type: ignore[attr-defined]

    def images(self, refs: Sequence[ImageRef], desc: str = "") -> torch.Tensor:
        """Embeddings ``[len(refs), D]`` (encodes what is missing first)."""
        self.prefetch(refs, (), desc)
        if not refs:
            return torch.empty(0, 0)
        return torch.stack([self._images[r.key()] for r in refs])

    def texts(self, texts: Sequence[str], desc: str = "") -> torch.Tensor:
        """Embeddings ``[len(texts), D]`` (encodes what is missing first)."""
        self.prefetch((), texts, desc)
        if not texts:
            return torch.empty(0, 0)
        return torch.stack([self._texts[t] for t in texts])

    def cache_sizes(self) -> dict[str, int]:
        return {"images": len(self._images), "texts": len(self._texts)}

    # ----- encoding ----------------------------------------------------------------------------------------
    def _bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="it", disable=not self.progress, leave=False, dynamic_ncols=True)

    @torch.inference_mode()
    def _encode_images(self, todo: list[tuple[tuple, ImageRef]], desc: str) -> None:
        from fsc_clip.models import encode

        mine = [todo[i] for i in _my_batches(len(todo), self.batch_size, self.rank, self.world)]
        dataset = _ImageDataset([r for _, r in mine], self.lm.preprocess_val)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.workers, persistent_workers=False
        )
        keys = [k for k, _ in mine]
        rows: list[tuple[Hashable, torch.Tensor]] = []
        with self._bar(len(mine), f"{desc} images".strip()) as bar:
            t0 = time.perf_counter()
            for batch in loader:  # [B, 3, H, W]
                t1 = time.perf_counter()
                self.stats["load_s"] += t1 - t0
                image = encode(self.lm.model, images=batch.to(self.device, self._dtype)).image  # [B, D]
                feats = _given(image, "image").float().cpu()
                t0 = time.perf_counter()
                self.stats["encode_s"] += t0 - t1
                rows.extend(zip(keys[len(rows) : len(rows) + len(feats)], feats))
                bar.update(len(feats))
        self._share("images", rows, self._images)
        self.stats["n_images"] += len(mine)

    @torch.inference_mode()
    def _encode_texts(self, texts: list[str], desc: str) -> None:
        from fsc_clip.models import encode, trim_tokens

        mine = [texts[i] for i in _my_batches(len(texts), self.batch_size, self.rank, self.world)]
        rows: list[tuple[Hashable, torch.Tensor]] = []
        with self._bar(len(mine), f"{desc} texts".strip()) as bar:
            for start in range(0, len(mine), self.batch_size):
                chunk = mine[start : start + self.batch_size]
                t0 = time.perf_counter()
                (tokens,) = trim_tokens(self.lm.tokenizer(chunk))  # [T, L'] without shared trailing padding
                tokens = tokens.to(self.device)
                t1 = time.perf_counter()
                feats = _given(encode(self.lm.model, texts=tokens).text, "text").float().cpu()  # [T, D]
                self.stats["tokenize_s"] += t1 - t0
                self.stats["encode_s"] += time.perf_counter() - t1
                rows.extend(zip(chunk, feats))
                bar.update(len(chunk))
        self._share("texts", rows, self._texts)
        self.stats["n_texts"] += len(mine)
