"""The shared vocabulary of sectionrag: frozen, typed records that cross every package boundary.

Ids are content hashes, so ingesting the same bytes twice produces the same ids and is a no-op.
All offsets are character offsets into ``Document.text`` (the text as stored), half-open ``[start, end)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

DocKind = Literal["filing", "contract", "ehr", "note", "generic"]


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
class Citation:
    """A span of a stored document that supports a claim: ``quote == document.text[start:end]``."""

    doc_id: str
    section_id: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``Pipeline.ask`` returns.

    ``support`` is the share of the answer's claims that the verifier found supported by their
    citations (0.0 when abstained). ``timings`` maps stage name to seconds.
    """

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    support: float
    sections: tuple[ScoredSection, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A file the ingestion job could not use, and one sentence saying why."""

    path: str
    error: str


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
