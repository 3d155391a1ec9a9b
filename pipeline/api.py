"""The public Python API: ``Pipeline(store=...)`` with ``ingest``, ``ask``, ``stream``, ``retrieve`` and ``sections``.

>>> from pipeline import Pipeline
>>> p = Pipeline(store="store/")
>>> p.ingest(["contracts/"])                       # IngestReport
>>> answer = p.ask("When does the agreement terminate?", trace=True)
>>> for c in answer.citations:
...     assert p.document(c.doc_id).text[c.start:c.end] == c.quote
>>> answer.trace.route                             # ('retrieve', 'summarize', 'synthesize', 'verify', 'finalize')
>>> for step in p.stream("Who are the parties?"):  # each node's update as it finishes
...     print(step.node, sorted(step.update))
>>> p.ask("What is the governing law?", thread_id="q-17")   # resumable: a killed run continues from its last node
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

from encoders.embedder import Embedder
from pipeline.config import PipelineConfig
from pipeline.host import release_free_memory
from pipeline.index import PassageIndex
from pipeline.indexing import Indexer
from pipeline.locks import StoreLock, owner_only
from pipeline.retrieve import Retriever
from pipeline.store import DB_NAME, SectionStore
from pipeline.types import (
    UNIT_SCORERS,
    Answer,
    Document,
    Draft,
    Evidence,
    GraphStep,
    IngestReport,
    Passage,
    ScoredSection,
    ScoredUnit,
    Section,
    SectionFilter,
    Trace,
    Verdict,
)

T = TypeVar("T")
R = TypeVar("R")

CHECKPOINTS = "checkpoints.sqlite"
"""Where a store folder keeps the graph's checkpoints of questions asked with a ``thread_id``."""


class _Writers:
    """The answer writers a ``Pipeline`` and the pipelines made from it with ``with_config`` share: one loaded
    model per writer configuration, and, during ``map_batched``, the batcher its calls go through."""

    def __init__(self) -> None:
        self.loaded: dict[tuple, Any] = {}
        self.batcher = None
        self.lock = threading.Lock()

    def get(self, config: PipelineConfig):
        from graphs.llm import make_llm

        key = dataclasses.astuple(config.synthesize)
        with self.lock:
            if key not in self.loaded:
                self.loaded[key] = make_llm(config.synthesize)
            writer = self.loaded[key]
        if self.batcher is not None and writer is not None and self.batcher.llm is writer:
            return self.batcher
        return writer


COLLECTIONS = "collections"
"""The folder of a store that holds its named collections, each a store of its own."""
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def collection_folder(store: str | Path, collection: str | None) -> Path:
    """The folder of ``collection`` in ``store`` (``None``: the store's own, default collection)."""
    if collection is None:
        return Path(store)
    if not _COLLECTION_NAME.fullmatch(collection) or ".." in collection:
        raise ValueError(f"collection name {collection!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit")
    return Path(store) / COLLECTIONS / collection


