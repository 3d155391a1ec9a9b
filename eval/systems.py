"""The systems the harness compares, side by side on one store, one embedder and one answer writer.

* ``sectionrag`` — the pipeline as configured (``PipelineConfig()`` defaults);
* ``chunk_baseline`` — top-k 512-token chunks straight to the same writer (``eval/baseline.py``);
* one ablation row per stage that can be switched off, each the pipeline with that one stage off:
  ``sectionrag-no-verify`` (``verify.enabled = False``), ``sectionrag-no-sections`` (no section
  selection: every section a retrieved passage belongs to is kept, so the writer's evidence comes from
  the best passages store-wide), and — when the configuration has the switch — ``sectionrag-no-xref``
  (``retrieve.expand_references = False``), ``sectionrag-no-digest`` (``summarize.enabled = False``: the
  evidence is the sentences of the best passages) and ``sectionrag-no-encoder`` (the digest without the
  long encoder: sentences scored on their own embeddings only, ``summarize.encoder_weight = 0``);
* variants, run only when named in ``--systems``: ``sectionrag-passages12`` (the digest off and 12
  passage sentences, as many as the digest hands the writer: whether the digest beats a larger
  passage pool at the same size).

Each run returns the answer together with what retrieval selected and what the writer was given,
because the hallucination judge grades claims against the text the system actually had.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.types import Answer

BASELINE_K = 5
"""Chunks handed to the writer by the baseline (5 × 512 tokens ≈ the pipeline's evidence budget and more)."""

Changes = dict[str, dict[str, object]]
"""stage → {field: value}, relative to the default configuration."""

ABLATIONS: dict[str, Changes] = {
    "sectionrag-no-verify": {"verify": {"enabled": False}},
    "sectionrag-no-sections": {"retrieve": {"top_sections": 1_000_000, "token_budget": 1_000_000_000}},
    "sectionrag-no-xref": {"retrieve": {"expand_references": False}},
    "sectionrag-no-digest": {"summarize": {"enabled": False}},
    "sectionrag-no-encoder": {"summarize": {"encoder_weight": 0.0}},
}
"""One row per stage that can be switched off; in every default run."""

VARIANTS: dict[str, Changes] = {
    "sectionrag-passages12": {"summarize": {"enabled": False}, "retrieve": {"evidence_sentences": 12}},
}
"""Other configurations worth a row; run when named."""


def _has_fields(cfg: PipelineConfig, changes: Changes) -> bool:
    return all(hasattr(cfg, stage) and set(fields) <= {f.name for f in dataclasses.fields(getattr(cfg, stage))}
               for stage, fields in changes.items())


def available_systems(base: PipelineConfig | None = None, *, variants: bool = False) -> list[str]:
    """The systems of a default run (ablations only for switches the configuration has); with
    ``variants``, every system this checkout can run."""
    base = base or PipelineConfig()
    extra = {**ABLATIONS, **(VARIANTS if variants else {})}
    return ["sectionrag", "chunk_baseline", *(n for n, ch in extra.items() if _has_fields(base, ch))]


def system_config(name: str, base: PipelineConfig) -> PipelineConfig:
    if name == "sectionrag":
        return base
    return base.replace(**{**ABLATIONS, **VARIANTS}[name])


@dataclass(frozen=True)
class Span:
    doc_id: str
    start: int
    end: int
    text: str = ""


@dataclass(frozen=True)
class Run:
    """One question answered by one system."""

    answer: Answer
    retrieved: tuple[Span, ...]
    """What retrieval selected (sections for sectionrag, chunks for the baseline), best first."""
    context: tuple[Span, ...]
    """What the answer writer was given, with its text (evidence sentences, or chunks)."""
    seconds: float


class PipelineSystem:
    """The sectionrag flow with one configuration, run through its LangGraph graph so the evidence shows."""

    def __init__(self, name: str, store: Path, config: PipelineConfig, embedder, writer) -> None:
        from pipeline import Pipeline

        self.name = name
        self.pipeline = Pipeline(store, config)
        # one MiniLM for every system, each with its own embedding cache: no system's latency benefits
        # from sentences another system embedded for the same question
        self.pipeline.embedder = embedder.shared_copy()
        self.writer = writer
        self.config = config

    def run(self, question: str, doc_ids: Sequence[str] | None) -> Run:
        from graphs.graph import build_graph
        from graphs.nodes import QANodes

        p = self.pipeline
        t0 = time.perf_counter()
        # the same objects Pipeline.ask wires together, but the final state is kept (for the evidence)
        nodes = QANodes(store=p._open_store(), retriever=p._retriever(), embed=p.embedder.encode_cached, llm=self.writer,
                        config=self.config, read=p._read_sentences(self.config))
        state = build_graph(nodes).invoke({"question": question, "doc_ids": list(doc_ids) if doc_ids else None,
                                           "top_sections": None})
        seconds = time.perf_counter() - t0
        answer: Answer = state["answer"]
        retrieved = tuple(Span(s.doc_id, s.start, s.end) for s in answer.sections)
        context = tuple(Span(ev.doc_id, ev.start, ev.end, ev.text) for ev in state.get("evidence", []))
        return Run(answer=answer, retrieved=retrieved, context=context, seconds=seconds)

    def close(self) -> None:
        self.pipeline.close()


class BaselineSystem:
    name = "chunk_baseline"

    def __init__(self, store: Path, embedder, llm: str, writer, k: int = BASELINE_K, progress: bool = False) -> None:
        from encoders.embedder import Embedder
        from eval.baseline import ChunkBaseline

        # its own MiniLM instance: the baseline raises max_seq_length to 512, the pipeline's stays as configured
        self.baseline = ChunkBaseline.open(store, embedder=Embedder(embedder.model_path), progress=progress)
        self.llm, self.writer, self.k = llm, writer, k

    def run(self, question: str, doc_ids: Sequence[str] | None) -> Run:
        t0 = time.perf_counter()
        answer, chunks = self.baseline.answer_with_chunks(question, self.k, self.llm, doc_ids, writer=self.writer)
        spans = tuple(Span(c.doc_id, c.start, c.end, c.text) for c in chunks)
        return Run(answer=answer, retrieved=spans, context=spans, seconds=time.perf_counter() - t0)

    def close(self) -> None:
        self.baseline.store.close()


def make_systems(names: Sequence[str], store: Path, llm: str, *, base: PipelineConfig | None = None,
                 progress: bool = False, batch: int = 1) -> dict[str, PipelineSystem | BaselineSystem]:
    """The named systems over ``store``, sharing one embedder and one loaded answer writer; with
    ``batch`` > 1 the writer is a ``ChatBatcher`` for that many workers (the caller runs them)."""
    from encoders.embedder import Embedder
    from graphs.llm import ChatBatcher, make_llm

    base = (base or PipelineConfig()).replace(synthesize={"llm": llm})
    known = available_systems(base, variants=True)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; this checkout has {', '.join(known)}")
    embedder = Embedder(base.index.embedder or None, batch_size=base.index.embed_batch,
                        cache_size=base.index.embed_cache)
    writer = make_llm(base.synthesize)
    if batch > 1 and writer is not None:
        writer = ChatBatcher(writer, batch)
    out: dict[str, PipelineSystem | BaselineSystem] = {}
    for name in names:
        if name == "chunk_baseline":
            out[name] = BaselineSystem(store, embedder, llm, writer, progress=progress)
        else:
            out[name] = PipelineSystem(name, store, system_config(name, base), embedder, writer)
    return out
