"""EHR documents rendered by ``ingest.readers.fhir``: summary blocks and dated encounters.

The summaries (conditions, medications, …) are hard sections; consecutive encounters merge up to the
target, so a section is a stretch of the patient's history with its dates in the path.
"""

from __future__ import annotations

import re

from ingest.sectionizers.tree import Heading
from pipeline.types import Document

_BLOCK = re.compile(r"^(CONDITIONS|MEDICATIONS|ALLERGIES|IMMUNIZATIONS|PROCEDURES) \(\d+\)$|^(?:ENCOUNTER|NOTE) (?:\d{4}-\d\d-\d\d|undated) — .*$", re.M)
_NOTE_HEADING = re.compile(r"^(#{1,3}) (\S.*)$", re.M)


def find_headings(doc: Document) -> list[Heading]:
    heads = []
    for m in _BLOCK.finditer(doc.text):
        summary = m.group(1) is not None
        title = m.group(1).title() if summary else m.group(0)[:100]
        heads.append(Heading(start=m.start(), level=1, title=title, hard=summary))
    for m in _NOTE_HEADING.finditer(doc.text):
        heads.append(Heading(start=m.start(), level=1 + len(m.group(1)), title=m.group(2).strip()[:100]))
    return heads
