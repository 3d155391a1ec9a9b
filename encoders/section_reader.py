"""``SectionReader``: each sentence of a section as the long encoder reads it, in place, whole section at once.

A sentence embedded on its own loses what its place says: the heading it sits under, the clause it
qualifies, the defined term three sentences back. The ``LongEncoder`` reads the whole section in one
sparse-attention pass and mean-pools each sentence's tokens, so every sentence vector carries its
context (within the window) as well as its words. The vectors are unit-normalized, in the embedder's
space (the encoder is built from the same MiniLM weights), and comparable with its question vector.

The section is read without the question: on the development data the in-context vectors ranked no
better with the question as global tokens, and worse when used alone (``tests/graphs/test_digest_salience.py``,
docs/evaluation.md), while a question-free reading is the same for every question and so is cached per
section (ids are content hashes: a section's text never changes under its id). A section longer than the encoder's
``max_tokens`` is read in consecutive pieces cut at sentence boundaries.

>>> reader = SectionReader(LongEncoder(window=256))
>>> vecs = reader.sentence_vectors(section.id, section.text, spans)    # [len(spans), 384], unit rows
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from encoders.long_encoder import LongEncoder


class SectionReader:
    """Contextual sentence vectors of whole sections, least recently used sections cached."""

    def __init__(self, encoder: LongEncoder, cache_sections: int = 256) -> None:
        if cache_sections < 0:
            raise ValueError("cache_sections must be 0 or more")
        self.encoder = encoder
        self.cache_sections = cache_sections
        self._cache: OrderedDict[tuple[str, tuple[tuple[int, int], ...]], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.tokens_read = 0
        """Section tokens the encoder has read (cache hits excluded): what the digest costs."""
        self.seconds = 0.0

    def sentence_vectors(self, key: str, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray:
        """``spans`` (character spans of ``text``) → [N, dim] unit vectors; a zero row where a span has no token.

        ``key`` names ``text`` for the cache (a section id); the same key with other spans is read again.
        """
        spans = tuple((int(s), int(e)) for s, e in spans)
        cache_key = (key, spans)
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None:
                self._cache.move_to_end(cache_key)
                return hit
        vecs = self._read(text, spans)
        if self.cache_sections:
            vecs.setflags(write=False)
            with self._lock:
                self._cache[cache_key] = vecs
                while len(self._cache) > self.cache_sections:
                    self._cache.popitem(last=False)
        return vecs

    def _read(self, text: str, spans: tuple[tuple[int, int], ...]) -> np.ndarray:
        if not spans:
            return np.zeros((0, 0), dtype=np.float32)
        t0 = time.perf_counter()
        rows: list[np.ndarray] = []
        for a, b, group in self._pieces(text, spans):
            enc = self.encoder.encode(text[a:b], spans=[(s - a, e - a) for s, e in group])
            self.tokens_read += len(enc.token_embeddings)
            rows.append(enc.span_embeddings)
        out = np.concatenate(rows)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
        self.seconds += time.perf_counter() - t0
        return out.astype(np.float32, copy=False)

    def _pieces(self, text: str, spans: tuple[tuple[int, int], ...]):
        """``(start, end, spans)`` pieces of ``text`` each within the encoder's token limit, cut between spans
        (``spans`` is not empty)."""
        room = self.encoder.max_tokens - 2
        offsets = self.encoder.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        ends = np.asarray([e for _, e in offsets] or [0])
        # tokens ending at or before char c: np.searchsorted(ends, c, "right")
        start_tok, group = 0, []
        piece_start = 0
        for s, e in spans:
            end_tok = int(np.searchsorted(ends, e, side="right"))
            if group and end_tok - start_tok > room:
                yield piece_start, group[-1][1], group
                piece_start, start_tok, group = s, int(np.searchsorted(ends, s, side="right")), []
            group.append((s, e))
        yield piece_start, group[-1][1], group
