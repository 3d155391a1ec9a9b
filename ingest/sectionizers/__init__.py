"""Domain sectionizers: each finds a document's own structure as headings; ``tree`` makes sections.

``sectionize(doc, target_tokens, max_tokens)`` picks the sectionizer by ``doc.kind`` (set by the reader
or by ``detect_kind``) and returns sections covering the document in order.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import replace

from ingest.sectionizers.tree import Heading, build_sections
from ingest.tokens import TokenCounter
from pipeline.types import DocKind, Document, Section

_FILING = re.compile(r"SECURITIES AND EXCHANGE COMMISSION|FORM\s+10-[KQ]|FORM\s+8-K|\bItem\s+7A?\b|ANNUAL REPORT PURSUANT", re.I)
_CONTRACT = re.compile(r"\bAGREEMENT\b|\bWHEREAS\b|\bhereinafter\b|\bIN WITNESS WHEREOF\b|\bthe parties\b", re.I)
_NOTE = re.compile(r"^\s*(?:#{1,6}\s*)?(?:Chief Complaint|CC|HPI|History of Present Illness|Assessment and Plan|Assessment|Plan)\s*:?\s*$", re.I | re.M)


def detect_kind(text: str) -> DocKind:
    """Guesses the domain from the opening of the text (the first 20k chars decide)."""
    head = text[:20000]
    if len(_NOTE.findall(head)) >= 2:
        return "note"
    filing = len(_FILING.findall(head))
    contract = len(_CONTRACT.findall(head))
    if filing >= 2 and filing >= contract // 2:
        return "filing"
    if contract >= 2:
        return "contract"
    return "generic"


# kind → module under ingest.sectionizers exposing ``find_headings(doc) -> list[Heading]``
_MODULES: dict[str, str] = {
    "filing": "ingest.sectionizers.filing",
    "contract": "ingest.sectionizers.contract",
    "ehr": "ingest.sectionizers.ehr",
    "note": "ingest.sectionizers.note",
}


def _headings(doc: Document) -> list[Heading]:
    module = _MODULES.get(doc.kind, "ingest.sectionizers.generic")
    return importlib.import_module(module).find_headings(doc)


def sectionize(doc: Document, *, target_tokens: int = 4000, max_tokens: int = 32000) -> list[Section]:
    """Sections of ``doc``: its top-level parts are always opened, then small siblings merge up to the target."""
    if doc.kind == "generic":
        doc = replace(doc, kind=detect_kind(doc.text))
    counter = TokenCounter(doc.text)
    return build_sections(doc, _headings(doc), target_tokens=target_tokens, max_tokens=max_tokens,
                          counter=counter, open_root=True)
