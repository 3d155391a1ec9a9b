"""Cross-references: "Section 9.2", "paragraph 16(J)", "Article IV", "Item 7", "Note 12", "Exhibit B".

A clause that says "subject to Section 9.2" or a 10-K paragraph that says "see Note 12" is only half
of the answer; the other half is the referenced unit of the same document. ``find_references`` reads
the references in a section's text; ``resolve`` finds where the referenced unit's heading is in the
document (a heading, not another mention: at a line or sentence start, followed by a capitalised
title) and returns the section holding it.

>>> refs = find_references(section.text)                  # [Reference(kind="section", label="9.2", ...)]
>>> target = resolve(refs[0], document_text, sections)     # the Section whose span holds "9.2 Termination"
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.types import Section

_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}

# kind → words that introduce it; the label that follows is a number, dotted number, roman numeral or letter
_KINDS = {
    "section": r"Sections?|§§?|[Pp]aragraphs?|[Cc]lauses?",
    "article": r"Articles?|ARTICLES?",
    "item": r"Items?|ITEMS?",
    "note": r"Notes?|NOTES?",
    "exhibit": r"Exhibits?|EXHIBITS?|Schedules?|SCHEDULES?|Annex(?:es)?|ANNEX|Appendix|APPENDIX|Attachments?",
}
_LABEL = r"(?:\d+(?:\.\d+)*[A-Z]?|[IVXLC]+\b|[A-Z](?:-\d+)?\b)"
_REF = re.compile(rf"\b(?P<word>{'|'.join(_KINDS.values())})\s+(?P<label>{_LABEL})(?:\s*\([a-zA-Z0-9]+\))*", re.M)
_HEADING_AFTER = re.compile(r"\s*[.:\-–—]?\s+[A-Z][\w'’,&\- ]{3}")
_WORD_KIND = [(kind, re.compile(rf"^(?:{words})$")) for kind, words in _KINDS.items()]
_HEAD_WORD = {"section": r"(?:Section|SECTION|§)\s*", "article": r"(?:Article|ARTICLE)\s+", "item": r"(?:Item|ITEM)\s+",
              "note": r"(?:Note|NOTE)\s+", "exhibit": r"(?:Exhibit|EXHIBIT|Schedule|SCHEDULE|Annex|ANNEX|Appendix|APPENDIX|Attachment|ATTACHMENT)\s+"}


@dataclass(frozen=True, slots=True)
class Reference:
    """One mention of another unit: ``kind`` (section, article, item, note, exhibit), its ``label``
    ("9.2", "IV", "7A", "B"), the words used (``text``) and where they are (offsets into the text read)."""

    kind: str
    label: str
    text: str
    start: int
    end: int

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.label.upper()


def _roman(label: str) -> int | None:
    s = label.lower()
    if not s or any(c not in _ROMAN for c in s):
        return None
    total = 0
    for a, b in zip(s, s[1:] + " "):
        v = _ROMAN[a]
        total += -v if b in _ROMAN and _ROMAN[b] > v else v
    return total


# the kinds of reference that point inside a document of each kind ("Section 13" of a 10-K is the
# Exchange Act's, not a heading of the filing)
KINDS_BY_DOC = {"filing": ("item", "note", "exhibit"), "contract": ("section", "article", "exhibit")}


def find_references(text: str, kinds: Sequence[str] | None = None) -> list[Reference]:
    """References in ``text``, first mention of each unit only, in order of appearance.

    A unit's own heading is not a reference to it, and neither is a list of them: mentions with two
    others within 150 characters are a table of contents or a list of exhibits, and are skipped.
    """
    found: list[Reference] = []
    for m in _REF.finditer(text):
        word, label = m.group("word"), m.group("label")
        kind = next(k for k, pat in _WORD_KIND if pat.match(word))
        if kinds is not None and kind not in kinds:
            continue
        if kind in ("section", "item", "note") and not label[0].isdigit():
            continue  # "Section A" is rare, "Notes I" is prose; "Exhibit B" and "Article IV" are not
        if kind == "article" and label[0].isalpha() and _roman(label) is None:
            continue
        at_line_start = not text[text.rfind("\n", 0, m.start()) + 1:m.start()].strip()
        if _HEADING_AFTER.match(text, m.end()) and (at_line_start or text[max(0, m.start() - 2):m.start()] == "  "):
            continue  # "ITEM 7.  MANAGEMENT'S DISCUSSION" is the unit's own heading, not a reference to it
        found.append(Reference(kind, label, m.group(0), m.start(), m.end()))
    starts = [r.start for r in found]
    out: dict[tuple[str, str], Reference] = {}
    for i, ref in enumerate(found):
        near = sum(1 for j, s in enumerate(starts) if j != i and abs(s - ref.start) <= 150)
        if near < 2:
            out.setdefault(ref.key, ref)
    return list(out.values())


def _label_alternatives(ref: Reference) -> list[str]:
    """Spellings of a label in headings: "4" also as "IV" for articles, and the reverse."""
    alts = [ref.label]
    if ref.kind == "article":
        if ref.label.isdigit():
            n = int(ref.label)
            roman = "".join(r * c for r, c in _roman_digits(n))
            alts.append(roman)
        elif (n := _roman(ref.label)) is not None:
            alts.append(str(n))
    return alts


def _roman_digits(n: int) -> list[tuple[str, int]]:
    out = []
    for value, sym in ((100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        count, n = divmod(n, value)
        if count:
            out.append((sym, count))
    return out


_HEADING_TAIL = r"(?!\w|\.\d)\s*[.:)\-–—]?\s*(?=[A-Z\"“(])"
# the headings of each kind, whatever their label; sections and articles may also stand bare ("9.2 Term").
# These match from the word on; where the match may start is checked apart (``_starts_heading``): a
# look-behind tried at every offset of a megabyte filing is what made the scan slow.
_HEADINGS = {kind: re.compile(rf"{word}(?P<label>{_LABEL}){_HEADING_TAIL}") for kind, word in _HEAD_WORD.items()}
_BARE_HEADING = re.compile(rf"(?<![\w.])(?P<label>\d+(?:\.\d+)*[A-Z]?){_HEADING_TAIL}")


def _starts_heading(text: str, at: int) -> bool:
    """Whether a heading may start at ``at``: after optional spaces or tabs that follow a line start,
    a sentence end (``.``, ``;`` or ``:`` and a space) or a run of two whitespace characters."""
    p = at
    while True:
        if p == 0 or text[p - 1] == "\n":
            return True
        if p >= 2 and text[p - 1].isspace() and (text[p - 2] in ".;:" or text[p - 2].isspace()):
            return True
        if text[p - 1] not in " \t":
            return False
        p -= 1


def heading_index(text: str, kind: str) -> dict[str, list[int]]:
    """Every heading of ``kind`` in ``text``: label as written → offsets where its headings start.

    One pass over the document serves every reference of that kind to it (a long filing cites dozens
    of Notes and Items; looking each up with its own pass over a megabyte of text took seconds).
    A heading stands at a line start or after a sentence end (or a run of spaces, as in one-line
    contract texts), introduced by its word ("Section", "NOTE") — for sections and articles the word
    may be left out before a number — and is followed by a capitalised title, not by "of our Notes"
    or "hereof".
    """
    found: dict[str, list[int]] = {}
    patterns = [_HEADINGS[kind]] + ([_BARE_HEADING] if kind in ("section", "article") else [])
    for pattern in patterns:
        for m in pattern.finditer(text):
            if not _starts_heading(text, m.start()):
                continue
            after = text[m.end():m.end() + 40]
            if re.match(r"(?:of|to|for|and|in|hereof|above|below)\b", after):
                continue
            found.setdefault(m.group("label"), []).append(m.start())
    for starts in found.values():
        starts.sort()
    return found


def heading_positions(ref: Reference, text: str, index: dict[str, list[int]] | None = None) -> list[int]:
    """Offsets in ``text`` where the referenced unit's heading starts (``index``: ``heading_index``
    of ``text`` for ``ref.kind``, when the caller keeps one)."""
    if index is None:
        index = heading_index(text, ref.kind)
    bare_ok = ref.kind in ("section", "article") and ref.label[0].isdigit()
    out: set[int] = set()
    for label in _label_alternatives(ref):
        for start in index.get(label, ()):
            if bare_ok or not text[start].isdigit():
                out.add(start)
    return sorted(out)


def resolve(ref: Reference, doc_text: str, sections: Sequence[Section], *, exclude: Sequence[Section] = (),
            index: dict[str, list[int]] | None = None) -> Section | None:
    """The section holding the heading ``ref`` points to, or ``None`` when no heading is found.

    Tables of contents list every heading in a few lines, so positions followed by another heading of
    the same kind within 150 characters are skipped. Items, notes and exhibits take the last heading
    left (a table of contents or cover list comes first); sections and articles the first.
    """
    positions = heading_positions(ref, doc_text, index)
    if not positions:
        return None
    any_heading = re.compile(rf"{_HEAD_WORD[ref.kind]}{_LABEL}|(?:^|\s\s)\d+(?:\.\d+)+\s", re.M)
    body = [p for p in positions if not any_heading.search(doc_text, p + 3, p + 150)] or positions
    ordered = body[::-1] if ref.kind in ("item", "note", "exhibit") else body
    excluded = {s.id for s in exclude}
    target = next((s for s in sections if s.start <= ordered[0] < s.end), None)
    return None if target is None or target.id in excluded else target
