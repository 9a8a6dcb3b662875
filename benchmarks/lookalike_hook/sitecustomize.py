"""Experiment hook of ``benchmarks/demo_lookalike_batches.py`` (not part of fsc-clip): look-alike training batches.

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``; the demo's worker processes inherit it, so every
training loader of a demo started by that script draws its batches from this sampler instead of the random one.
It acts only when ``FSC_LA_WORLD`` is set, and only on loaders over ``FSC_LA_N`` rows (the fine-tuning table).

A batch is made of groups of ``FSC_LA_GROUP`` rows whose images hold the same objects (shape, color, size) in other
arrangements, so that only positions tell them apart; rows left over from a set of look-alikes form mixed groups.
Groups are shuffled per (seed, epoch); the number of batches per epoch is unchanged. Ranks: one process only.
"""

from __future__ import annotations

import csv
import json
import os
import random
from functools import lru_cache
from pathlib import Path

if os.environ.get("FSC_LA_WORLD"):
    import fsc_clip.data.loader as _loader

    _random_iter = _loader._EpochSampler.__iter__

    @lru_cache(maxsize=1)  # read once per process, not once per epoch
    def _object_sets(world: Path, table: Path) -> list[tuple]:
        """Each table row's object set, read from the world's scene graphs (matched by image file name)."""
        scenes = {}
        with (world / "scenes.jsonl").open(encoding="utf-8") as f:
            for line in f:
                scene = json.loads(line)
                objects = sorted((o["shape"], o["color"], o["size"]) for o in scene["objects"])
                scenes[Path(scene["image"]).name] = tuple(objects)
        with table.open(encoding="utf-8", newline="") as f:
            return [scenes[Path(r["filepath"]).name] for r in csv.DictReader(f, delimiter="\t")]

    def _lookalike_iter(self):  # type: ignore[no-untyped-def]
        if self.n != int(os.environ.get("FSC_LA_N", "-1")) or self.world_size != 1:
            yield from _random_iter(self)
            return
        k = int(os.environ.get("FSC_LA_GROUP", "2"))
        keys = _object_sets(Path(os.environ["FSC_LA_WORLD"]), Path(os.environ["FSC_LA_TSV"]))
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        by_key: dict[tuple, list[int]] = {}
        for row, key in enumerate(keys):
            by_key.setdefault(key, []).append(row)
        groups, rest = [], []
        for rows in by_key.values():
            rng.shuffle(rows)
            full = len(rows) - len(rows) % k
            groups += [rows[j : j + k] for j in range(0, full, k)]
            rest += rows[full:]
        rng.shuffle(rest)
        groups += [rest[j : j + k] for j in range(0, len(rest), k)]
        rng.shuffle(groups)
        order = [row for group in groups for row in group]
        batches = [order[b * self.batch_size : (b + 1) * self.batch_size] for b in range(self.num_batches())]
        for ids in batches[self.start_batch :]:
            yield self.epoch, ids

    _loader._EpochSampler.__iter__ = _lookalike_iter
