"""The shared vocabulary of sectionrag: frozen, typed records that cross every package boundary.

Ids are content hashes, so ingesting the same bytes twice produces the same ids and is a no-op.
All offsets are character offsets into ``Document.text`` (the text as stored), half-open ``[start, end)``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

DocKind = Literal["filing", "contract", "ehr", "note", "generic"]
DOC_KINDS: tuple[DocKind, ...] = ("filing", "contract", "ehr", "note", "generic")

ATTENTION_BACKENDS = ("reference", "blocked", "cpp", "flex", "flex_eager", "triton", "flash")
"""The sparse-attention backends of ``kernels.sparse_attention`` (``kernels.IMPLS``); configuration accepts
these and ``auto``. Named here, not in ``kernels``, so that reading a configuration does not import torch."""

ABSTAIN_TEXT = "The documents do not contain a supported answer to this question."
"""``Answer.text`` when the pipeline abstains."""


def content_hash(*parts: str | bytes) -> str:
    """A short, stable hex digest of ``parts`` (sha256, 16 hex chars), used for every id."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8") if isinstance(part, str) else part)
        h.update(b"\x1f")  # separator: ("ab", "c") and ("a", "bc") must not collide
    return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Document:
    """One source document as stored: its full text and where each page starts.

    ``page_starts[i]`` is the offset in ``text`` where page ``i + 1`` begins (pages are 1-based for
    users); a document without pages has ``page_starts == (0,)``.
    """

    id: str
    source: str
    text: str
    kind: DocKind = "generic"
    page_starts: tuple[int, ...] = (0,)
    title: str = ""
    sha: str = ""
    metadata: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    """What reading the file changed or doubted (stray control characters replaced, …): reported in the ingest
    summary's warnings, not stored."""

    @property
    def pages(self) -> int:
        return len(self.page_starts)

    def pages_of(self, start: int, end: int) -> tuple[int, ...]:
        """The 1-based page numbers that the span ``[start, end)`` touches."""
        first = last = 1
        for i, ps in enumerate(self.page_starts):
            if ps <= start:
                first = i + 1
            if ps < max(end, start + 1):
                last = i + 1
        return tuple(range(first, last + 1))


@dataclass(frozen=True, slots=True)
class Section:
    """A long, coherent part of a document (an Item, an Article, an Assessment and Plan).

    ``text == document.text[start:end]``; ``path`` is the heading path from the document root, e.g.
    ``("PART II", "Item 7", "Liquidity and Capital Resources")``.
    """

    id: str
    doc_id: str
    path: tuple[str, ...]
    start: int
    end: int
    text: str
    pages: tuple[int, ...] = (1,)
    tokens: int = 0
    ordinal: int = 0

    @property
    def title(self) -> str:
        return self.path[-1] if self.path else ""

    @staticmethod
    def make_id(doc_id: str, start: int, end: int, text: str) -> str:
        return content_hash(doc_id, str(start), str(end), text)


@dataclass(frozen=True, slots=True)
class Passage:
    """A short window (≤ 256 tokens) of a section, the unit that is embedded and searched."""

    id: str
    doc_id: str
    section_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class ScoredSection:
    """A section selected by retrieval, with the score it was ranked by and why it is there."""

    section: Section
    score: float
    via: str = ""
    """Empty when the section's own passages matched the question; otherwise why it was added, e.g.
    ``'referenced as "Section 9.2" by section 3f2a…'`` for a cross-referenced section."""

    # Flat accessors so callers can treat it like the section it wraps.
    @property
    def id(self) -> str:
        return self.section.id

    @property
    def doc_id(self) -> str:
        return self.section.doc_id

    @property
    def start(self) -> int:
        return self.section.start

    @property
    def end(self) -> int:
        return self.section.end

    @property
    def pages(self) -> tuple[int, ...]:
        return self.section.pages

    @property
    def path(self) -> tuple[str, ...]:
        return self.section.path

    @property
    def tokens(self) -> int:
        return self.section.tokens


