"""The pre-trained base of the default demo, shipped as package data so that a first ``fsc-clip demo`` skips
pre-training (2.5 minutes on two cores).

The file ``resources/synthetic/demo-base.safetensors`` holds the weights of the base that ``fsc-clip demo`` trains
with the default settings (seed 0), except for the token embedding: of its 49,408 rows (19 of the model's 22 MB)
it keeps only the rows of the tokens that occur in the demo's texts (the world's captions, negatives, benchmark
texts and prompts, and the precomputed negatives) or that an online ``replace`` negative could bring into them,
with their ids. The other rows never received a gradient in pre-training and no text of the demo looks them up;
unpacked, they are zero. Fine-tuning does not change them either
(no gradient, and weight decay keeps zero at zero), so every number of the demo is the same from the shipped base as
from the base it was packed from (tested; ``docs/demo.md`` says how it was made and checked).

The file is only used when the demo's base key (:func:`fsc_clip.demo.pipeline.base_cache_dir`: model, seed, world
settings and version, pre-training settings) equals the key recorded in it; any other setting, or
``--from-scratch``, trains the base. Maintainers rebuild it with ``python benchmarks/pack_demo_base.py`` after a
change to the world or the pre-training preset (a test fails until they do).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

EMBEDDING = "token_embedding.weight"
IDS, ROWS = "token_embedding.ids", "token_embedding.rows"
SHIPPED_NAME = "demo-base.safetensors"
TEXT_SUFFIXES = (".tsv", ".json", ".jsonl", ".txt", ".csv")

__all__ = ["SHIPPED_NAME", "demo_token_ids", "pack_base", "shipped_base", "shipped_key", "unpack_base"]


def shipped_base() -> Path | None:
    """The shipped base file, or None when this installation has none."""
    path = Path(str(resources.files("fsc_clip") / "resources" / "synthetic" / SHIPPED_NAME))
    return path if path.is_file() else None


def shipped_key(path: Path) -> str:
    """The base key recorded in a packed base (the name of the cache folder it stands for, ``base-<key>``)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return str((f.metadata() or {}).get("base_key", ""))


def demo_token_ids(folders: Iterable[Path], tokenizer: Any) -> set[int]:
    """Token ids of every line of every text file (``.tsv``, ``.json``, ``.jsonl``, ``.txt``, ``.csv``) under
    ``folders``, and of every word the online ``replace`` negatives could bring into those texts
    (:func:`fsc_clip.negatives.replace.possible_words`: a caption without a precomputed ``replace`` negative gets a
    WordNet one during fine-tuning): a superset of the ids of every text the demo trains or evaluates on (file
    names and JSON keys add a few more, which costs nothing)."""
    from fsc_clip.negatives.replace import possible_words

    ids: set[int] = {0, int(tokenizer.sot_token_id), int(tokenizer.eot_token_id)}  # 0: open_clip's padding
    words: set[str] = set()
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix in TEXT_SUFFIXES and path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    ids.update(tokenizer.encode(line))
                    words.update(re.findall(r"[a-z]+", line.lower()))
    for word in possible_words(words):
        ids.update(tokenizer.encode(word))
    return ids


def pack_base(run_dir: Path, text_folders: Iterable[Path], out: Path, base_key: str, note: str = "") -> dict[str, Any]:
    """Write the base of ``run_dir`` to ``out`` (safetensors) with only the embedding rows the demo's texts use.

    Args:
        run_dir: A finished base run folder (``checkpoints/latest.pt``).
        text_folders: Folders whose text files hold every text the demo uses (its ``world/`` and ``finetune/``).
        out: The file to write.
        base_key: The key of :func:`fsc_clip.demo.pipeline.base_cache_dir` this base was trained for.
        note: Provenance recorded in the file (how and where it was trained).

    Returns:
        What was written: ``rows`` kept, ``bytes``, ``base_key``.
    """
    import torch
    from open_clip.tokenizer import SimpleTokenizer
    from safetensors.torch import save

    from fsc_clip.fileio import write_bytes
    from fsc_clip.models.checkpoint import read_checkpoint

    ckpt = read_checkpoint(run_dir)
    state = {k: v.contiguous() for k, v in ckpt.state_dict.items()}
    embedding = state.pop(EMBEDDING)  # [V, W]
    ids = torch.tensor(sorted(demo_token_ids(text_folders, SimpleTokenizer())), dtype=torch.int64)  # [N]
    state[IDS], state[ROWS] = ids, embedding[ids].clone()  # [N], [N, W]
    metadata = {
        "base_key": base_key,
        "vocab_size": str(embedding.shape[0]),
        "model": json.dumps(ckpt.meta or {}),
        "config": json.dumps(ckpt.extra.get("config", {})),
        "step": str(ckpt.extra.get("step", "")),
        "note": note,
    }
    data = save(state, metadata=metadata)
    write_bytes(out, data)
    return {"rows": int(ids.numel()), "bytes": len(data), "base_key": base_key}


def unpack_base(path: Path, run_dir: Path) -> None:
    """Write a packed base as a finished run folder (``checkpoints/latest.pt`` + ``demo_done.json``).

    Raises:
        ModelLoadError: the file is damaged or not a packed base.
    """
    import torch
    from safetensors import SafetensorError, safe_open

    from fsc_clip.errors import ModelLoadError
    from fsc_clip.fileio import write_text
    from fsc_clip.models.checkpoint import write_run_checkpoint
    from fsc_clip.training.checkpoint import FORMAT, FORMAT_VERSION

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        ids, rows = state.pop(IDS), state.pop(ROWS)  # [N], [N, W]
        embedding = torch.zeros(int(meta["vocab_size"]), rows.shape[1], dtype=rows.dtype)  # [V, W]
        embedding[ids] = rows
        model, config, step = json.loads(meta["model"]), json.loads(meta["config"]), int(meta["step"] or 0)
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as err:
        raise ModelLoadError(f"{path} is not a readable packed demo base ({type(err).__name__}: {err}); "
                             "reinstall fsc-clip or run the demo with --from-scratch") from err  # fmt: skip
    state[EMBEDDING] = embedding
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model, "state_dict": state,
               "step": step, "config": config, "shipped_from": path.name}  # fmt: skip
    write_run_checkpoint(run_dir / "checkpoints" / "latest.pt", payload)
    write_text(run_dir / "demo_done.json", json.dumps({"seconds": 0.0, "shipped": path.name}))
