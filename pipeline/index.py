"""The vector index over passage embeddings, keyed by passage rowid, chosen by collection size.

``flat`` is exact inner-product search (cosine over L2-normalised embeddings): right for anything up
to a few hundred thousand passages. Beyond ``ivf_threshold`` passages ``auto`` switches to ``ivf``
(an inverted file over k-means cells, exact distances inside the ``nprobe`` cells it visits), which
supports incremental removal; ``hnsw`` is available for read-mostly collections (FAISS cannot remove
from an HNSW graph, so a removal rebuilds it from the store).

The index file is derived data. It records the store generation it was built from; when that does
not match the store (a job killed between the SQLite commit and the index save, a deleted file), it
is rebuilt from the embeddings in the store, which are the source of truth. Saves write a temporary
file and rename it over the old one, so a crash mid-write leaves the previous index intact.

With the ``gpu`` extra (``faiss-gpu``) and a visible GPU, unrestricted searches run on a GPU copy of
the index; the CPU index stays the one that is saved and updated.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import faiss
import numpy as np

from pipeline.config import IndexConfig
from pipeline.locks import owner_only
from pipeline.store import SectionStore

INDEX_NAME = "passages.faiss"


def choose_kind(cfg: IndexConfig, n: int) -> str:
    """The index kind for ``n`` passages under ``cfg.index_kind`` (``auto`` → flat, or ivf when large)."""
    if cfg.index_kind != "auto":
        return cfg.index_kind
    return "ivf" if n >= cfg.ivf_threshold else "flat"


def ivf_cells(n: int) -> int:
    """About 4·√n k-means cells (FAISS guidance for 1M–10M vectors), at least 16, a multiple of 16."""
    return max(16, int(round(4 * math.sqrt(max(n, 1)) / 16)) * 16)


def make_index(kind: str, dim: int, train: np.ndarray | None = None, *, n_total: int | None = None,
               hnsw_m: int = 32) -> faiss.Index:
    """An empty index of ``kind`` carrying passage rowids; ``ivf`` is trained on ``train`` [N, D] with
    cells for ``n_total`` vectors (default: as many as ``train``), at most one per 39 training vectors."""
    match kind:
        case "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        case "hnsw":
            inner = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = 80
            return faiss.IndexIDMap2(inner)
        case "ivf":
            if train is None or len(train) == 0:
                raise ValueError("an ivf index needs training vectors")
            nlist = min(ivf_cells(n_total or len(train)), max(1, len(train) // 39))
            quantizer = faiss.IndexFlatIP(dim)
            inner = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            inner.train(np.ascontiguousarray(train, dtype=np.float32))
            # IVF keeps its own id lists, so no IDMap is needed; direct map enables remove + reconstruct
            inner.set_direct_map_type(faiss.DirectMap.Hashtable)
            return inner
        case _:
            raise ValueError(f"unknown index kind {kind!r}; use 'auto', 'flat', 'ivf' or 'hnsw'")


def _gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class PassageIndex:
    """Cosine search (inner product over L2-normalised embeddings) over a store's passages.

    >>> index = PassageIndex.open(store, dim=384)
    >>> rowids, scores = index.search(query_vec, k=50)          # query_vec: [D]
    """

    def __init__(self, store: SectionStore, dim: int, index: faiss.Index, kind: str = "flat",
                 cfg: IndexConfig | None = None, trained_on: int = 0) -> None:
        self.store = store
        self.dim = dim
        self.index = index
        self.kind = kind
        self.cfg = cfg or IndexConfig()
        self.trained_on = trained_on
        self._gpu_index = None
        self._needs_rebuild = False

    @property
    def path(self) -> Path:
        return self.store.folder / INDEX_NAME

    @classmethod
    def open(cls, store: SectionStore, dim: int, cfg: IndexConfig | None = None) -> PassageIndex:
        cfg = cfg or IndexConfig()
        path = store.folder / INDEX_NAME
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
                kind = meta.get("kind", "flat")
                if (meta.get("generation") == store.generation and meta.get("dim") == dim
                        and (cfg.index_kind in ("auto", kind))):
                    self = cls(store, dim, faiss.read_index(str(path)), kind, cfg, meta.get("trained_on", 0))
                    if choose_kind(cfg, self.size) == kind:
                        return self
            except (ValueError, RuntimeError):
                pass  # unreadable index: fall through and rebuild it from the store
        return cls.rebuild(store, dim, cfg)

    @classmethod
    def for_snapshot(cls, view: SectionStore, dim: int, cfg: IndexConfig | None = None) -> PassageIndex:
        """The index of exactly the version ``view`` (``SectionStore.snapshot``) sees, for reading only: the
        saved file when it was saved from that version, else built in memory from the view's embeddings (the
        file belongs to whichever job holds the store's ingest lock, so a reader never writes it)."""
        cfg = cfg or IndexConfig()
        path = view.folder / INDEX_NAME
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("generation") == view.generation and meta.get("dim") == dim and cfg.index_kind in ("auto", meta.get("kind")):
                index = faiss.read_index(str(path))
                # a save rewrites the metadata last and removes it first: unchanged means the file read is its own
                if json.loads(meta_path.read_text()) == meta:
                    return cls(view, dim, index, meta.get("kind", "flat"), cfg, meta.get("trained_on", 0))
        except (OSError, ValueError, RuntimeError):
            pass  # no saved index of this version (being written, missing, unreadable): build it
        return cls.rebuild(view, dim, cfg, save=False)

    def bound(self, view: SectionStore) -> PassageIndex:
        """This index reading through ``view`` (a snapshot of the version it was built from); the FAISS
        index is shared, not copied."""
        self._gpu()  # the GPU copy is made once, on the shared index, not once per question
        other = copy.copy(self)
        other.store = view
        return other

    @classmethod
    def rebuild(cls, store: SectionStore, dim: int, cfg: IndexConfig | None = None, *, save: bool = True) -> PassageIndex:
        """The index built from the store's embeddings, saved unless ``save`` is false."""
        cfg = cfg or IndexConfig()
        n = store.counts()["passages"]
        kind = choose_kind(cfg, n)
        train = store.sample_embeddings(cfg.ivf_train_size) if kind == "ivf" else None
        if train is not None and len(train) == 0:
            kind, train = "flat", None  # nothing to train on: an empty store stays flat
        index = make_index(kind, dim, train, n_total=n, hnsw_m=cfg.hnsw_m)
        for rowids, vecs in store.iter_embeddings():
            if vecs.shape[1] != dim:
                raise ValueError(f"store {store.folder} holds {vecs.shape[1]}-d embeddings, the embedder makes {dim}-d")
            index.add_with_ids(vecs, rowids)
        self = cls(store, dim, index, kind, cfg, trained_on=len(train) if train is not None else 0)
        if save:
            self._write()
        return self

    # -- updates -------------------------------------------------------------------------------
    def add(self, rowids: np.ndarray, vecs: np.ndarray) -> None:
        if len(rowids):
            self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.asarray(rowids, dtype=np.int64))
            self._gpu_index = None

    def remove(self, rowids: list[int]) -> None:
        if not rowids:
            return
        if self.kind == "hnsw":
            self._needs_rebuild = True  # HNSW graphs cannot drop nodes; rebuilt from the store on save
        else:
            self.index.remove_ids(np.asarray(rowids, dtype=np.int64))
        self._gpu_index = None

    def save(self) -> None:
        """Atomically replace the index file and stamp it with the store's generation.

        Rebuilds first when the index no longer suits the collection: an HNSW index after removals,
        a flat index grown past ``ivf_threshold`` (auto), or an IVF index that has grown to 8× the
        size its cells were trained on.
        """
        n = self.index.ntotal
        if n and (self._needs_rebuild or choose_kind(self.cfg, n) != self.kind
                  or (self.kind == "ivf" and n > 8 * max(self.trained_on, 1) and self.cfg.index_kind == "auto")):
            fresh = PassageIndex.rebuild(self.store, self.dim, self.cfg)  # writes itself
            self.index, self.kind, self.trained_on = fresh.index, fresh.kind, fresh.trained_on
            self._needs_rebuild, self._gpu_index = False, None
            return
        self._write()

    def _write(self) -> None:
        # the metadata goes first and comes back last, so a reader in another process never takes the new
        # file for the generation the old metadata names (``for_snapshot``)
        self.path.with_suffix(".json").unlink(missing_ok=True)
        tmp = self.path.with_suffix(".faiss.tmp")
        faiss.write_index(self.index, str(owner_only(tmp)))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        meta_tmp = self.path.with_suffix(".json.tmp")
        owner_only(meta_tmp).write_text(json.dumps({"generation": self.store.generation, "dim": self.dim, "kind": self.kind,
                                        "trained_on": self.trained_on}))
        os.replace(meta_tmp, self.path.with_suffix(".json"))

    # -- search --------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.index.ntotal

    def _search_params(self, sel) -> faiss.SearchParameters:
        match self.kind:
            case "ivf":
                return faiss.SearchParametersIVF(sel=sel, nprobe=self.cfg.nprobe)
            case "hnsw":
                return faiss.SearchParametersHNSW(sel=sel, efSearch=self.cfg.ef_search)
            case _:
                return faiss.SearchParameters(sel=sel)

    def _gpu(self):
        if self.cfg.gpu == "off" or not _gpu_available() or self.kind == "hnsw":
            return None
        if self._gpu_index is None:
            self._gpu_resources = getattr(self, "_gpu_resources", None) or faiss.StandardGpuResources()
            self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.index)
            if self.kind == "ivf":
                faiss.GpuParameterSpace().set_index_parameter(self._gpu_index, "nprobe", self.cfg.nprobe)
        return self._gpu_index

    def search(self, query: np.ndarray, k: int, rowids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``query`` [D] → (passage rowids [k'], scores [k']), best first; ``rowids`` restricts the search."""
        if self.index.ntotal == 0 or (rowids is not None and len(rowids) == 0):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        k = min(k, self.index.ntotal)
        if rowids is not None:
            rowids = np.asarray(rowids, dtype=np.int64)
            if len(rowids) <= self.cfg.exact_restrict_below and (self.kind != "flat" or self.size > 4 * len(rowids)):
                # a small restriction (one contract, one filing): exact scores over its own vectors
                return self._exact_subset(q, k, rowids)
            params = self._search_params(faiss.IDSelectorBatch(rowids))
            scores, ids = self.index.search(q, k, params=params)
        elif (gpu := self._gpu()) is not None:
            scores, ids = gpu.search(q, k)
        else:
            params = self._search_params(None) if self.kind != "flat" else None
            scores, ids = self.index.search(q, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def _exact_subset(self, q: np.ndarray, k: int, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vecs = self.store.embeddings_of(rowids)
        scores = vecs @ q[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return rowids[order], scores[order].astype(np.float32)
