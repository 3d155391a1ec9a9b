"""Reading units of a section: its sentences, and the rows of its tables, each an exact character span.

The trained reader scores units, not tokens: a unit is what a citation quotes. A table row is a unit of its
own (a row of a 10-K table is one fact: a line item and its figures for each period) and carries its table's
title and column headers as ``context``; a sentence carries the section's heading path.

Rows are found in the layouts the readers produce: a line of `` | ``-separated cells (HTML and DOCX tables);
a label with its figures on one line; or a label line followed by lines that hold only figures (PDF text,
one cell per line). Consecutive rows form a table; its column headers are the short lines just above the
first row (``2015``, ``(in millions)``), and its title the nearest line above those that is not a sentence.

>>> units = section_units(text, start, end, path=("Item 7", "Results of Operations"))
>>> [(u.kind, text[u.start:u.end]) for u in units][:2]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pipeline.text import sentence_spans, trim_span

MIN_ROW_NUMBERS = 2
MAX_TITLE_CHARS = 120
MAX_HEADER_CHARS = 40
MAX_HEADER_LINES = 12
_NUMBER = re.compile(r"(?<![\w.])\(?[$€£]?-?\d[\d,]*(?:\.\d+)?%?\)?(?![\w])")
_YEAR = re.compile(r"(?:19|20)\d\d")


@dataclass(frozen=True, slots=True)
class Unit:
    """One reading unit: ``text[start:end]`` of the document, what kind it is, and what frames it."""

    start: int
    end: int
    kind: Literal["sentence", "row"]
    context: str = ""
    """A sentence: its heading path (``"Item 7 › Liquidity"``); a row: its table's title and column headers."""


def _kind(line: str) -> str:
    """``cells`` (`` | ``-separated), ``figures`` (only numbers and currency signs), ``year`` (a column
    header's year alone), ``inline`` (a label with several numbers), or ``text``."""
    if " | " in line:
        return "cells"
    found = _NUMBER.findall(line)
    if not _NUMBER.sub("", line).strip(" $€£%-—–"):
        if len(found) == 1 and _YEAR.fullmatch(found[0]):
            return "year"
        return "figures"
    if len(found) >= MIN_ROW_NUMBERS and _NUMBER.search(line.rstrip(" $€£%")[-24:] + " ") \
            and line.rstrip(" $€£%").endswith(tuple("0123456789)%")):  # a label, then its figures to the end
        return "inline"
    return "text"


def _ends_sentence(line: str) -> bool:
    """A line that ends a sentence (a period, not a label's dot leaders), or introduces a list."""
    line = line.rstrip(" $€£")
    return line.endswith((":", ";")) or (line.endswith(".") and not line.endswith(".."))


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out, at = [], start
    while at < end:
        nl = text.find("\n", at, end)
        stop = end if nl < 0 else nl
        s, e = trim_span(text, at, stop)
        if e > s:
            out.append((s, e))
        at = stop + 1
    return out


def _rows(text: str, lines: list[tuple[int, int]]) -> list[tuple[int, int] | None]:
    """For each line, the (first, last) line index of the row it starts, or None when it starts no row: a
    ``cells`` or ``inline`` line alone, or a label with the ``figures`` lines that follow it (a label broken
    over two lines, the second starting in lower case, takes both)."""
    kinds = [_kind(text[s:e]) for s, e in lines]
    out: list[tuple[int, int] | None] = [None] * len(lines)
    i = 0
    while i < len(lines):
        if kinds[i] in ("cells", "inline"):
            out[i] = (i, i)
        elif kinds[i] == "text" and i + 1 < len(lines) and kinds[i + 1] == "figures" \
                and not _ends_sentence(text[lines[i][0]:lines[i][1]]):
            j = i + 1
            while j + 1 < len(lines) and kinds[j + 1] == "figures":
                j += 1
            first = i
            if i > 0 and kinds[i - 1] == "text" and out[i - 1] is None and text[lines[i][0]].islower() \
                    and not _ends_sentence(text[lines[i - 1][0]:lines[i - 1][1]]):
                first = i - 1
            out[first] = (first, j)
            i = j
        i += 1
    return out


def section_units(text: str, start: int = 0, end: int | None = None, path: tuple[str, ...] = (),
                  max_chars: int = 600) -> list[Unit]:
    """The units of ``text[start:end]`` in document order: table rows, and the sentences between tables."""
    end = len(text) if end is None else end
    heading = " › ".join(path)
    lines = _lines(text, start, end)
    rows = _rows(text, lines)
    units: list[Unit] = []
    prose_start, context, last_row = start, "", -2
    i = 0
    while i < len(lines):
        if rows[i] is None:
            i += 1
            continue
        first, last = rows[i]
        if first > last_row + 1:  # a new table: its frame, and the prose before it
            context, frame_from = _frame(text, lines, rows, first)
            units += _sentences(text, prose_start, lines[frame_from][0], heading, max_chars)
        units.append(Unit(lines[first][0], lines[last][1], "row", context))
        prose_start, last_row = lines[last][1], last
        i = last + 1
    units += _sentences(text, prose_start, end, heading, max_chars)
    return units


def _frame(text: str, lines: list[tuple[int, int]], rows: list, first: int) -> tuple[str, str | int]:
    """A table's context (title — column headers) and the index of the first line that belongs to its frame:
    the short non-row lines just above its first row are its headers, the nearest line above those that
    is not a sentence its title."""
    line = lambda k: " ".join(text[lines[k][0]:lines[k][1]].split())  # noqa: E731
    k = first
    while k > 0 and first - k < MAX_HEADER_LINES and rows[k - 1] is None and len(line(k - 1)) <= MAX_HEADER_CHARS \
            and not line(k - 1).endswith("."):
        k -= 1
    headers = [line(j) for j in range(k, first)]
    title = ""
    if k > 0 and rows[k - 1] is None and len(line(k - 1)) <= MAX_TITLE_CHARS and not line(k - 1).endswith("."):
        k -= 1
        title = line(k)
    return " — ".join(x for x in (title, " ".join(headers)) if x), k


def _sentences(text: str, start: int, end: int, heading: str, max_chars: int) -> list[Unit]:
    if end <= start:
        return []
    return [Unit(s, e, "sentence", heading) for s, e in sentence_spans(text, start, end, max_chars=max_chars)]
