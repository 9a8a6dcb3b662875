"""Content-keyed, batched embedding of images and texts for one model (shared across benchmarks).

Every unique image (file + crop, keyed by :meth:`ImageRef.key`) and every unique text string is encoded once
per :class:`CachedEmbedder`; the runner keeps one embedder per model for all the benchmarks it evaluates, so
COCO images shared by ARO, SugarCrepe, WhatsUp and VALSE are encoded once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

from fsc_clip.evaluation.items import ImageRef


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


class CachedEmbedder:
    """Embeds images/texts with a loaded model; L2-normalised float32 CPU embeddings, cached by content.

    Args:
        loaded_model: A :class:`fsc_clip.models.LoadedModel` (model, tokenizer, preprocess_val, spec).
        device: Where to run the model (the model is expected to be there already).
        batch_size: Images / texts per forward pass.
        workers: DataLoader workers for image decoding (0 = in the main process).
        progress: Show tqdm progress bars.

    Attributes:
        stats: Accumulated timings: ``encode_s`` (model forward passes), ``load_s`` (waiting for decoded image
            batches), ``tokenize_s``, and counts ``n_images`` / ``n_texts`` actually encoded.
    """

    def __init__(
        self, loaded_model: Any, device: str = "cpu", batch_size: int = 64, workers: int = 0, progress: bool = True
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

    # ----- public API (fsc_clip.evaluation.items.Embedder) ------------------------------------------------
    def prefetch(self, refs: Sequence[ImageRef] = (), texts: Sequence[str] = (), desc: str = "") -> None:
        """Encode every not-yet-cached image and text."""
        todo_refs: dict[tuple, ImageRef] = {}
        for r in refs:
            k = r.key()
            if k not in self._images and k not in todo_refs:
                todo_refs[k] = r
        if todo_refs:
            self._encode_images(list(todo_refs.items()), desc)
        todo_texts = list(dict.fromkeys(t for t in texts if t not in self._texts))
        if todo_texts:
            self._encode_texts(todo_texts, desc)

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

        dataset = _ImageDataset([r for _, r in todo], self.lm.preprocess_val)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.workers, persistent_workers=False
        )
        keys = [k for k, _ in todo]
        pos = 0
        with self._bar(len(todo), f"{desc} images".strip()) as bar:
            t0 = time.perf_counter()
            for batch in loader:  # [B, 3, H, W]
                t1 = time.perf_counter()
                self.stats["load_s"] += t1 - t0
                image = encode(self.lm.model, images=batch.to(self.device, self._dtype)).image  # [B, D]
                feats = _given(image, "image").float().cpu()
                t0 = time.perf_counter()
                self.stats["encode_s"] += t0 - t1
                for row in feats:
                    self._images[keys[pos]] = row
                    pos += 1
                bar.update(len(feats))
        self.stats["n_images"] += len(todo)

    @torch.inference_mode()
    def _encode_texts(self, texts: list[str], desc: str) -> None:
        from fsc_clip.models import encode, trim_tokens

        with self._bar(len(texts), f"{desc} texts".strip()) as bar:
            for start in range(0, len(texts), self.batch_size):
                chunk = texts[start : start + self.batch_size]
                t0 = time.perf_counter()
                (tokens,) = trim_tokens(self.lm.tokenizer(chunk))  # [T, L'] without shared trailing padding
                tokens = tokens.to(self.device)
                t1 = time.perf_counter()
                feats = _given(encode(self.lm.model, texts=tokens).text, "text").float().cpu()  # [T, D]
                self.stats["tokenize_s"] += t1 - t0
                self.stats["encode_s"] += time.perf_counter() - t1
                for text, row in zip(chunk, feats):
                    self._texts[text] = row
                bar.update(len(chunk))
        self.stats["n_texts"] += len(texts)
