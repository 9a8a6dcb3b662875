"""Per-sample hard negatives for a batch: precomputed candidates first, online generation for the rest.

For every sample and every negative type exactly one negative is chosen per epoch. A precomputed
candidate is picked by a hash of (seed, epoch, sample id, type slot); an online negative comes from
:func:`fsc_clip.negatives.generate_negatives` with ``indices`` = sample ids. Both depend only on the
sample, never on how samples were batched, split across ranks or spread over workers.

Never a negative identical to its caption, whatever its source: precomputed candidates (a table's own column, such
as NegCLIP's ``neg_caption`` in COCO ``train_neg_clip.tsv``, which holds a few that only re-space or re-case the
caption, e.g. "semi-trucks in" -> "semi trucks - in"; or a JSONL file) are filtered exactly as generated ones:
equal up to case, spacing and punctuation (:func:`fsc_clip.negatives.text.same_text`), or equal in the first
``context_length`` tokens the text encoder reads, and they are dropped; a type left without candidates falls
back to online generation (for a generator style).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from fsc_clip.config import ConfigError
from fsc_clip.errors import DataNotFoundError
from fsc_clip.negatives.stats import NegativeStats
from fsc_clip.negatives.text import same_text
from fsc_clip.negatives.window import ContextWindow

PRECOMPUTED = "precomputed"
_MASK64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """Deterministic 63-bit hash of integers (splitmix64 chain): cheap, platform- and process-independent."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (int(value) & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state >> 1


def load_precomputed(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """Read a ``fsc-clip negatives`` JSONL into caption -> {type: candidates} (duplicates merged)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(
            f"Precomputed negatives file not found: {path}. Create it with `fsc-clip negatives` or unset "
            "data.precomputed_negatives."
        )
    out: dict[str, dict[str, list[str]]] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                caption, negs = str(obj["caption"]).strip(), obj.get("negatives") or {}
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ConfigError(
                    f'{path}:{lineno}: expected {{"caption": ..., "negatives": {{type: [...]}}}} ({err})'
                ) from err
            entry = out.setdefault(caption, {})
            for neg_type, cands in negs.items():
                if isinstance(cands, str):
                    cands = [cands]
                keep = [c for c in cands or [] if isinstance(c, str) and c.strip()]
                if keep:
                    entry.setdefault(str(neg_type), []).extend(keep)
    return out


def _types_in(entries: Iterable[dict[str, list[str]] | None]) -> list[str]:
    seen: dict[str, None] = {}
    for entry in entries:
        for neg_type in entry or {}:
            seen.setdefault(neg_type, None)
    return list(seen)


class NegativeSampler:
    """Chooses the K negatives of each sample (picklable; lives in DataLoader workers).

    Args:
        style: ``None`` (no negatives), ``"precomputed"`` or a style name known to ``fsc_clip.negatives``.
        precomputed: caption -> {type: candidates} from a JSONL file (may be empty).
        row_types: negative types present in the table's own negatives column (for ``"precomputed"``).
        seed: run seed.
        context_length: token slots of the text encoder (``None``: unlimited); a candidate that differs from its
            caption only beyond them is dropped, and generated edits are made within them.
    """

    def __init__(
        self,
        style: str | None,
        precomputed: dict[str, dict[str, list[str]]] | None = None,
        row_types: Sequence[str] = (),
        seed: int = 0,
        context_length: int | None = None,
    ) -> None:
        self.style = style
        self.precomputed = precomputed or {}
        self.seed = int(seed)
        self.context_length = context_length
        self.window = ContextWindow(context_length)
        if style is None:
            self.types: list[str] = []
        elif style == PRECOMPUTED:
            self.types = list(dict.fromkeys([*row_types, *_types_in(self.precomputed.values())]))
            if not self.types:
                raise ConfigError(
                    "data.negatives=precomputed but no precomputed negatives were found: give "
                    "data.precomputed_negatives or a table with a data.csv_neg_key column."
                )
        else:
            from fsc_clip.negatives import style_types
            from fsc_clip.negatives.resources import check_spacy_setting

            self.types = list(style_types(style))
            check_spacy_setting()  # a wrong FSC_CLIP_SPACY_MODEL fails now, not in the first worker

    @property
    def enabled(self) -> bool:
        return bool(self.types)

    def choose(
        self,
        captions: Sequence[str],
        indices: Sequence[int],
        row_negatives: Sequence[dict[str, list[str]] | None] | None,
        epoch: int,
        stats: NegativeStats | None = None,
    ) -> list[list[str | None]]:
        """Return ``[B][K]`` negatives (``None`` where a type cannot apply to a caption).

        ``stats`` (optional) receives, per type, the captions left without a negative and those for which a
        candidate was dropped because it differed from the caption only beyond the context window.
        """
        out: list[list[str | None]] = []
        hidden: list[list[bool]] = []
        missing: list[int] = []  # batch positions that need online generation
        for b, (caption, index) in enumerate(zip(captions, indices)):
            own = row_negatives[b] if row_negatives is not None else None
            pre = self.precomputed.get(caption)
            row: list[str | None] = []
            row_hidden = []
            for k, neg_type in enumerate(self.types):
                cands, n_hidden = self._usable(
                    caption, [*((own or {}).get(neg_type, ())), *((pre or {}).get(neg_type, ()))]
                )
                row.append(cands[mix_seed(self.seed, epoch, index, k) % len(cands)] if cands else None)
                row_hidden.append(n_hidden > 0)
            if self.style != PRECOMPUTED and any(n is None for n in row):
                missing.append(b)
            out.append(row)
            hidden.append(row_hidden)
        online_hidden = self._fill_online(out, missing, captions, indices, epoch) if missing else {}
        if stats is not None:
            stats.context_length = self.context_length
            stats.add_captions(len(out))
            for row, row_hidden in zip(out, hidden):
                for neg_type, neg, was_hidden in zip(self.types, row, row_hidden):
                    stats.count(neg_type, neg is not None, was_hidden)
            for neg_type, n in online_hidden.items():
                if neg_type in stats.hidden:
                    stats.hidden[neg_type] += n
        return out

    def _usable(self, caption: str, cands: list[str]) -> tuple[list[str], int]:
        """Candidates that differ from ``caption`` textually and to the model; and how many were hidden."""
        if not cands:
            return cands, 0
        textual = [c for c in cands if not same_text(c, caption)]
        visible = [c for c in textual if not self.window.same_to_model(caption, c)]
        return visible, len(textual) - len(visible)

    def _fill_online(
        self,
        out: list[list[str | None]],
        missing: list[int],
        captions: Sequence[str],
        indices: Sequence[int],
        epoch: int,
    ) -> dict[str, int]:
        """Generate the negatives still ``None`` at positions ``missing``; returns hidden-draw counts per type."""
        from fsc_clip.negatives import generate_negatives

        assert self.style is not None  # online generation only runs for a generator style
        online = NegativeStats()
        generated, types = generate_negatives(
            [captions[b] for b in missing],
            style=self.style,
            seed=self.seed,
            epoch=epoch,
            indices=[int(indices[b]) for b in missing],
            context_length=self.context_length,
            stats=online,
        )
        slot = {t: k for k, t in enumerate(types)}
        for b, negs in zip(missing, generated):
            for k, neg_type in enumerate(self.types):
                if out[b][k] is None and neg_type in slot:
                    out[b][k] = negs[slot[neg_type]]
        return online.hidden
