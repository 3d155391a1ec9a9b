"""Plain clinical notes: section headers on lines of their own (SOAP / H&P style).

Recognised, each at the start of its line:

* Markdown headings (``# Chief Complaint``, ``## Plan``): level = number of ``#``;
* the usual note sections by name, in any case, alone on the line or followed by a colon
  (``CHIEF COMPLAINT``, ``HPI:``, ``Assessment and Plan``, ``Chief Complaint: cough``): level 1;
* other short ALL-CAPS lines (``VITALS REVIEWED``, ``MSK:``, ``NECK``): level 2, the sub-headings
  of an exam or a problem list.

Lines that read as list items or sentences (a bullet, a leading number, a final period) are never
headings. ``note_headings`` also serves the EHR sectionizer, which finds the same headers inside the
notes of a patient record one level below the note.
"""

from __future__ import annotations

import re

from ingest.sectionizers.tree import Heading
from pipeline.types import Document

# Section names of clinical notes (lower case, spaces normalised); see e.g. the SOAP and H&P formats.
SECTION_NAMES = frozenset({
    "chief complaint", "cc", "reason for visit", "reason for consultation", "presenting complaint",
    "history of present illness", "hpi", "history", "interval history", "subjective",
    "review of systems", "ros", "past medical history", "pmh", "medical history", "past history",
    "past surgical history", "psh", "surgical history", "family history", "fh", "social history", "sh",
    "medications", "current medications", "medication", "home medications", "allergies", "immunizations",
    "birth history", "developmental history", "obstetric history",
    "physical exam", "physical examination", "exam", "examination", "pe", "objective", "vitals",
    "vital signs", "vitals reviewed", "results", "labs", "laboratory", "laboratory results", "imaging",
    "data", "findings", "studies",
    "assessment and plan", "assessment & plan", "assessment/plan", "a/p", "a&p", "assessment",
    "plan", "impression", "impression and plan", "diagnosis", "diagnoses", "problem list", "problems",
    "medical decision making", "mdm", "instructions", "patient instructions", "procedure", "procedures",
    "hospital course", "discharge diagnosis", "discharge medications", "disposition",
    "follow up", "follow-up", "recommendations", "summary",
})

_MD = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+(\S[^\n]*?)[ \t#]*$")
# a known name, alone (optionally with a colon) or followed by a colon and the section's first words
_NAMED = re.compile(r"[ \t]*([A-Za-z][A-Za-z /&-]{0,40}?)[ \t]*(?::[ \t]*(\S[^\n]*)?)?$")
_CAPS = re.compile(r"[ \t]*([A-Z][A-Z0-9 /&(),'-]{1,48}[A-Z)])[ \t]*:?[ \t]*$")
_LINE = re.compile(r"^[^\n]*$", re.MULTILINE)


def _key(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


def line_heading(line: str) -> tuple[int, str] | None:
    """``(level, title)`` when ``line`` is a note section header, else ``None``."""
    if len(line) > 200 or not line.strip():
        return None
    if m := _MD.match(line):
        return len(m.group(1)), m.group(2).strip()
    if (m := _NAMED.match(line)) and _key(m.group(1)) in SECTION_NAMES:
        # "ASSESSMENT" alone on its line opens a section; "Labs: normal" labels a paragraph inside one
        # (one level down); "plan to recheck" (no colon) is prose
        if m.group(2) is None:
            return 1, m.group(1).strip()
        if ":" in line:
            return 2, m.group(1).strip()
    if (m := _CAPS.match(line)) and len(m.group(1).split()) <= 6 and sum(c.isalpha() for c in m.group(1)) >= 2:
        return 2, m.group(1).strip()
    return None


def note_headings(text: str, start: int = 0, end: int | None = None, base_level: int = 0) -> list[Heading]:
    """Headers of the note in ``text[start:end]``, levels shifted by ``base_level``; offsets into ``text``."""
    end = len(text) if end is None else end
    out = []
    for m in _LINE.finditer(text, start, end):
        found = line_heading(m.group(0))
        if found:
            level, title = found
            indent = len(m.group(0)) - len(m.group(0).lstrip())
            out.append(Heading(start=m.start() + indent, level=base_level + level, title=title[:100]))
    return out


def find_headings(doc: Document) -> list[Heading]:
    return note_headings(doc.text)
