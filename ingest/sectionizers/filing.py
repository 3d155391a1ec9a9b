"""SEC filings (10-K, 10-Q, 8-K, earnings releases): PART / Item structure, the notes to the financial
statements, and the sub-headings inside them.

Headings, by level (the tree in ``tree.py`` turns them into sections):

1. ``PART I`` … ``PART IV``;
2. ``Item 1`` … ``Item 16`` with letters (``Item 1A``, ``Item 7A``, ``Item 9C``) and 8-K items
   (``Item 2.02``), *hard*: an Item is always a section boundary and never merges with another;
3. the notes to the financial statements (``Note 1 — …`` or ``1. Summary of …``), *hard* too;
4. sub-headings (ALL CAPS or Title Case lines), soft: they only matter when an Item or a note is over
   the maximum and has to be opened, and they name the parts it is split into.

A filing names every Item twice, in its table of contents and in its body, often repeats the current
Item as a running page header, and cross-references Items and notes in running text. So headings are
chosen as *chains*: the longest run of candidates whose numbers increase in document order (Items),
or count up from 1 (notes), after dropping the candidates on table-of-contents pages (pages listing
several Items with page numbers). Among equally long chains the earliest wins, which picks an Item's
first body occurrence over its running headers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.sectionizers.tree import Heading
from pipeline.types import Document

_WS = r"[ \t\xa0]"
# A line starts after a newline or, at the top of a page, after the form feed that separates pages.
_BOL = r"(?:^|(?<=\f))"
_EOL = r"(?=[\n\f]|\Z)"
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4}
_PART = re.compile(rf"{_BOL}{_WS}*PART{_WS}+(IV|I{{1,3}})\b(?!\s*[,;(]){_WS}*[.:—–-]?{_WS}*([^\n\f]*){_EOL}", re.M | re.I)
# "Item 7.", "ITEM 1A:", "Item 2.02", "Item 9C —" at a line start; the title may follow or sit on the next line.
_ITEM = re.compile(rf"{_BOL}{_WS}*(?:PART{_WS}+(?:IV|I{{1,3}}){_WS}*[,.:—–-]?{_WS}*)?(ITEM|Item)(?:{_WS}+|{_WS}*\n{_WS}*)"
                   rf"(\d{{1,2}})(?:\.(\d{{2}}))?{_WS}?([A-Ca-c])?(?![\w,;(])(?:{_WS}*[.:—–-])?{_WS}*([^\n\f]*){_EOL}", re.M)
# A PDF line can run a body paragraph straight into an all-caps heading: "... 2043. ITEM 3. LEGAL PROCEEDINGS".
_ITEM_INLINE = re.compile(rf"(?<=[.:;]){_WS}+(ITEM){_WS}+(\d{{1,2}})(?:\.(\d{{2}}))?([A-C])?\.{_WS}+([A-Z][A-Z ,’'&/-]{{3,}}){_EOL}", re.M)
_NOTE = re.compile(rf"{_BOL}{_WS}*NOTE{_WS}+(\d{{1,2}})\b(?![,;(]){_WS}*[.:—–-]?{_WS}*([^\n\f]*){_EOL}", re.M | re.I)
_NUMBERED = re.compile(rf"{_BOL}{_WS}*(\d{{1,2}})\.(?:{_WS}+([A-Z][^\t\n\f]{{2,110}}))?{_WS}*{_EOL}", re.M)
# A table-of-contents entry ends with its page number ("Business 3", "Item 7.\tMD&A\t22", "F-12").
_PAGE_REF = re.compile(rf"(?:(?:^|{_WS}|\t)(?:[A-Z]-)?\d{{1,3}}|\.{{4,}}{_WS}*(?:[A-Z]-)?\d{{0,3}}){_WS}*$")
_LOWER_START = re.compile(r"^[a-z(“\"'‘]")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int  # offset of the heading's first character
    key: tuple  # the number the chain orders by
    title: str  # the name in section paths: "Item 7", "PART II", "Note 3 — Leases"
    page: int
    heading: str = ""  # the Item's own title, as written


def _chain(cands: Sequence[_Candidate], follows: Callable[[_Candidate, _Candidate], bool],
           text_end: int) -> list[_Candidate]:
    """The longest chain of candidates (in document order) in which each one ``follows`` the previous.

    Among the longest chains, the one whose headings open the most text (capped per heading), so a
    body heading beats its table-of-contents entry; then the earliest (a first body occurrence beats
    the running headers that repeat it). ``n`` is a few hundred at most.
    """
    n = len(cands)
    if not n:
        return []
    # weight: 1 per heading (dominant), plus the text it opens up to the next candidate, capped.
    gaps = [min((cands[i + 1].start if i + 1 < n else text_end) - cands[i].start, 3000) for i in range(n)]
    weight = [1_000_000 + g for g in gaps]
    best = weight[:]  # best chain score starting at i
    for i in range(n - 1, -1, -1):
        for k in range(i + 1, n):
            if weight[i] + best[k] > best[i] and follows(cands[i], cands[k]):
                best[i] = weight[i] + best[k]
    i = best.index(max(best))
    out = [cands[i]]
    while best[i] > weight[i]:
        i = next(k for k in range(i + 1, n) if best[k] == best[i] - weight[i] and follows(cands[i], cands[k]))
        out.append(cands[i])
    return out


def _page_of(starts: Sequence[int], pos: int) -> int:
    lo, hi = 0, len(starts)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if starts[mid] <= pos:
            lo = mid
        else:
            hi = mid
    return lo


def _next_lines(text: str, pos: int, n: int) -> list[str]:
    """The next ``n`` non-empty lines after the line containing ``pos``."""
    out: list[str] = []
    end = text.find("\n", pos)
    while end != -1 and len(out) < n:
        nxt = text.find("\n", end + 1)
        line = text[end + 1:nxt if nxt != -1 else len(text)].strip()
        if line and line != "\f":
            out.append(line.strip("\f").strip())
        end = nxt
    return out


def _title_after(text: str, match_end: int, inline: str) -> str:
    """The heading's title: the rest of its line, or the next line when the line holds only the number."""
    title = inline.strip(" \t\xa0.:—–-")
    if not title:
        nxt = _next_lines(text, match_end - 1, 1)
        if nxt and len(nxt[0]) <= 160 and not _PAGE_REF.fullmatch(nxt[0]):
            title = nxt[0]
    return " ".join(title.split("\t")[0].split())[:120]


