"""What the graph's nodes work with on a run: the store, the retriever, the embedder, the section reader,
the answer writer and the configuration.

Handed to every run as LangGraph's run context (``graph.invoke(inputs, context=QAContext(...))``), so the
graph itself is compiled once and holds no loaded model: the same compiled graph serves every
configuration, writer and store of a ``Pipeline``. Nodes read it as ``runtime.context``.
"""

from __future__ import annotations

from dataclasses import dataclass

from encoders.reader import EvidenceReader
from graphs.evidence import ReadSentences
from graphs.llm import ChatModel
from graphs.verifier import Embed
from pipeline.config import PipelineConfig
from pipeline.retrieve import Retriever
from pipeline.store import SectionStore


@dataclass(frozen=True)
class QAContext:
    store: SectionStore
    """The section store the evidence is read from."""
    retriever: Retriever
    """Finds the sections for a question."""
    embed: Embed
    """Sentences → unit vectors (the embedder's cached ``encode``)."""
    llm: ChatModel | None
    """The answer writer; ``None`` is the extractive writer (the best evidence, verbatim)."""
    config: PipelineConfig
    """The run's configuration (each stage reads its own table)."""
    read: ReadSentences | None = None
    """The long encoder's in-context sentence vectors (``encoders.SectionReader.sentence_vectors``); needed
    when the digest is on with ``summarize.encoder_weight`` > 0."""
    reader: EvidenceReader | None = None
    """The trained reader; needed when ``summarize.scorer`` is ``trained``."""
