"""The question-answering graph's state: what flows between retrieve → summarize → synthesize → verify → finalize.

``QAInput`` is what a caller gives, ``QAState`` what the nodes share, ``QAOutput`` what a run returns.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated

from graphs.injection import merge_flagged
from pipeline.types import Answer, Citation, ClaimCheck, Evidence, ScoredSection, SectionFilter


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
    qtype: str = ""
    """The answer type the question asks for (``graphs.qtype.classify``), set by ``retrieve``."""
    scope: str = ""
    """Which documents retrieval kept or ranked first, and why (``Retrieval.scope``)."""
    notice: str = ""
    """Said before the answer: the question names a period no stored filing covers (``Retrieval.notice``)."""
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
    typed: str = ""
    """The answer type a typed component answered (``graphs/typed.py``); "" when the writer answers."""
    value: str | tuple[str, ...] | None = None
    """The typed answer's value (``Answer.value``)."""
    lead: str = ""
    """What a typed answer starts with ("Yes: ", a date)."""
    calculation: str = ""
    """A computed typed number's calculation over its cited evidence (``[1] 1,469,502 / [2] 2,213,556``)."""
    quoted: bool = False
    """True once the draft was replaced by verbatim evidence because the writer's claims failed."""
    answer: Answer | None = None
    """The final, verified answer."""
    timings: Annotated[dict[str, float], operator.or_] = field(default_factory=dict)
    """Seconds per stage; a rewritten stage adds to its entry."""
    injections: Annotated[list[Citation], merge_flagged] = field(default_factory=list)
    """Spans flagged as planted instructions in the documents the nodes read (``graphs/injection.py``), each once."""


@dataclass(kw_only=True)
class QAOutput:
    answer: Answer | None = None
    """The final, verified answer."""
    evidence: list[Evidence] = field(default_factory=list)
    """The evidence the writer was last given."""
    claims: list[ClaimCheck] = field(default_factory=list)
    """The verifier's findings on the last draft, supported or not."""
    injections: Annotated[list[Citation], merge_flagged] = field(default_factory=list)
    """Spans flagged as planted instructions, kept out of the evidence."""