class Pipeline:
    """Question answering over one store folder (SQLite sections + FAISS passages), or over one named collection
    of it (``collection``): a collection is a store of its own under ``STORE/collections/NAME``, so a question in
    one never sees another's sections, and deleting or re-ingesting one leaves the others as they are."""

    def __init__(self, store: str | Path, config: PipelineConfig | None = None, *, collection: str | None = None) -> None:
        self.root = Path(store)
        self.collection = collection
        self.folder = collection_folder(store, collection)
        self.config = config or PipelineConfig()
        self.embedder = Embedder(self.config.index.embedder or None, batch_size=self.config.index.embed_batch,
                                 cache_size=self.config.index.embed_cache)
        """The sentence embedder (all-MiniLM-L6-v2 unless ``[index] embedder`` names another)."""
        self._writers = _Writers()
        self._store: SectionStore | None = None
        self._index: PassageIndex | None = None
        self._read_index: tuple[int, PassageIndex] | None = None
        """The index questions search, with its store generation: that of the newest version a question read."""
        self._open_lock = threading.Lock()
        self._readers = None
        self._graphs: dict[bool, Any] = {}
        self._checkpoints: sqlite3.Connection | None = None
        self.batch_sizes: list[int] = []
        """The size of every batched writer call the last ``map_batched`` made, in order."""

    def with_config(self, config: PipelineConfig) -> Pipeline:
        """A pipeline over the same store with another configuration, sharing this one's loaded models: the
        embedder's weights (with a sentence cache of its own) and the answer writers. Side-by-side comparisons
        use one per configuration, so no configuration answers from vectors another computed."""
        if config.index != self.config.index:
            raise ValueError("with_config keeps the store's index settings; open a Pipeline for other [index] values")
        other = Pipeline(self.root, config, collection=self.collection)
        other.embedder = self.embedder.shared_copy()
        other._writers = self._writers
        return other

    # -- plumbing ------------------------------------------------------------------------------
    def _open_store(self, create: bool = False) -> SectionStore:
        with self._open_lock:
            if self._store is None:
                self._store = SectionStore(self.folder, create=create)
            return self._store

    def _open_index(self) -> PassageIndex:
        store = self._open_store()
        if self._index is None or self._index.store is not store:
            self._index = PassageIndex.open(store, self.embedder.dim, self.config.index)
        return self._index

    @contextmanager
    def _snapshot(self) -> Iterator[tuple[SectionStore, PassageIndex]]:
        """One committed version of the store and the vector index of exactly that version, for one question:
        another thread or process may ingest and delete meanwhile without the question seeing half of it."""
        with self._open_store().snapshot() as view:
            generation = view.generation
            with self._open_lock:
                known = self._read_index
            if known is not None and known[0] == generation:
                index = known[1]
            else:
                index = PassageIndex.for_snapshot(view, self.embedder.dim, self.config.index)
                with self._open_lock:
                    if self._read_index is None or self._read_index[0] < generation:
                        self._read_index = (generation, index)
            yield view, index.bound(view)

    def _lock(self) -> StoreLock:
        return StoreLock(self.folder / ".ingest.lock", wait=False,
                         holder=f"another ingestion job is writing to store {self.folder}")

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._checkpoints is not None:
            self._checkpoints.close()
        self._store = self._index = self._read_index = self._checkpoints = None
        self._graphs.pop(True, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def is_store(folder: str | Path) -> bool:
        """Whether ``folder`` holds a sectionrag store."""
        return (Path(folder) / DB_NAME).is_file()

    @staticmethod
    def collections(store: str | Path) -> list[str]:
        """The named collections ``store`` holds."""
        folder = Path(store) / COLLECTIONS
        return sorted(p.name for p in folder.iterdir() if Pipeline.is_store(p)) if folder.is_dir() else []

    # -- ingest --------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], *, progress: bool = False) -> IngestReport:
        """Reads, sectionizes, embeds and stores files (folders are walked); unchanged files are skipped."""
        from ingest.job import run_local

        cfg = self.config.ingest
        store = self._open_store(create=True)
        with self._lock(), Indexer(store, self._open_index(), self.embedder, self.config.index) as indexer:
            if cfg.engine == "ray":
                from ingest.ray_job import run_ray

                counts, failed, seconds = run_ray(paths, stored_sha=store.file_sha, sink=indexer, cfg=cfg,
                                                  progress=progress)
            else:
                counts, failed, seconds = run_local(paths, stored_sha=store.file_sha, sink=indexer, cfg=cfg,
                                                    progress=progress)
        return IngestReport(documents=counts.documents, sections=counts.sections, passages=counts.passages,
                            pages=counts.pages, seconds=round(seconds, 3), skipped=counts.skipped, failed=tuple(failed),
                            warnings=tuple(counts.warnings))

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Removes documents from the store and the index; returns how many passages went with them."""
        self._check_docs(doc_ids)
        with self._lock():
            return Indexer(self._open_store(), self._open_index(), self.embedder, self.config.index).delete(doc_ids)

    # -- read ----------------------------------------------------------------------------------
    def sections(self, doc_id: str | None = None) -> list[Section]:
        store = self._open_store()
        if doc_id is not None:
            self._check_docs([doc_id])
        return store.sections(doc_id)

    def passages(self, limit: int | None = None) -> list[Passage]:
        """Stored passages (the embedded windows of sections) in the order they were stored, at most ``limit``."""
        return self._open_store().passages(limit)

    def document(self, doc_id: str) -> Document:
        """A stored document: its text, pages, kind and metadata (each filing field with ``<field>_from``, where
        and how it was read, and ``<field>_confidence``)."""
        return self._open_store().document(doc_id)

    def read(self, path: str | Path) -> list[Document]:
        """The documents ``path`` would be stored as (text, kind, metadata, warnings), read without storing them;
        a file that cannot be ingested raises ``ValueError`` with its one-line reason."""
        from ingest.errors import IngestError
        from ingest.job import read_documents

        try:
            return read_documents(path, self.config.ingest)
        except IngestError as exc:
            raise ValueError(str(exc)) from None

    def documents(self, under: str | Path | None = None) -> list[str]:
        """Stored document ids; with ``under``, those read from that file or from files below that folder."""
        if under is None:
            return self._open_store().document_ids()
        root = Path(under).resolve()
        return [d for d, source in self._open_store().document_sources()
                if Path(source).resolve() == root or root in Path(source).resolve().parents]

    @property
    def generation(self) -> int:
        """A number that changes whenever documents are added, replaced or removed (for caches of derived data)."""
        return self._open_store().generation

    def _check_docs(self, doc_ids: Sequence[str]) -> None:
        known = set(self._open_store().document_ids())
        unknown = [d for d in doc_ids if d not in known]
        if unknown:
            raise ValueError(f"no document {', '.join(map(repr, unknown))} in store {self.folder}; "
                             f"`sectionrag sections --store {self.folder}` lists what is there")

    def _retriever(self, store: SectionStore, index: PassageIndex) -> Retriever:
        return Retriever(store, index, self.embedder.encode_cached, self.config.retrieve)

    def retrieve(self, question: str, top_sections: int | None = None, doc_ids: Sequence[str] | None = None,
                 filters: SectionFilter | None = None) -> list[ScoredSection]:
        """The sections selected for a question, best first (each has id, doc_id, start, end, pages,
        score, and ``via`` when it was added as a cross-reference)."""
        question = _check_question(question)
        if doc_ids:
            self._check_docs(doc_ids)
        with self._snapshot() as (store, index):
            return list(self._retriever(store, index).retrieve(question, top_sections, doc_ids, filters).sections)

    # -- ask -----------------------------------------------------------------------------------
    def ask(self, question: str, doc_ids: Sequence[str] | None = None, *, top_sections: int | None = None,
            llm: str | None = None, filters: SectionFilter | None = None, trace: bool = False,
            thread_id: str | None = None, on_step: Callable[[GraphStep], None] | None = None) -> Answer:
        """Answers from the stored documents, every claim cited and verified, or abstains.

        ``trace=True`` sets ``Answer.trace``: the evidence the writer was given, each claim with the verifier's
        verdict, the nodes the question went through and their timings. With a ``thread_id`` every node's
        result is checkpointed in the store folder, and asking the same question on the same thread after an
        interruption (a killed process, an error in the writer) continues from the last finished node.
        ``on_step`` is called with each node's ``GraphStep`` as it finishes (what ``stream`` yields)."""
        question = _check_question(question)
        config = self._ask_config(doc_ids, top_sections, llm)
        return self._answer(question, doc_ids, top_sections, filters, config, thread_id, trace, on_step)

    def stream(self, question: str, doc_ids: Sequence[str] | None = None, *, top_sections: int | None = None,
               llm: str | None = None, filters: SectionFilter | None = None,
               thread_id: str | None = None) -> Iterator[GraphStep]:
        """Each node's update as it finishes (``GraphStep``); the last is ``finalize`` with the ``Answer`` in
        ``step.update["answer"]``. Arguments as for ``ask``."""
        question = _check_question(question)
        config = self._ask_config(doc_ids, top_sections, llm)
        for mode, node, chunk, seconds in self._run(question, doc_ids, top_sections, filters, config, thread_id):
            if mode == "updates":
                yield GraphStep(node=node, update=chunk, seconds=seconds)

    def ask_many(self, questions: Sequence[str], doc_ids: Sequence[str] | None = None, *, batch: int = 4,
                 top_sections: int | None = None, llm: str | None = None,
                 filters: SectionFilter | None = None) -> list[Answer]:
        """``[ask(q, ...) for q in questions]``, with up to ``batch`` questions in flight and the writer's
        calls for them written together: on a CPU the local writer costs about half as much per answer in
        bfloat16 at ``batch=4``. In float32 the answers are those ``ask`` gives one at a time; an answer's
        ``timings`` include its wait for the batch."""
        if isinstance(questions, str):
            raise ValueError("ask_many takes a list of questions; use ask for one")
        questions = [_check_question(q) for q in questions]
        config = self._ask_config(doc_ids, top_sections, llm)
        return self.map_batched(lambda q: self._answer(q, doc_ids, top_sections, filters, config, None, False),
                                questions, batch, config)

    def map_batched(self, fn: Callable[[T], R], items: Iterable[T], batch: int,
                    config: PipelineConfig | None = None) -> list[R]:
        """``[fn(x) for x in items]`` on ``batch`` worker threads that take turns, the answer writer's calls
        they make (through this pipeline and every pipeline made from it with ``with_config``) written in
        batches of up to ``batch`` conversations. Batches follow from the work alone, never from thread
        timing, so a run gives the same answers every time for the same ``batch``. With the extractive
        writer, ``batch`` 1, or fewer than two items, it is a plain loop."""
        from graphs.llm import ChatBatcher

        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        items = list(items)
        if self._writers.batcher is not None:
            raise RuntimeError("map_batched is already running on these pipelines")
        writer = self._writers.get(config or self.config)
        if writer is None or batch == 1 or len(items) < 2:
            return [fn(x) for x in items]
        self._writers.batcher = ChatBatcher(writer, min(batch, len(items)))
        try:
            return self._writers.batcher.map(fn, items)
        finally:
            self.batch_sizes = list(self._writers.batcher.batches)
            self._writers.batcher = None

    def draft(self, question: str, evidence: Sequence[Evidence], *, max_new_tokens: int | None = None,
              llm: str | None = None) -> Draft:
        """The answer writer's reply to ``question`` from the numbered ``evidence`` (the prompt ``ask`` uses),
        unverified: for comparing the writer on evidence chosen elsewhere. The extractive writer writes no
        draft (a ``ValueError``)."""
        from graphs.prompts import NOT_FOUND, answer_messages
        from pipeline.text import split_claims

        question = _check_question(question)
        config = self._ask_config(None, None, llm)
        writer = self._writers.get(config)
        if writer is None:
            raise ValueError("the extractive writer writes no draft; use the local or openai writer")
        if not evidence:
            return Draft(text=NOT_FOUND, claims=())
        text = writer.chat(answer_messages(question, list(evidence)), max_new_tokens or config.synthesize.max_new_tokens)
        claims = () if NOT_FOUND in text.upper() else tuple(split_claims(text))
        return Draft(text=text, claims=claims)

    def check(self, hypothesis: str, doc_ids: Sequence[str] | None = None) -> Verdict:
        """Whether the documents (``doc_ids``, else the whole store) entail, contradict or do not mention
        ``hypothesis``, read by the trained reader section by section (``graphs/check.py``), with the spans
        it decided on."""
        from graphs.check import check_hypothesis

        hypothesis = _check_question(hypothesis)
        if doc_ids:
            self._check_docs(doc_ids)
        cfg = self.config.summarize
        reader = self._section_readers().trained(cfg.reader_weights, cfg.impl)
        with self._snapshot() as (store, index):
            return check_hypothesis(store, self._retriever(store, index), reader, hypothesis, doc_ids, self.config)

    def score_units(self, question: str, sections: Sequence[ScoredSection] | None = None, *,
                    doc_ids: Sequence[str] | None = None, scorer: str = "trained") -> list[ScoredUnit]:
        """Every sentence and table row of ``sections`` (default: what ``retrieve`` selects for the question,
        the best ``summarize.max_sections``) scored as evidence for ``question`` by ``scorer`` (one of
        ``pipeline.types.UNIT_SCORERS``): how the evidence scorers compare on the same sections."""
        from graphs.evidence import score_units

        question = _check_question(question)
        if scorer not in UNIT_SCORERS:
            raise ValueError(f"unknown unit scorer {scorer!r}; use one of {', '.join(UNIT_SCORERS)}")
        cfg = self.config.summarize
        if doc_ids:
            self._check_docs(doc_ids)
        readers = self._section_readers()
        read = readers.for_config(dataclasses.replace(cfg, enabled=True, encoder_weight=1.0)) if scorer == "encoder" else None
        reader = readers.trained(cfg.reader_weights, cfg.impl) if scorer == "trained" else None
        with self._snapshot() as (store, index):
            if sections is None:
                sections = self._retriever(store, index).retrieve(question, None, doc_ids, None).sections[: cfg.max_sections]
            return score_units(question, [s.section for s in sections], store, scorer,
                               embed=self.embedder.encode_cached, read=read, reader=reader)

    def _section_readers(self):
        from graphs.reader import SectionReaders

        if self._readers is None:
            self._readers = SectionReaders(self.embedder.model_path, self.embedder.device)
        return self._readers

    def reading(self) -> dict[str, float]:
        """What the summarize stage's long encoder has read in this pipeline: section ``tokens`` (each section
        once, then cached) and ``seconds``."""
        tokens, seconds = self._readers.reading() if self._readers is not None else (0, 0.0)
        return {"tokens": tokens, "seconds": seconds}

    def encoder_throughput(self, sections: Sequence[tuple[str, str]], max_tokens: int = 16384) -> dict:
        """Tokens per second of the long sparse encoder reading each ``(section text, question)`` whole, the
        question as global tokens (this process's CPU threads; sections past ``max_tokens`` are cut there)."""
        from encoders.bench import section_throughput

        return section_throughput(sections, max_tokens=max_tokens, model_path=self.embedder.model_path)

    def _ask_config(self, doc_ids, top_sections, llm) -> PipelineConfig:
        """The checked arguments' configuration."""
        if top_sections is not None and top_sections < 1:
            raise ValueError("top_sections must be at least 1")
        if doc_ids:
            self._check_docs(doc_ids)
        return self.config if llm is None else self.config.replace(synthesize={"llm": llm})

    def _graph(self, resumable: bool):
        """The compiled answer graph (once per pipeline); the resumable one checkpoints in the store folder."""
        if resumable not in self._graphs:
            from graphs.graph import build_graph

            checkpointer = None
            if resumable:
                from graphs.checkpoint import sqlite_checkpointer

                self._open_store()  # a missing store is one clear error, not an empty checkpoint file
                checkpointer, self._checkpoints = sqlite_checkpointer(owner_only(self.folder / CHECKPOINTS))
            self._graphs[resumable] = build_graph(checkpointer)
        return self._graphs[resumable]

    def _context(self, config: PipelineConfig, store: SectionStore, index: PassageIndex):
        from graphs.context import QAContext

        readers = self._section_readers()
        cfg = config.summarize
        wants = (cfg.enabled and cfg.scorer == "trained") or (
            {"span", "yesno"} & set(config.answers.typed) and trained_reader_available(config))
        trained = readers.trained(cfg.reader_weights, cfg.impl) if wants else None
        return QAContext(store=store, retriever=self._retriever(store, index), embed=self.embedder.encode_cached,
                         llm=self._writers.get(config), config=config,
                         read=readers.for_config(cfg) if cfg.scorer == "blend" else None, reader=trained)

    def _run(self, question: str, doc_ids, top_sections, filters, config: PipelineConfig,
             thread_id: str | None) -> Iterator[tuple[str, str, dict, float]]:
        """Runs (or resumes) the graph: ``("updates", node, update, seconds)`` as each node finishes, and
        ``("values", "", output, seconds)`` with the graph's output after each step."""
        inputs: dict | None = {"question": question, "doc_ids": list(doc_ids) if doc_ids else None,
                               "top_sections": top_sections, "filters": filters}
        graph = self._graph(thread_id is not None)
        run_config = None
        if thread_id is not None:
            run_config = {"configurable": {"thread_id": str(thread_id)}}
            saved = graph.get_state(run_config)
            if saved.next and all(saved.values.get(k) == v for k, v in inputs.items()):
                inputs = None  # the same question was interrupted on this thread: continue it
        with self._snapshot() as (store, index):
            context = self._context(config, store, index)
            t0 = time.perf_counter()
            for mode, chunk in graph.stream(inputs, run_config, context=context, stream_mode=["updates", "values"]):
                seconds = time.perf_counter() - t0
                if mode == "values":
                    yield mode, "", chunk, seconds
                else:
                    for node, update in chunk.items():
                        if not node.startswith("__"):
                            yield mode, node, update or {}, seconds

    def _answer(self, question: str, doc_ids, top_sections, filters, config: PipelineConfig,
                thread_id: str | None, trace: bool, on_step: Callable[[GraphStep], None] | None = None) -> Answer:
        route: list[str] = []
        node_seconds: dict[str, float] = {}
        out: dict = {}
        last = 0.0
        for mode, node, chunk, seconds in self._run(question, doc_ids, top_sections, filters, config, thread_id):
            if mode == "values":
                out = chunk
            else:
                route.append(node)
                node_seconds[node] = node_seconds.get(node, 0.0) + seconds - last
                last = seconds
                if on_step is not None:
                    on_step(GraphStep(node=node, update=chunk, seconds=seconds))
        answer: Answer = out["answer"]
        timings = dict(answer.timings)
        timings["total"] = last
        answer = dataclasses.replace(answer, timings=tuple((k, round(v, 4)) for k, v in timings.items()))
        if trace:
            answer = dataclasses.replace(answer, trace=Trace(
                evidence=tuple(out.get("evidence") or ()), claims=tuple(out.get("claims") or ()), route=tuple(route),
                timings=tuple((k, round(v, 4)) for k, v in node_seconds.items()), scope=out.get("scope") or "",
                injections=answer.injections))
        release_free_memory()  # what this question freed goes back to the system, not into a growing heap
        return answer


def trained_reader_available(config: PipelineConfig | None = None) -> bool:
    """Whether the trained reader's weights are there (``[summarize] reader_weights``, else the shipped ones)."""
    from encoders.reader import EvidenceReader

    return EvidenceReader.available((config or PipelineConfig()).summarize.reader_weights or None)


def trained_reader_documents(config: PipelineConfig | None = None) -> frozenset[str]:
    """Ids of the documents the trained reader's weights were trained on (empty without weights): measure the
    reader on other documents."""
    from encoders.reader import EvidenceReader

    return EvidenceReader.trained_on((config or PipelineConfig()).summarize.reader_weights or None)


def _check_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty")
    return question.strip()
