"""The public Python API: ``Pipeline(store=...)`` with ``ingest``, ``ask``, ``retrieve`` and ``sections``.

>>> from pipeline import Pipeline
>>> p = Pipeline(store="store/")
>>> p.ingest(["contracts/"])                       # IngestReport
>>> answer = p.ask("When does the agreement terminate?")
>>> for c in answer.citations:
...     assert p.document(c.doc_id).text[c.start:c.end] == c.quote
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import numpy as np

from encoders.embedder import Embedder
from pipeline.config import PipelineConfig
from pipeline.index import PassageIndex
from pipeline.passages import make_passages
from pipeline.retrieve import Retriever, SectionFilter
from pipeline.store import SectionStore
from pipeline.types import Answer, Document, IngestReport, ScoredSection, Section


class Pipeline:
    """Question answering over one store folder (SQLite sections + FAISS passages)."""

    def __init__(self, store: str | Path, config: PipelineConfig | None = None) -> None:
        self.folder = Path(store)
        self.config = config or PipelineConfig()
        self.embedder = Embedder(self.config.index.embedder or None, batch_size=self.config.index.embed_batch,
                                 cache_size=self.config.index.embed_cache)
        self._store: SectionStore | None = None
        self._index: PassageIndex | None = None
        self._llm = None
        self._llm_key = None
        self._reader = None
        self._reader_key = None

    # -- plumbing ------------------------------------------------------------------------------
    def _open_store(self, create: bool = False) -> SectionStore:
        if self._store is None:
            self._store = SectionStore(self.folder, create=create)
        return self._store

    def _open_index(self) -> PassageIndex:
        store = self._open_store()
        if self._index is None or self._index.store is not store:
            self._index = PassageIndex.open(store, self.embedder.dim, self.config.index)
        return self._index

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = self._index = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- ingest --------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, progress: bool = False) -> IngestReport:
        """Reads, sectionizes, embeds and stores files (folders are walked); unchanged files are skipped."""
        from ingest.job import ParsedFile, run_local

        cfg = self.config.ingest
        store = self._open_store(create=True)
        with _StoreLock(self.folder):
            index = self._open_index()
            last_save = time.monotonic()

            def sink(parsed: ParsedFile) -> tuple[int, int]:
                nonlocal last_save
                items, n_sections, n_passages = [], 0, 0
                for doc, sections in parsed.documents:
                    passages = [p for s in sections for p in make_passages(
                        s, self.embedder.tokenizer, self.config.index.passage_tokens, self.config.index.passage_overlap)]
                    vecs = self.embedder.encode([p.text for p in passages])
                    items.append((doc, sections, passages, vecs))
                    n_sections += len(sections)
                    n_passages += len(passages)
                removed, added = store.put_file(parsed.path, parsed.sha, items)
                index.remove(removed)
                index.add(np.asarray(added, dtype=np.int64), np.concatenate([v for *_, v in items]) if items else
                          np.zeros((0, self.embedder.dim), dtype=np.float32))
                if time.monotonic() - last_save > 60:
                    index.save()
                    last_save = time.monotonic()
                return n_sections, n_passages

            if cfg.engine == "ray":
                from ingest.ray_job import run_ray

                counts, failed, seconds = run_ray(paths, stored_sha=store.file_sha, sink=sink, cfg=cfg, progress=progress)
            else:
                counts, failed, seconds = run_local(paths, stored_sha=store.file_sha, sink=sink, cfg=cfg, progress=progress)
            index.save()
        return IngestReport(documents=counts.documents, sections=counts.sections, passages=counts.passages,
                            pages=counts.pages, seconds=round(seconds, 3), skipped=counts.skipped, failed=tuple(failed))

    # -- read ----------------------------------------------------------------------------------
    def sections(self, doc_id: str | None = None) -> list[Section]:
        store = self._open_store()
        if doc_id is not None:
            self._check_docs([doc_id])
        return store.sections(doc_id)

    def document(self, doc_id: str) -> Document:
        return self._open_store().document(doc_id)

    def documents(self) -> list[str]:
        return self._open_store().document_ids()

    def _check_docs(self, doc_ids: Sequence[str]) -> None:
        known = set(self._open_store().document_ids())
        unknown = [d for d in doc_ids if d not in known]
        if unknown:
            raise ValueError(f"no document {', '.join(map(repr, unknown))} in store {self.folder}; "
                             f"`sectionrag sections --store {self.folder}` lists what is there")

    def _read_sentences(self, config: PipelineConfig):
        """The long encoder's whole-section reading for the digest (loaded on first use), or None when
        the configuration does not use it."""
        cfg = config.summarize
        if not cfg.enabled or cfg.encoder_weight <= 0:
            return None
        key = (cfg.window, cfg.max_tokens, cfg.impl, cfg.cache_sections, cfg.dtype)
        if self._reader_key != key:
            from encoders.long_encoder import LongEncoder
            from encoders.section_reader import SectionReader
            from pipeline.config import resolve_dtype

            device = self.embedder.device
            encoder = LongEncoder(self.embedder.model_path, window=cfg.window, max_tokens=cfg.max_tokens,
                                  impl=cfg.impl, device=device, dtype=resolve_dtype(cfg.dtype, device))
            self._reader, self._reader_key = SectionReader(encoder, cfg.cache_sections), key
        return self._reader.sentence_vectors

    def _retriever(self) -> Retriever:
        return Retriever(self._open_store(), self._open_index(), self.embedder.encode_cached, self.config.retrieve)

    def retrieve(self, question: str, top_sections: int | None = None, doc_ids: Sequence[str] | None = None,
                 filters: SectionFilter | None = None) -> list[ScoredSection]:
        """The sections selected for a question, best first (each has id, doc_id, start, end, pages,
        score, and ``via`` when it was added as a cross-reference)."""
        question = _check_question(question)
        if doc_ids:
            self._check_docs(doc_ids)
        return list(self._retriever().retrieve(question, top_sections, doc_ids, filters).sections)

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Removes documents from the store and the index; returns how many passages went with them."""
        self._check_docs(doc_ids)
        store = self._open_store()
        with _StoreLock(self.folder):
            index = self._open_index()
            removed = store.delete_documents(doc_ids)
            index.remove(removed)
            index.save()
        return len(removed)

    # -- ask -----------------------------------------------------------------------------------
    def ask(self, question: str, doc_ids: Sequence[str] | None = None, *, top_sections: int | None = None,
            llm: str | None = None, filters: SectionFilter | None = None) -> Answer:
        """Answers from the stored documents, every claim cited and verified, or abstains."""
        question = _check_question(question)
        config = self._ask_config(doc_ids, top_sections, llm)
        return self._ask(question, doc_ids, top_sections, filters, config, self._llm)

    def ask_many(self, questions: Sequence[str], doc_ids: Sequence[str] | None = None, *, batch: int = 4,
                 top_sections: int | None = None, llm: str | None = None,
                 filters: SectionFilter | None = None) -> list[Answer]:
        """``[ask(q, ...) for q in questions]``, with up to ``batch`` questions in flight and the writer's
        calls for them written together (``graphs.llm.ChatBatcher``): on a CPU the local writer costs
        about half as much per answer in bfloat16 at ``batch=4``. In float32 the answers are those
        ``ask`` gives one at a time; an answer's ``timings`` include its wait for the batch."""
        from graphs.llm import ChatBatcher

        if isinstance(questions, str):
            raise ValueError("ask_many takes a list of questions; use ask for one")
        questions = [_check_question(q) for q in questions]
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        config = self._ask_config(doc_ids, top_sections, llm)
        if self._llm is None or batch == 1 or len(questions) < 2:  # nothing to batch
            return [self._ask(q, doc_ids, top_sections, filters, config, self._llm) for q in questions]
        batcher = ChatBatcher(self._llm, min(batch, len(questions)))
        return batcher.map(lambda q: self._ask(q, doc_ids, top_sections, filters, config, batcher), questions)

    def _ask_config(self, doc_ids, top_sections, llm) -> PipelineConfig:
        """The checked arguments' configuration, with its answer writer loaded."""
        from graphs.llm import make_llm

        if top_sections is not None and top_sections < 1:
            raise ValueError("top_sections must be at least 1")
        if doc_ids:
            self._check_docs(doc_ids)
        config = self.config
        if llm is not None:
            config = config.replace(synthesize={"llm": llm})
        key = dataclasses.astuple(config.synthesize)
        if self._llm_key != key:
            self._llm, self._llm_key = make_llm(config.synthesize), key
        return config

    def _ask(self, question: str, doc_ids, top_sections, filters, config: PipelineConfig, writer) -> Answer:
        from graphs.graph import build_graph
        from graphs.nodes import QANodes

        nodes = QANodes(store=self._open_store(), retriever=self._retriever(), embed=self.embedder.encode_cached,
                        llm=writer, config=config, read=self._read_sentences(config))
        t0 = time.perf_counter()
        state = build_graph(nodes).invoke({"question": question, "doc_ids": list(doc_ids) if doc_ids else None,
                                           "top_sections": top_sections, "filters": filters})
        answer: Answer = state["answer"]
        timings = dict(answer.timings)
        timings["total"] = time.perf_counter() - t0
        return dataclasses.replace(answer, timings=tuple((k, round(v, 4)) for k, v in timings.items()))


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty")
    return question.strip()


class _StoreLock:
    """One ingestion job per store at a time (the FAISS file has a single writer)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".ingest.lock"

    def __enter__(self) -> None:
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.close()
            raise RuntimeError(f"another ingestion job is writing to store {self.path.parent}; wait for it to finish") from None
        self.fh.write(str(os.getpid()))
        self.fh.flush()

    def __exit__(self, *exc) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
