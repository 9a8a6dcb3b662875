"""The part of a caption that the text encoder sees: its first ``context_length`` CLIP tokens.

A CLIP text tower reads ``[SOT] t_1 ... t_n [EOT]`` cut to ``context_length`` ids (open_clip's ``tokenize``
truncates and writes EOT into the last slot), so only the first ``context_length - 2`` BPE tokens of a caption
count. A negative whose edits all lie beyond them is, to the model, the caption itself. :class:`ContextWindow`
answers two questions with the CLIP BPE of ``open_clip.tokenizer.SimpleTokenizer`` (the tokenizer of every
OpenAI/open_clip CLIP model; for other tokenizers the training collate step re-checks with the model's own):

* :meth:`ContextWindow.visible_words`: how many leading words of a parse fit, so edits can be made there;
* :meth:`ContextWindow.same_to_model`: whether a negative and its caption give the same visible tokens.

Captions of at most ``context_length - 2`` UTF-8 bytes are never tokenized here (each BPE token covers at least one
byte, so they fit), which keeps the common case free of any tokenizer cost.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fsc_clip.negatives.parse import Parsed

DEFAULT_CONTEXT_LENGTH = 77  # CLIP / open_clip text towers
_SPECIAL_TOKENS = 2  # [SOT] and [EOT]


@lru_cache(maxsize=1)
def _clip_bpe() -> Any:
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


# Large enough for the texts of an epoch of the demo (~83k) and typical fine-tuning sets: an LRU cache smaller than
# the cycle of texts an epoch visits would miss every time. ~0.2 KB per text.
@lru_cache(maxsize=1 << 18)
def clip_bpe_ids(text: str) -> tuple[int, ...]:
    """CLIP BPE ids of ``text`` without SOT/EOT (open_clip's cleaning: ftfy, whitespace, lower case)."""
    return tuple(_clip_bpe().encode(text))


class ContextWindow:
    """The visible token budget of a text encoder.

    Args:
        context_length: Token slots of the text tower including SOT and EOT (77 for CLIP); ``None`` means
            unlimited (nothing is ever hidden).
    """

    def __init__(self, context_length: int | None = DEFAULT_CONTEXT_LENGTH) -> None:
        if context_length is not None and context_length <= _SPECIAL_TOKENS:
            raise ValueError(f"context_length must be > {_SPECIAL_TOKENS}, got {context_length}")
        self.context_length = context_length
        self.budget = None if context_length is None else context_length - _SPECIAL_TOKENS

    def fits(self, text: str) -> bool:
        """Whether every token of ``text`` is visible."""
        if self.budget is None or len(text.encode("utf-8")) <= self.budget:
            return True
        return len(clip_bpe_ids(text)) <= self.budget

    def visible(self, text: str) -> tuple[int, ...]:
        """The BPE ids the encoder sees (the first ``context_length - 2``)."""
        ids = clip_bpe_ids(text)
        return ids if self.budget is None else ids[: self.budget]

    def same_to_model(self, caption: str, negative: str) -> bool:
        """True when ``negative`` differs from ``caption`` only beyond the window (or not at all in tokens)."""
        if self.fits(caption) and self.fits(negative):
            return False  # both fully visible: a textual difference is a visible one
        return self.visible(caption) == self.visible(negative)

    def visible_words(self, parsed: Parsed) -> int:
        """Number of leading parse tokens whose text (with the words before them) fits in the window."""
        n = len(parsed)
        if self.fits(parsed.text):
            return n
        lo, hi = 0, n  # invariant: prefix(lo) fits, prefix(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.fits(parsed.prefix_text(mid)):
                lo = mid
            else:
                hi = mid
        return lo