@dataclass(frozen=True, slots=True)
class ScoredPassage:
    """A passage found for a question, with its fused (dense + lexical) retrieval score."""

    passage: Passage
    score: float


_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


@dataclass(frozen=True, slots=True)
class SectionFilter:
    """Metadata filters on what retrieval may return.

    ``kinds``: document kinds (``filing``, ``contract``, ``ehr``, ``note``, ``generic``).
    ``date_from`` / ``date_to`` (ISO ``YYYY-MM-DD``, inclusive): a section whose heading path carries
    dates (EHR encounters) is kept when one of them is in range; sections without dates are kept.

    >>> p.ask("Which medications were prescribed?", filters=SectionFilter(kinds=("ehr",), date_from="2015-01-01"))
    """

    kinds: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in DOC_KINDS]
        if unknown:
            raise ValueError(f"unknown document kind(s) {', '.join(map(repr, unknown))}; use {', '.join(DOC_KINDS)}")
        for d in (self.date_from, self.date_to):
            if d and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", d):
                raise ValueError(f"dates must be YYYY-MM-DD, not {d!r}")

    def keeps(self, section: Section) -> bool:
        if not (self.date_from or self.date_to):
            return True
        dates = _ISO_DATE.findall(" ".join(section.path))
        return not dates or any((not self.date_from or d >= self.date_from) and (not self.date_to or d <= self.date_to)
                                for d in dates)


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What retrieval selected for a question: the sections in rank order and their passages best first."""

    sections: tuple[ScoredSection, ...]
    passages: tuple[ScoredPassage, ...]
    scope: str = ""
    """Why retrieval was restricted to some documents or ranked some first ("names adobe systems; fiscal year 2015;
    ranked below every section of that period: ADOBE_2016_10K"), or ""."""
    notice: str = ""
    """Set when the question names a period no stored filing covers ("No stored filing of … is for fiscal 2019")."""


@dataclass(frozen=True, slots=True)
class Citation:
    """A span of a stored document that supports a claim: ``quote == document.text[start:end]``."""

    doc_id: str
    section_id: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """A numbered span of a stored document handed to the answer writer (``[n]`` in its prompt):
    ``text == document.text[start:end]``."""

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


@dataclass(frozen=True, slots=True)
class Trace:
    """How an answer came about (``Pipeline.ask(..., trace=True)``): what the writer was given, what the
    verifier found, and the way through the graph."""

    evidence: tuple[Evidence, ...]
    """The numbered evidence the writer was last given, best first."""
    claims: tuple[ClaimCheck, ...]
    """Every claim of the last draft the verifier checked, kept or not (empty when the writer found nothing)."""
    route: tuple[str, ...]
    """The graph's nodes in the order they ran, e.g. ``("retrieve", "summarize", "synthesize", "verify",
    "finalize")``; a question resumed after an interruption lists only the nodes run after the resume."""
    timings: tuple[tuple[str, float], ...] = ()
    """Seconds per node (a node that ran twice counts both runs)."""
    scope: str = ""
    """Which documents retrieval kept and which it ranked first, and why (the metadata filter and period ranking
    applied: "names adobe systems; fiscal year 2015; ranked below every section of that period: …"); "" when the
    question named no stored document."""
    injections: tuple[Citation, ...] = ()
    """Spans of the documents read that the prompt-injection detector flagged as instructions aimed at a model
    (``graphs/injection.py``), each exact stored text: blanked before anything was read, never given to the writer,
    never accepted as a claim's support. The same as ``Answer.injections``."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``Pipeline.ask`` returns.

    ``support`` is the share of the answer's claims that the verifier found supported by their
    citations (0.0 when abstained). ``timings`` maps stage name to seconds. ``trace`` is set when it
    was asked for.
    """

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    support: float
    sections: tuple[ScoredSection, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()
    trace: Trace | None = None
    kind: str = ""
    """The answer type the question asks for (``span``, ``yesno``, ``number``, ``date``, ``list``, ``open``)."""
    value: str | tuple[str, ...] | None = None
    """The typed answer when a typed component gave it (``[answers] typed``): the clause, the NLI label
    (``Entailment`` / ``Contradiction`` / ``NotMentioned``), the date as written, the list's items; a computed
    number's result. ``None`` when the writer answered."""
    injections: tuple[Citation, ...] = ()
    """Spans of the documents read that were flagged as planted instructions aimed at a model
    (``graphs/injection.py``) and kept out of the evidence; empty when none."""


@dataclass(frozen=True, slots=True)
class ScoredUnit:
    """A reading unit of a section (a sentence or a table row, ``document.text[start:end]``) with a score for a
    question: how much it is evidence, by the scorer that gave it."""

    doc_id: str
    section_id: str
    start: int
    end: int
    kind: str
    score: float


UNIT_SCORERS = ("lead", "bm25", "minilm", "encoder", "trained")
"""How ``Pipeline.score_units`` ranks units: document order, BM25 of the unit's words, MiniLM cosine of the unit
embedded alone, cosine of the untrained long encoder's in-context vector, the trained reader."""


NLILabel = Literal["Entailment", "Contradiction", "NotMentioned"]
NLI_LABELS: tuple[NLILabel, ...] = ("Entailment", "Contradiction", "NotMentioned")
VERDICT_LEADS: dict[str, str] = {"Entailment": "Yes: ", "Contradiction": "No: "}
"""How a yes-no answer decided by the reader's verdict begins (``Answer.value`` holds the label); the claims follow."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What ``Pipeline.check`` returns: whether the documents entail, contradict or do not mention a
    hypothesis, how sure the reader is, and the spans it decided on (each ``quote`` exact stored text)."""

    hypothesis: str
    label: NLILabel
    confidence: float
    evidence: tuple[Citation, ...]
    sections: tuple[ScoredSection, ...] = ()
    """The sections that were read, the deciding one first."""
    units: tuple[ScoredUnit, ...] = ()
    """Every unit of the sections read, in document order, with the reader's evidence score."""


@dataclass(frozen=True, slots=True)
class GraphStep:
    """One node of the answer graph as it finishes (what ``Pipeline.stream`` yields): its name and the
    state keys it changed. The last step is ``finalize``, whose ``update["answer"]`` is the ``Answer``."""

    node: str
    update: Mapping[str, Any]
    seconds: float
    """Wall-clock seconds since the question was started (or resumed)."""


@dataclass(frozen=True, slots=True)
class Draft:
    """An answer writer's unverified reply to numbered evidence (``Pipeline.draft``).

    ``claims`` are its sentences with the evidence numbers each cites; empty when the writer said the
    evidence does not answer the question."""

    text: str
    claims: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One input file read and sectionized (what an ingestion worker hands to the indexer): its documents
    with their sections. A file is stored wholly or not at all."""

    path: str
    sha: str
    documents: tuple[tuple[Document, tuple[Section, ...]], ...]

    @property
    def pages(self) -> int:
        return sum(doc.pages for doc, _ in self.documents)

    @property
    def warnings(self) -> tuple[IngestWarning, ...]:
        return tuple(IngestWarning(doc.source or self.path, w) for doc, _ in self.documents for w in doc.warnings)


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A file the ingestion job could not use, and one sentence saying why."""

    path: str
    error: str


@dataclass(frozen=True, slots=True)
class IngestWarning:
    """A file the ingestion job stored, and one sentence on what it changed or doubted while reading it."""

    path: str
    warning: str


@dataclass(frozen=True, slots=True)
class IngestReport:
    """The summary of one ingestion run (the ``sectionrag ingest --json`` object)."""

    documents: int
    sections: int
    passages: int
    pages: int
    seconds: float
    skipped: int
    failed: tuple[FailedFile, ...] = field(default_factory=tuple)
    warnings: tuple[IngestWarning, ...] = field(default_factory=tuple)
