"""What every reader and sectionizer promises, as assertions the property tests and the fuzz harness share.

* a reader returns ``Document``s whose ``page_starts`` are exact offsets (``(0,)`` or the offsets after each
  form feed) or raises ``IngestError``, never anything else;
* ``sectionize`` returns sections with ``0 <= start < end <= len(text)``, ``text == doc.text[start:end]``,
  in document order, not overlapping, trimmed, and covering the text: what lies between, before and after
  them is whitespace only (``build_sections`` drops whitespace-only spans and trims every section);
  each fits ``max_tokens``, carries the pages its span touches, its ordinal and its content-hash id;
* stored in a ``SectionStore``, a section's text, its passages and the citations built from its sentences
  are still exactly the stored document text at their offsets.
"""

from __future__ import annotations

import tempfile
from itertools import pairwise

import numpy as np

from ingest.sectionizers import _headings, sectionize
from ingest.sectionizers.tree import Heading
from ingest.tokens import TokenCounter
from pipeline.types import Citation, Document, Section


def check_document(doc: Document, paged: bool = True) -> None:
    """A reader's document: text and exact page starts; ``paged``: its form feeds are its page breaks."""
    assert isinstance(doc, Document)
    assert isinstance(doc.text, str)
    assert doc.page_starts and doc.page_starts[0] == 0, doc.page_starts
    assert all(0 <= a < b <= len(doc.text) for a, b in pairwise(doc.page_starts)), doc.page_starts
    assert doc.page_starts[-1] <= len(doc.text)
    assert all(doc.text[p - 1] == "\f" for p in doc.page_starts[1:]), "a page must start right after a form feed"
    if paged:
        # a document with pages marks every page break, and only those, with a form feed
        assert doc.text.count("\f") == len(doc.page_starts) - 1, (doc.text.count("\f"), doc.page_starts)


def _pages_touched(page_starts: tuple[int, ...], n: int, start: int, end: int) -> tuple[int, ...]:
    """The 1-based pages whose text ``[page_starts[i], page_starts[i + 1])`` meets ``[start, end)``."""
    bounds = [*page_starts, n]
    return tuple(i + 1 for i in range(len(page_starts)) if bounds[i] < end and bounds[i + 1] > start)


def check_sections(doc: Document, sections: list[Section], max_tokens: int) -> None:
    """The promises of ``build_sections`` (see the module docstring)."""
    text = doc.text
    assert isinstance(sections, list)
    if not text.strip():
        assert sections == []
        return
    assert sections, "a document with text has at least one section"
    counter = TokenCounter(text)
    prev_end = 0
    for k, s in enumerate(sections):
        assert 0 <= s.start < s.end <= len(text), (s.start, s.end, len(text))
        assert s.text == text[s.start:s.end]
        assert s.text.strip() == s.text, f"section {k} is not trimmed: {s.text[:20]!r}…{s.text[-20:]!r}"
        assert s.start >= prev_end, f"section {k} [{s.start}, {s.end}) overlaps the one before (ends {prev_end})"
        gap = text[prev_end:s.start]
        assert not gap.strip(), f"text between sections {k - 1} and {k} is lost: {gap[:60]!r}"
        prev_end = s.end
        assert s.ordinal == k
        assert s.doc_id == doc.id
        assert s.id == Section.make_id(doc.id, s.start, s.end, s.text)
        assert s.pages == _pages_touched(doc.page_starts, len(text), s.start, s.end), (s.pages, s.start, s.end)
        assert s.tokens == counter.count(s.start, s.end) <= max_tokens, (s.tokens, max_tokens)
        assert s.path and all(isinstance(p, str) for p in s.path)
    tail = text[prev_end:]
    assert not tail.strip(), f"text after the last section is lost: {tail[:60]!r}"
    assert len({s.id for s in sections}) == len(sections)


def check_hard_boundaries(doc: Document, headings: list[Heading], sections: list[Section]) -> None:
    """A hard heading (a filing's Item or note, a contract's exhibit, an EHR's patient summary) always starts a
    section: the first of its text that is not whitespace is a section start, and no two hard headings of one
    level share an offset (the tree would keep only the first)."""
    starts = {s.start for s in sections}
    hard = [h for h in headings if h.hard and 0 <= h.start < len(doc.text)]
    assert len({(h.start, h.level) for h in hard}) == len(hard), f"hard headings share an offset: {hard}"
    for h in hard:
        p = h.start + len(doc.text[h.start:]) - len(doc.text[h.start:].lstrip())
        assert p == len(doc.text) or p in starts, f"hard heading {h.title!r} at {h.start} starts no section"


def sectionize_checked(doc: Document, target_tokens: int, max_tokens: int) -> list[Section]:
    sections = sectionize(doc, target_tokens=target_tokens, max_tokens=max_tokens)
    check_sections(doc, sections, max_tokens)
    if doc.kind != "generic":
        check_hard_boundaries(doc, _headings(doc), sections)
    return sections


def check_stored(doc: Document, sections: list[Section], tokenizer) -> None:
    """Stores ``doc`` as ingestion does and checks that sections, passages and citations read back exactly."""
    from graphs.evidence import section_sentences
    from pipeline.passages import make_passages
    from pipeline.store import SectionStore

    passages = [p for s in sections for p in make_passages(s, tokenizer, 32, 8)]
    for p in passages:
        assert 0 <= p.start < p.end <= len(doc.text) and p.text == doc.text[p.start:p.end]
    with tempfile.TemporaryDirectory() as folder:
        store = SectionStore(folder, create=True)
        try:
            store.put_file(doc.source, doc.sha or "sha", [(doc, sections, passages, np.zeros((len(passages), 4)))])
            stored = store.document_text(doc.id)
            assert stored == doc.text
            assert store.document(doc.id).page_starts == doc.page_starts
            got = store.sections(doc.id)
            assert [(s.id, s.start, s.end, s.path, s.pages) for s in got] == \
                   [(s.id, s.start, s.end, s.path, s.pages) for s in sections]
            for s in got:
                assert s.text == stored[s.start:s.end], f"stored section text differs at [{s.start}, {s.end})"
                for _, p in store.passages_of_section(s.id):
                    assert p.text == stored[p.start:p.end] and s.start <= p.start < p.end <= s.end
                # evidence sentences become citations quoting the stored text at their offsets
                for a, b in section_sentences(stored, s):
                    c = Citation(doc_id=s.doc_id, section_id=s.id, start=a, end=b, quote=stored[a:b])
                    assert s.start <= c.start < c.end <= s.end and c.quote == doc.text[c.start:c.end]
        finally:
            store.close()
