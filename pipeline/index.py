"""The vector index over passage embeddings: an exact inner-product FAISS index keyed by passage rowid.

The index file is derived data. It records the store generation it was built from; when that does
not match the store (a job killed between the SQLite commit and the index save, a deleted file), it
is rebuilt from the embeddings in the store, which are the source of truth.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np

from pipeline.store import SectionStore

INDEX_NAME = "passages.faiss"


class PassageIndex:
    """Exact cosine search (inner product over L2-normalised embeddings) over a store's passages.

    >>> index = PassageIndex.open(store, dim=384)
    >>> rowids, scores = index.search(query_vec, k=50)          # query_vec: [D]
    """

    def __init__(self, store: SectionStore, dim: int, index: faiss.Index) -> None:
        self.store = store
        self.dim = dim
        self.index = index

    @property
    def path(self) -> Path:
        return self.store.folder / INDEX_NAME

    @classmethod
    def open(cls, store: SectionStore, dim: int) -> PassageIndex:
        path = store.folder / INDEX_NAME
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                if meta.get("generation") == store.generation and meta.get("dim") == dim:
                    return cls(store, dim, faiss.read_index(str(path)))
            except (ValueError, RuntimeError):
                pass  # unreadable index: fall through and rebuild it from the store
        return cls.rebuild(store, dim)

    @classmethod
    def rebuild(cls, store: SectionStore, dim: int) -> PassageIndex:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        for rowids, vecs in store.iter_embeddings():
            if vecs.shape[1] != dim:
                raise ValueError(f"store {store.folder} holds {vecs.shape[1]}-d embeddings, the embedder makes {dim}-d")
            index.add_with_ids(vecs, rowids)
        self = cls(store, dim, index)
        self.save()
        return self

    def add(self, rowids: np.ndarray, vecs: np.ndarray) -> None:
        if len(rowids):
            self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.asarray(rowids, dtype=np.int64))

    def remove(self, rowids: list[int]) -> None:
        if rowids:
            self.index.remove_ids(np.asarray(rowids, dtype=np.int64))

    def save(self) -> None:
        """Atomically replace the index file and stamp it with the store's generation."""
        tmp = self.path.with_suffix(".faiss.tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, self.path)
        meta_tmp = self.path.with_suffix(".json.tmp")
        meta_tmp.write_text(json.dumps({"generation": self.store.generation, "dim": self.dim}))
        os.replace(meta_tmp, self.path.with_suffix(".json"))

    @property
    def size(self) -> int:
        return self.index.ntotal

    def search(self, query: np.ndarray, k: int, rowids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``query`` [D] → (passage rowids [k'], scores [k']), best first; ``rowids`` restricts the search."""
        if self.index.ntotal == 0 or (rowids is not None and len(rowids) == 0):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        params = None
        if rowids is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(rowids, dtype=np.int64)))
        k = min(k, self.index.ntotal)
        scores, ids = self.index.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]
