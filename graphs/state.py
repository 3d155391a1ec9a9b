"""The question-answering graph's state: what flows between retrieve → synthesize → verify → finalize."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated

from pipeline.retrieve import SectionFilter
from pipeline.types import Answer, Citation, ScoredSection


@dataclass(frozen=True, slots=True)
class Evidence:
    """A numbered span handed to the answer writer (``[n]`` in its prompt)."""

    n: int
    doc_id: str
    section_id: str
    start: int
    end: int
    text: str
    score: float = 0.0
    """Relevance to the question (higher is more relevant)."""


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    """One claim of a draft answer and what the verifier found for it (evidence, not a yes/no)."""

    claim: str
    evidence: tuple[int, ...]
    """The evidence numbers the claim cites (or, if it cited none, the one that supports it best)."""
    citations: tuple[Citation, ...]
    support: float
    """0..1: how well the cited spans support the claim (words, numbers, negation, meaning)."""
    supported: bool
    reasons: tuple[str, ...] = ()
    """Why support is low, e.g. ``"number 12.5 is not in the cited text"``."""


@dataclass(kw_only=True)
class QAInput:
    question: str
    """The user's question."""
    doc_ids: list[str] | None = None
    """Restrict retrieval to these documents (None: the whole store)."""
    top_sections: int | None = None
    """How many sections to retrieve (None: the configured default)."""
    filters: SectionFilter | None = None
    """Document kinds and EHR date range retrieval is limited to (None: no limit)."""


@dataclass(kw_only=True)
class QAState(QAInput):
    sections: list[ScoredSection] = field(default_factory=list)
    """Retrieved sections, best first."""
    evidence: list[Evidence] = field(default_factory=list)
    """Numbered evidence for the writer, drawn from the retrieved sections."""
    draft: str = ""
    """The writer's latest answer, with ``[n]`` markers."""
    claims: list[ClaimCheck] = field(default_factory=list)
    """The verifier's findings on the latest draft."""
    revisions: int = 0
    """How many times the draft has been rewritten after verification (bounded by the config)."""
    quoted: bool = False
    """True once the draft was replaced by verbatim evidence because the writer's claims failed."""
    answer: Answer | None = None
    """The final, verified answer."""
    timings: Annotated[dict[str, float], operator.or_] = field(default_factory=dict)
    """Seconds per stage; a rewritten stage adds to its entry."""