def _toc_pages(text: str, starts: Sequence[int], items: list[_Candidate]) -> set[int]:
    """Pages that list several Items with page numbers: a table of contents or a cross-reference index."""
    by_page: dict[int, list[_Candidate]] = {}
    for c in items:
        by_page.setdefault(c.page, []).append(c)
    toc = set()
    for page, cands in by_page.items():
        if len(cands) < 3:
            continue
        with_ref = sum(1 for c in cands if any(_PAGE_REF.search(line) for line in
                                                [text[c.start:text.find("\n", c.start) if "\n" in text[c.start:c.start + 400] else c.start + 400]]
                                                + _next_lines(text, c.start, 3)))
        if with_ref >= max(2, len(cands) // 2):
            toc.add(page)
    return toc


def _item_candidates(text: str, starts: Sequence[int]) -> list[_Candidate]:
    out = []
    for m in _ITEM.finditer(text):
        rest = m.group(5)
        if _LOWER_START.match(rest) or rest.startswith(("of ", "and ", "in ")):
            continue  # a cross-reference that happens to start a line: "Item 7 of this report"
        num, sub, letter = int(m.group(2)), int(m.group(3) or 0), (m.group(4) or "").upper()
        if not 1 <= num <= 16:
            continue
        name = f"Item {num}{'.%02d' % sub if m.group(3) else ''}{letter}"
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        out.append(_Candidate(start, (num, sub, letter), name, _page_of(starts, m.start()),
                              _title_after(text, m.end(), rest)))
    for m in _ITEM_INLINE.finditer(text):
        num, sub, letter = int(m.group(2)), int(m.group(3) or 0), (m.group(4) or "")
        if 1 <= num <= 16:
            name = f"Item {num}{'.%02d' % sub if m.group(3) else ''}{letter}"
            out.append(_Candidate(m.start(1), (num, sub, letter), name, _page_of(starts, m.start(1)),
                                  m.group(5).strip()))
    return sorted(out, key=lambda c: c.start)


def _part_candidates(text: str, starts: Sequence[int]) -> list[_Candidate]:
    out = []
    for m in _PART.finditer(text):
        rest = m.group(2)
        if _LOWER_START.match(rest) or rest.startswith(("of ", "and ", "in ")):
            continue
        start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
        roman = m.group(1).upper()
        out.append(_Candidate(start, (_ROMAN[roman],), f"PART {roman}", _page_of(starts, m.start())))
    return out


def _is_heading_title(title: str) -> bool:
    words = title.split()
    if not words or len(words) > 14 or len(title) > 110:
        return False
    if title.endswith(".") and len(words) > 8:
        return False  # a sentence, not a title
    return title[0].isupper() or title[0].isdigit()


def _note_candidates(text: str, starts: Sequence[int], lo: int, hi: int) -> list[_Candidate]:
    """Notes as ``Note 7 — Income Taxes``; else, if that finds fewer than three, ``7. Income Taxes``."""
    def collect(pattern: re.Pattern, prefix_required: bool) -> list[_Candidate]:
        out = []
        for m in pattern.finditer(text, lo, hi):
            num = int(m.group(1))
            title = _title_after(text, m.end(), m.group(2) or "")
            if not 1 <= num <= 40 or (title and not _is_heading_title(title)):
                continue
            if not prefix_required and (not title or title.endswith((".", ",", ";", ":"))):
                continue  # a bare "7." numbered line must carry a title-like heading
            start = m.start() + (len(m.group(0)) - len(m.group(0).lstrip()))
            name = f"Note {num}" + (f" — {title}" if title else "")
            out.append(_Candidate(start, (num,), name, _page_of(starts, m.start())))
        return out

    def consecutive(a: _Candidate, b: _Candidate) -> bool:
        return b.key[0] in (a.key[0] + 1, a.key[0] + 2)

    def starts_at_one(chain: list[_Candidate]) -> list[_Candidate]:
        return chain if chain and chain[0].key[0] <= 2 and len(chain) >= 3 else []

    chain = starts_at_one(_chain(collect(_NOTE, True), consecutive, hi))
    if not chain:
        chain = starts_at_one(_chain(collect(_NUMBERED, False), consecutive, hi))
    return chain


def _running_lines(text: str, starts: Sequence[int]) -> set[str]:
    """Lines repeated (digits ignored) at the top or bottom of many pages: running headers and footers."""
    if len(starts) < 4:
        return set()
    seen: Counter[str] = Counter()
    bounds = [*starts, len(text)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        lines = [ln.strip() for ln in text[a:b].split("\n") if ln.strip()]
        seen.update({_DIGITS.sub("#", ln.lower()) for ln in lines[:3] + lines[-3:]})
    return {ln for ln, k in seen.items() if k >= max(3, len(starts) // 5)}


def _sub_headings(text: str, lo: int, hi: int, running: set[str]) -> list[tuple[int, str]]:
    """Short lines that read as headings: ALL CAPS, or Title Case without a final period."""
    out = []
    pos = lo
    for line in text[lo:hi].split("\n"):
        s = line.strip(" \t\xa0\f")
        here = pos + (len(line) - len(line.lstrip(" \t\xa0\f")))
        pos += len(line) + 1
        if not (4 <= len(s) <= 90) or "\t" in s or s.endswith((",", ";", ":", ".")):
            continue
        letters = [c for c in s if c.isalpha()]
        if len(letters) < 4 or len(letters) < 0.6 * len(s.replace(" ", "")):
            continue
        if _DIGITS.sub("#", s.lower()) in running:
            continue
        words = [w for w in s.split() if w[0].isalpha()]
        if s.isupper() or (2 <= len(words) <= 10 and all(w[0].isupper() for w in words if len(w) > 3)
                           and words[0][0].isupper()):
            out.append((here, s[:120]))
    return out


def _page_top(text: str, starts: Sequence[int], pos: int, running: set[str]) -> int:
    """Where a heading's section begins: the page start when only running headers precede it there."""
    page_start = starts[_page_of(starts, pos)]
    before = [ln.strip(" \t\xa0\f") for ln in text[page_start:pos].split("\n")]
    if all(not ln or _DIGITS.sub("#", ln.lower()) in running for ln in before):
        return page_start
    return pos


def find_headings(doc: Document) -> list[Heading]:
    text, starts = doc.text, doc.page_starts or (0,)
    running = _running_lines(text, starts)
    items = _item_candidates(text, starts)
    parts = _part_candidates(text, starts)
    toc = _toc_pages(text, starts, items)
    items = [c for c in items if c.page not in toc]
    parts = [c for c in parts if c.page not in toc]

    part_chain = _chain(parts, lambda a, b: b.key > a.key, len(text))
    # A 10-K numbers its Items through the Parts (1 … 16); a 10-Q restarts in Part II (1 … 6), so
    # there the Part is part of the order.
    if any(c.key[0] >= 7 for c in items) or any(c.key[1] for c in items):
        keyed = items
    else:
        def part_of(pos: int) -> int:
            return max((c.key[0] for c in part_chain if c.start <= pos), default=0)

        keyed = [_Candidate(c.start, (part_of(c.start), *c.key), c.title, c.page, c.heading) for c in items]
    item_chain = _chain(keyed, lambda a, b: b.key > a.key, len(text))

    # A Part heading and the Item right under it open one section (the Part's own line is no section).
    part_starts = {c.start: _page_top(text, starts, c.start, running) for c in part_chain}
    item_starts: dict[int, int] = {}
    last = -1
    for c in item_chain:
        begin = _page_top(text, starts, c.start, running)
        prev = max((p for p in part_starts if p < c.start), default=None)
        if prev is not None and c.start - prev < 300 and text.count("\n", prev, c.start) <= 3:
            begin = part_starts[prev]
        # every Item is a boundary: one that would begin where the Item before it does (both right under a Part,
        # or both preceded on their page only by running lines) begins on its own line
        item_starts[c.start] = last = begin if begin > last else c.start

    headings = [Heading(part_starts[c.start], 1, c.title) for c in part_chain]
    headings += [Heading(item_starts[c.start], 2, c.title, hard=True) for c in item_chain]

    # Notes live in the financial statements: Item 8 of a 10-K (or Item 15 when Item 8 points
    # there), Part I Item 1 of a 10-Q, or anywhere in a filing without Items.
    bounds = [c.start for c in item_chain] + [len(text)]
    notes: list[_Candidate] = []
    for i, c in enumerate(item_chain):
        if c.key[-3:] == (8, 0, "") or (keyed is not items and c.key == (1, 1, 0, "")):
            notes = _note_candidates(text, starts, c.start, bounds[i + 1])
            break
    if not notes:
        notes = _note_candidates(text, starts, 0, len(text))
    note_starts: list[int] = []
    for c in notes:  # as for Items: two notes never begin at one offset
        begin = _page_top(text, starts, c.start, running)
        note_starts.append(begin if not note_starts or begin > note_starts[-1] else c.start)
    headings += [Heading(b, 3, c.title, hard=True) for b, c in zip(note_starts, notes)]
    if notes:
        # The statements before the first note stay one section (the tree would otherwise open the
        # Item that holds the notes into its sub-headings): wrap them in a heading of their own,
        # named by the Item that holds them.
        owner = max((c for c in item_chain if c.start < notes[0].start), key=lambda c: c.start, default=None)
        if owner is not None:
            headings.append(Heading(item_starts[owner.start], 3, owner.heading or owner.title))

    taken = {h.start for h in headings}
    headings += [Heading(pos, 4, title) for pos, title in _sub_headings(text, 0, len(text), running)
                 if pos not in taken]
    return sorted(headings, key=lambda h: (h.start, h.level))
