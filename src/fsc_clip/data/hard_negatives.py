"""Per-sample hard negatives for a batch: precomputed candidates first, online generation for the rest.

For every sample and every negative type exactly one negative is chosen per epoch. A precomputed
candidate is picked by a hash of (seed, epoch, sample id, type slot); an online negative comes from
:func:`fsc_clip.negatives.generate_negatives` with ``indices`` = sample ids. Both depend only on the
sample, never on how samples were batched, split across ranks or spread over workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from fsc_clip.config import ConfigError
from fsc_clip.errors import DataNotFoundError

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
    """

    def __init__(
        self,
        style: str | None,
        precomputed: dict[str, dict[str, list[str]]] | None = None,
        row_types: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        self.style = style
        self.precomputed = precomputed or {}
        self.seed = int(seed)
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

            self.types = list(style_types(style))

    @property
    def enabled(self) -> bool:
        return bool(self.types)

    def choose(
        self,
        captions: Sequence[str],
        indices: Sequence[int],
        row_negatives: Sequence[dict[str, list[str]] | None] | None,
        epoch: int,
    ) -> list[list[str | None]]:
        """Return ``[B][K]`` negatives (``None`` where a type cannot apply to a caption)."""
        out: list[list[str | None]] = []
        missing: list[int] = []  # batch positions that need online generation
        for b, (caption, index) in enumerate(zip(captions, indices)):
            own = row_negatives[b] if row_negatives is not None else None
            pre = self.precomputed.get(caption)
            row: list[str | None] = []
            for k, neg_type in enumerate(self.types):
                cands = [*((own or {}).get(neg_type, ())), *((pre or {}).get(neg_type, ()))]
                row.append(cands[mix_seed(self.seed, epoch, index, k) % len(cands)] if cands else None)
            if self.style != PRECOMPUTED and any(n is None for n in row):
                missing.append(b)
            out.append(row)
        if missing:
            self._fill_online(out, missing, captions, indices, epoch)
        return out

    def _fill_online(
        self,
        out: list[list[str | None]],
        missing: list[int],
        captions: Sequence[str],
        indices: Sequence[int],
        epoch: int,
    ) -> None:
        from fsc_clip.negatives import generate_negatives

        generated, types = generate_negatives(
            [captions[b] for b in missing],
            style=self.style,
            seed=self.seed,
            epoch=epoch,
            indices=[int(indices[b]) for b in missing],
        )
        slot = {t: k for k, t in enumerate(types)}
        for b, negs in zip(missing, generated):
            for k, neg_type in enumerate(self.types):
                if out[b][k] is None and neg_type in slot:
                    out[b][k] = negs[slot[neg_type]]
