"""The section readers, built on first use and kept: the untrained long encoder's sentence vectors (the
``blend`` digest) and the trained reader (the ``trained`` digest and ``check``).

``SectionReaders`` builds the ``encoders.SectionReader`` that a ``SummarizeConfig`` asks for (window, token
limit, attention backend, cache size, precision) the first time a question needs it, and keeps it (with
its cache of read sections) while the configuration stays the same; ``trained`` loads the trained
``encoders.EvidenceReader`` once per weights folder.
"""

from __future__ import annotations

import threading
from pathlib import Path

from graphs.evidence import ReadSentences
from pipeline.config import SummarizeConfig, resolve_dtype


class SectionReaders:
    """The reader for the summarize stage's configuration; ``model_path`` is the embedder's MiniLM folder
    (the long encoder is built from the same weights, so its vectors share the embedder's space)."""

    def __init__(self, model_path: str | Path | None, device: str = "cpu") -> None:
        self.model_path = model_path
        self.device = device
        self._reader = None
        self._key: tuple | None = None
        self._lock = threading.Lock()
        self._trained: dict[str, object] = {}

    def for_config(self, cfg: SummarizeConfig) -> ReadSentences | None:
        """``SectionReader.sentence_vectors`` for ``cfg``, or None when the configuration reads no section."""
        if not cfg.enabled or cfg.encoder_weight <= 0:
            return None
        key = (cfg.window, cfg.max_tokens, cfg.impl, cfg.cache_sections, cfg.dtype)
        with self._lock:
            if self._key != key:
                from encoders.long_encoder import LongEncoder
                from encoders.section_reader import SectionReader

                encoder = LongEncoder(self.model_path, window=cfg.window, max_tokens=cfg.max_tokens, impl=cfg.impl,
                                      device=self.device, dtype=resolve_dtype(cfg.dtype, self.device))
                self._reader, self._key = SectionReader(encoder, cfg.cache_sections), key
            return self._reader.sentence_vectors

    def trained(self, weights: str = "", impl: str = "auto"):
        """The trained ``EvidenceReader`` of the ``weights`` folder (empty: the shipped one)."""
        from encoders.reader import EvidenceReader

        with self._lock:
            key = f"{weights}|{impl}"
            if key not in self._trained:
                reader = EvidenceReader(weights or None, impl=impl, device=self.device)
                if not reader.available(weights or None):
                    raise RuntimeError(f"the trained reader's weights are missing from {reader.weights_dir}; "
                                       "train them with `python -m encoders.train_reader --out DIR` and set "
                                       "[summarize] reader_weights, or use [summarize] scorer = \"blend\"")
                self._trained[key] = reader
            return self._trained[key]

    def reading(self) -> tuple[int, float]:
        """Section tokens the current reader has read (cache hits excluded) and the seconds it took."""
        if self._reader is None:
            return 0, 0.0
        return self._reader.tokens_read, self._reader.seconds
