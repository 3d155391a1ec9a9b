"""Character-offset text utilities: sentence spans and whitespace trimming.

Every function returns spans into the string it was given, never modified copies, so callers can
always recover ``text[start:end]`` exactly.
"""

from __future__ import annotations

import re

# A sentence ends at ., ! or ? (optionally followed by closing quotes/brackets) before whitespace and
# an upper-case letter, digit, quote or bracket; or at a blank line / a line break before a heading-ish line.
_SENT_END = re.compile(r"""(?<=[.!?])["')\]]*\s+(?=[A-Z0-9"'(\[])|\n\s*\n|\n(?=\s*(?:[-*•]|\(?[a-z0-9]{1,3}[.)])\s)""")
# Abbreviations after which a period does not end a sentence.
_ABBREV = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Inc|Ltd|Co|Corp|No|Nos|vs|etc|e\.g|i\.e|U\.S|Sec|Art|St|Jr|Sr|approx|Fig)|\b[A-Z]|(?<![\w.,$])\(?\d{1,3}(?:\.\d{1,3})*)\.$")


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrinks ``[start, end)`` so it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str, start: int = 0, end: int | None = None, max_chars: int = 1200) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` as offsets into ``text``; long runs are cut at ``max_chars``."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cur = start
    for m in _SENT_END.finditer(text, start, end):
        if _ABBREV.search(text, max(cur, m.start() - 8), m.start()):
            continue
        spans.append((cur, m.start()))
        cur = m.end()
    spans.append((cur, end))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        s, e = trim_span(text, s, e)
        while e - s > max_chars:
            cut = text.rfind(" ", s + max_chars // 2, s + max_chars)
            cut = cut if cut > s else s + max_chars
            out.append(trim_span(text, s, cut))
            s, e = trim_span(text, cut, e)
        if e > s:
            out.append((s, e))
    return out
