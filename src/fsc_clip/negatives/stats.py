"""Counts that tell a user when hard negatives are scarce: per type, captions without one, and why.

Generation is spread over batches, chunks and worker processes; each part fills a :class:`NegativeStats` and the
caller that sees the whole run (``fsc-clip negatives``, the training loader) merges them and logs
:meth:`NegativeStats.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A type missing for more than this share of captions is worth a warning: on real captions (COCO-style) each type
# of the fsc-clip style applies to >= 97 % of them (benchmarks/negatives.py), so 10 % means unusual data.
MISSING_WARN_SHARE = 0.10


@dataclass
class NegativeStats:
    """Per-type counts over a set of captions.

    Attributes:
        captions: Captions seen.
        missing: Type -> captions that got no negative of that type.
        hidden: Type -> captions for which a negative of that type was dropped because it differed from the caption
            only beyond the text encoder's context length (invisible to the model).
        context_length: The context length the check used (for messages).
    """

    captions: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    hidden: dict[str, int] = field(default_factory=dict)
    context_length: int | None = None

    def count(self, neg_type: str, found: bool, hidden: bool) -> None:
        """Record the outcome of one (caption, type) pair (call :meth:`add_captions` once per caption)."""
        self.missing.setdefault(neg_type, 0)
        self.hidden.setdefault(neg_type, 0)
        self.missing[neg_type] += not found
        self.hidden[neg_type] += hidden

    def add_captions(self, n: int) -> None:
        self.captions += n

    def merge(self, other: NegativeStats) -> None:
        """Add ``other``'s counts to these."""
        self.captions += other.captions
        self.context_length = self.context_length or other.context_length
        for mine, theirs in ((self.missing, other.missing), (self.hidden, other.hidden)):
            for neg_type, n in theirs.items():
                mine[neg_type] = mine.get(neg_type, 0) + n

    def messages(self, min_share: float = MISSING_WARN_SHARE) -> list[str]:
        """Warnings: types missing for more than ``min_share`` of the captions; negatives hidden by the window."""
        if not self.captions:
            return []
        out = []
        for neg_type, n in self.missing.items():
            if n > min_share * self.captions:
                out.append(
                    f"hard negatives: no {neg_type!r} negative for {n:,} of {self.captions:,} captions "
                    f"({100 * n / self.captions:.1f} %); those samples train without that type"
                )
        window = f"the first {self.context_length} tokens" if self.context_length else "the context length"
        for neg_type, n in self.hidden.items():
            if n:
                out.append(
                    f"hard negatives: {n:,} of {self.captions:,} captions had a {neg_type!r} negative that differed "
                    f"from the caption only beyond {window} (invisible to the model); it was dropped"
                )
        return out
