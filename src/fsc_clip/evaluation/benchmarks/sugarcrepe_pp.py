"""SugarCrepe++ (Sri-Harsha/scpp): SugarCrepe's replace / swap subsets with a second, lexically different positive.

Source: github.com/Sri-Harsha/scpp @ c083bbf039a5ca215acaf25e7ee736d2ea6f3864 (``data/<subset>.json``: a list of
``{id, filename, caption, caption2, negative_caption}``; ``VLMs/test_Variants_CLIP.py``, the open_clip evaluation;
``VLMs/download_coco_images.sh`` puts the COCO val2017 images flat into ``images/``). The released files hold
replace_att 788, replace_obj 1652, replace_rel 1406, swap_att 666, swap_obj 245 items (4757).

Layout under ``<data_root>/sugarcrepe_pp/``: ``data/<subset>.json`` and ``images/<filename>``.

Scores, per subset, exactly as ``test_Variants_CLIP.py`` (cosine similarity of normalised embeddings, strict ``>``;
a tie is never a success):

- ``ITT::<subset>`` (image-to-text task): ``s(I, P1) > s(I, N)`` and ``s(I, P2) > s(I, N)``.
- ``TOT::<subset>`` (text-only task, text encoder only): ``s(P1, P2) > s(P1, N)`` and ``s(P1, P2) > s(P2, N)``.

The paper reports both per subset and no single number; the benchmark column here is the unweighted mean of the
five ITT accuracies (the "SugarCrepe++ ITT avg" later papers report). TOT stays in the sub-scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import torch

from fsc_clip.errors import DataNotFoundError
from fsc_clip.evaluation.aggregate import mean
from fsc_clip.evaluation.base import MIXED, Benchmark, BenchmarkOutput, Embedder, ImageRef, ImageToTextItem
from fsc_clip.evaluation.benchmarks import BENCHMARKS
from fsc_clip.evaluation.benchmarks._common import field, read_json, records

SUBSETS = ("replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj")  # the paper's table order
SIZES = {"replace_att": 788, "replace_obj": 1652, "replace_rel": 1406, "swap_att": 666, "swap_obj": 245}
TASKS = ("ITT", "TOT")
TEXT_KEYS = ("caption", "caption2", "negative_caption")  # P1, P2, N


@BENCHMARKS.register("sugarcrepe_pp")
class SugarCrepePP(Benchmark):
    name = "sugarcrepe_pp"
    task = MIXED
    description = "SugarCrepe++: image vs two positives / one negative (ITT) and text-only P1-P2 vs N (TOT)"
    expected_files: ClassVar[tuple[str, ...]] = (*(f"data/{s}.json" for s in SUBSETS), "images/")
    obtain = (
        "Get data/*.json from github.com/Sri-Harsha/scpp and the COCO val2017 images flat into images/ "
        "(as its VLMs/download_coco_images.sh does)."
    )
    kind = "compositional_2025"
    sub_scores = tuple(f"{t}::{s}" for t in TASKS for s in SUBSETS)
    required_sub_scores = tuple(f"ITT::{s}" for s in SUBSETS)

    def load(self, data_root: str | Path) -> list[ImageToTextItem]:
        """One item per record: ``texts = [P1, P2, N]``, ``subset = <subset>`` (scored by :meth:`run`)."""
        root = self.check(data_root)
        image_dir = Path(self.options.get("image_dir", root / "images"))
        items = []
        for subset in SUBSETS:
            path = root / "data" / f"{subset}.json"
            refs: dict[str, ImageRef] = {}  # one ImageRef per file (its content key is computed once)
            for i, rec in enumerate(records(read_json(path, self.name))):
                key = rec.get("id", i) if isinstance(rec, dict) else i
                filename = str(field(rec, "filename", path, key, self.name))
                ref = refs.setdefault(filename, ImageRef(image_dir / filename))
                items.append(ImageToTextItem(ref, [field(rec, k, path, key, self.name) for k in TEXT_KEYS], 0, subset))
        found = {s: sum(it.subset == s for it in items) for s in SUBSETS}
        if found != SIZES:  # recorded in the result: not the released files
            self._extra = {"n_items_published": SIZES}
        return items

    def run(self, data_root: str | Path, embedder: Embedder) -> BenchmarkOutput:
        """Embed, compute the ITT and TOT outcome of every item, pool per subset."""
        from fsc_clip.evaluation.stats import items_table

        items = self.load(data_root)
        if not items:
            raise DataNotFoundError(f"{self.name}: no items found under {self.root(data_root)}. {self.obtain}")
        self.check_images(items)
        embedder.prefetch([it.image for it in items], [t for it in items for t in it.texts], desc=self.name)
        itt, tot, s_img, s_txt = triplet_outcomes(items, embedder)
        # one stand-in multiple-choice item per (task, item): the default pooled score() and the bootstrap read them
        parts = [ImageToTextItem(it.image, it.texts, 0, f"{task}::{it.subset}") for task in TASKS for it in items]
        outcomes: dict[str, Sequence[bool]] = {"correct": [*itt.tolist(), *tot.tolist()]}
        sims = [*s_img.numpy(), *s_txt.numpy()]
        scores, counts = self.score(parts, outcomes)
        out = self.finish(scores, counts, {"n_items": len(items), **self.extra_info()})
        out.per_item = [items_table(parts, outcomes, sims, by_category=False)]
        return out

    @classmethod
    def aggregate(cls, scores: dict[str, float]) -> float | None:
        return mean([scores[f"{cls.name}::ITT::{s}"] for s in SUBSETS])


def triplet_outcomes(
    items: list[ImageToTextItem], embedder: Embedder
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """ITT and TOT outcomes of ``[P1, P2, N]`` items, with their similarities.

    Returns:
        ``(itt [M] bool, tot [M] bool, s_img [M, 3] = s(I, P1|P2|N), s_txt [M, 3] = s(P1,P2), s(P1,N), s(P2,N))``.
    """
    m = len(items)
    img = embedder.images([it.image for it in items]).double()  # [M, D]
    txt = embedder.texts([t for it in items for t in it.texts]).double().view(m, 3, -1)  # [M, 3, D]
    s_img = torch.einsum("md,mkd->mk", img, txt)  # [M, 3]
    p1, p2, neg = txt[:, 0], txt[:, 1], txt[:, 2]  # [M, D] each
    s_txt = torch.stack([(p1 * p2).sum(-1), (p1 * neg).sum(-1), (p2 * neg).sum(-1)], dim=1)  # [M, 3]
    itt = (s_img[:, 0] > s_img[:, 2]) & (s_img[:, 1] > s_img[:, 2])  # strict: a tie is never a success
    tot = (s_txt[:, 0] > s_txt[:, 1]) & (s_txt[:, 0] > s_txt[:, 2])
    return itt, tot, s_img.float(), s_txt.float()
