"""``Indexer``: the indexing stage — a parsed file's sections → passages → embeddings → SQLite → FAISS.

The ingestion job (``ingest.job.run_local`` / ``ingest.ray_job.run_ray``) reads and sectionizes files and
hands each ``ParsedFile`` to an indexer, which stores the file in one transaction and updates the vector
index in place. ``Pipeline.ingest`` wires the two together; any other producer of ``ParsedFile`` can use
an indexer the same way.

>>> with Indexer(store, index, embedder, config.index) as write:
...     sections, passages = write(parsed_file)
"""

from __future__ import annotations

import time
from typing import Protocol, Self

import numpy as np

from pipeline.config import IndexConfig
from pipeline.index import PassageIndex
from pipeline.passages import context_header, make_passages
from pipeline.store import SectionStore
from pipeline.types import ParsedFile

SAVE_EVERY_S = 60.0
"""The FAISS file is saved at least this often during a long job (and always at the end)."""


class PassageEmbedder(Protocol):
    """What indexing needs of the embedder (``encoders.Embedder``)."""

    tokenizer: object
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


class Indexer:
    """Stores parsed files and their passage embeddings; a callable ``ParsedFile → (sections, passages)``."""

    def __init__(self, store: SectionStore, index: PassageIndex, embedder: PassageEmbedder, cfg: IndexConfig) -> None:
        self.store = store
        self.index = index
        self.embedder = embedder
        self.cfg = cfg
        self._saved = time.monotonic()

    def __call__(self, parsed: ParsedFile) -> tuple[int, int]:
        """Stores every document of ``parsed`` (replacing what the same file stored before); returns how many
        sections and passages were stored."""
        items, n_sections, n_passages = [], 0, 0
        for doc, sections in parsed.documents:
            passages = [p for s in sections for p in make_passages(
                s, self.embedder.tokenizer, self.cfg.passage_tokens, self.cfg.passage_overlap)]
            by_id = {s.id: s for s in sections}
            contexts = [context_header(doc, by_id[p.section_id]) if self.cfg.context_header else "" for p in passages]
            vecs = self.embedder.encode([f"{c}\n{p.text}" if c else p.text for c, p in zip(contexts, passages, strict=True)])
            items.append((doc, sections, passages, vecs, contexts))
            n_sections += len(sections)
            n_passages += len(passages)
        removed, added = self.store.put_file(parsed.path, parsed.sha, items)
        self.index.remove(removed)
        vecs = (np.concatenate([item[3] for item in items]) if items
                else np.zeros((0, self.embedder.dim), dtype=np.float32))
        self.index.add(np.asarray(added, dtype=np.int64), vecs)
        if time.monotonic() - self._saved > SAVE_EVERY_S:
            self.save()
        return n_sections, n_passages

    def delete(self, doc_ids: list[str]) -> int:
        """Removes documents from the store and the index; returns how many passages went with them."""
        removed = self.store.delete_documents(doc_ids)
        self.index.remove(removed)
        self.save()
        return len(removed)

    def save(self) -> None:
        self.index.save()
        self._saved = time.monotonic()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.save()
