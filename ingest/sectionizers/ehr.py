"""Patient records rendered by ``ingest.readers.fhir``: a summary, then dated encounters with their notes.

Headings and levels (every title carries its dates, so every section path does too):

* ``PATIENT SUMMARY — <name>, record <from> to <to>`` (level 1, hard: never merged with encounters),
  with its blocks ``CONDITIONS — …``, ``MEDICATIONS — …``, … (level 2): the summary is one section
  while it fits the maximum, and is opened into its blocks only when it does not;
* ``ENCOUNTER <date> — <type>`` (level 1): consecutive encounters merge up to the target, giving paths
  such as ``Encounter 1987-11-19 — … … Encounter 1990-02-03 — …``;
* ``NOTE <date> — <type>`` (level 2) inside an encounter, ``UNLINKED NOTE <date> — <type>`` (level 1)
  for a note without a known encounter; the note's own headers (``# Chief Complaint``, ``HPI:``) are
  found by the note sectionizer one level below, and only matter when an encounter exceeds the maximum.
"""

from __future__ import annotations

import re

from ingest.sectionizers.note import note_headings
from ingest.sectionizers.tree import Heading
from pipeline.types import Document

_DATE = r"(?:\d{4}-\d\d-\d\d|undated)"
_BLOCK = re.compile(
    r"^(?:(?P<summary>PATIENT SUMMARY) — (?P<who>[^\n]+)"
    r"|(?P<block>CONDITIONS|MEDICATIONS|ALLERGIES|IMMUNIZATIONS|PROCEDURES|DEVICES) — (?P<count>[^\n]+)"
    rf"|(?P<event>ENCOUNTER|UNLINKED NOTE|NOTE) (?P<date>{_DATE}) — (?P<what>[^\n]+))$",
    re.MULTILINE,
)
_EVENT_LEVEL = {"ENCOUNTER": 1, "UNLINKED NOTE": 1, "NOTE": 2}


def find_headings(doc: Document) -> list[Heading]:
    heads: list[Heading] = []
    blocks = list(_BLOCK.finditer(doc.text))
    for i, m in enumerate(blocks):
        if m.group("summary"):
            heads.append(Heading(m.start(), 1, f"Patient summary — {m.group('who')}"[:120], hard=True))
        elif m.group("block"):
            heads.append(Heading(m.start(), 2, f"{m.group('block').title()} — {m.group('count')}"[:120]))
        else:
            event, level = m.group("event"), _EVENT_LEVEL[m.group("event")]
            heads.append(Heading(m.start(), level, f"{event.capitalize()} {m.group('date')} — {m.group('what')}"[:120]))
            if event != "ENCOUNTER":
                body_end = blocks[i + 1].start() if i + 1 < len(blocks) else len(doc.text)
                heads += note_headings(doc.text, m.end(), body_end, base_level=level)
    return heads
