"""The fallback sectionizer: headings found on their own lines (Markdown, numbered, ALL CAPS, Title Case).

Used for any document no domain sectionizer claims. A document without a single heading still gets
sections: the tree rule splits it at paragraph breaks once it exceeds the maximum.
"""

from __future__ import annotations

import re

from ingest.sectionizers.tree import Heading
from pipeline.types import Document

_MD = re.compile(r"^(#{1,6})\s+(\S.{0,150})$")
_NUMBERED = re.compile(r"^((?:\d{1,2}\.)+\d{0,2}|[IVXL]{1,5}\.)\s+([A-Z][^\n]{0,100})$")
_KEYWORD = re.compile(r"^(ARTICLE|Article|SECTION|Section|PART|Part|CHAPTER|Chapter|SCHEDULE|Schedule|EXHIBIT|Exhibit|APPENDIX|Appendix)\s+[\dIVXLA-Z]+[.:]?(?:\s+\S.{0,100})?$")


def _line_heading(line: str) -> tuple[int, str] | None:
    s = line.strip()
    if not s or len(s) > 120:
        return None
    if m := _MD.match(s):
        return len(m.group(1)), m.group(2).strip()
    if _KEYWORD.match(s):
        return 1, s
    if m := _NUMBERED.match(s):
        depth = m.group(1).rstrip(".").count(".") + 1
        # a numbered line reads as a heading only when short and not a sentence
        if len(s) <= 80 and not s.endswith((",", ";")) and s.count(" ") <= 10:
            return min(depth + 1, 6), s
        return None
    letters = [c for c in s if c.isalpha()]
    if len(letters) >= 4 and s.isupper() and len(s) <= 80 and not s.endswith((",", ";")):
        return 2, s
    return None


def find_headings(doc: Document) -> list[Heading]:
    """Headings on lines of their own; each opens a section at the start of its line."""
    text = doc.text
    out = []
    pos = 0
    for line in text.splitlines(keepends=True):
        found = _line_heading(line)
        if found:
            level, title = found
            out.append(Heading(start=pos + (len(line) - len(line.lstrip())), level=level, title=title[:120]))
        pos += len(line)
    return out
