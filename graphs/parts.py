"""The part of a selected clause a question asks for: its date, the document's title, or the parties.

A span question is answered with the clause the reader selects ("This Agency Agreement, dated November 9, 2005,
between General Electric Capital Corporation … and …"). When the question asks for one thing the clause holds — the
date of the contract, the name of the agreement, the parties who signed it — the answer is that part of the clause,
cited at its own offsets, not the whole sentence around it: a user asking for a date wants the date.

``asked_part`` reads what the question asks for from its form ("the date of the contract", "the name of the
contract", "the parties who signed"); ``part_spans`` finds it in a clause. Nothing found: the clause stays the answer.

>>> asked_part('Highlight the parts (if any) of this contract related to "Agreement Date". Details: The date of the contract')
'date'
>>> text = 'THIS AGENCY AGREEMENT, dated November 9, 2005 ("Agreement"), between Acme Capital Corporation ("Acme") and Beta, Inc.'
>>> [text[a:b] for a, b in part_spans("date", text, 0, len(text))]
['November 9, 2005']
>>> [text[a:b] for a, b in part_spans("title", text, 0, len(text))]
['AGENCY AGREEMENT']
>>> [text[a:b] for a, b in part_spans("parties", text, 0, len(text))]
['Acme Capital Corporation', 'Acme', 'Beta, Inc.']
"""

from __future__ import annotations

import re

_I = re.IGNORECASE
_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan\.?|Feb\.?|"
          r"Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)")
DATE = re.compile(r"\b" + _MONTH + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:1[6-9]|20)\d\d\b|"
                  r"\b\d{1,2}\s?(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?" + _MONTH + r",?\s+(?:1[6-9]|20)\d\d\b|"
                  r"\b[01]?\d/[0-3]?\d/(?:1[6-9]|20)?\d\d\b|\b(?:1[6-9]|20)\d\d-[01]\d-[0-3]\d\b", _I)
_DOC_NOUN = (r"(?:AGREEMENT|CONTRACT|AMENDMENT|ADDENDUM|LEASE|LICENSE|LICENCE|NOTE|PLAN|MEMORANDUM|GUARANTY|GUARANTEE|"
             r"UNDERTAKING|DEED|CHARTER|COVENANT|TERMS)")
TITLE = re.compile(r"\b(?:(?!THIS\b|THE\b)[A-Z][A-Z0-9&'’\-]*,?\s+){0,8}" + _DOC_NOUN + r"\b"
                   r"|\b(?:(?!This\b|The\b)[A-Z][\w&'’\-]*\s+){1,8}(?:Agreement|Contract|Amendment|License|Lease)\b")
_ENTITY_END = (r"(?:Inc\.?|Incorporated|LLC|L\.L\.C\.|Ltd\.?|Limited|Corporation|Corp\.?|Company|Co\.|L\.P\.|LP|LLP|"
               r"N\.\s?A\.?|plc|PLC|GmbH|AG|S\.A\.|B\.V\.|N\.V\.|Trust|Bank)")
ENTITY = re.compile(r"\b(?:(?:[A-Z][\w.&'’\-]*|&),?\s+){0,7}(?i:" + _ENTITY_END + r")(?![\w])")
ALIAS = re.compile(r"\(\s*(?:the\s+|each\s+a\s+|hereinafter\s+(?:referred\s+to\s+as\s+)?)?[\"“]([^\"”]{1,40})[\"”]")
_NOT_PARTY = re.compile(r"^(?:agreement|effective date|this agreement|schedule|amendment|exhibit|parties|party|"
                        r"closing date|term|territory|products?|services?)$", _I)


def asked_part(question: str) -> str | None:
    """``date``, ``title`` or ``parties`` when the question asks for that one thing, else None."""
    q = " ".join(question.split())
    details = q.split("Details:", 1)[1].strip() if "Details:" in q else q
    if re.match(r"(?:the\s+)?date\b(?! on which .* (?:expire|terminate))", details, _I) or re.search(
            r"\bwhat is the (?:\w+\s+)?date of (?:the|this) (?:contract|agreement)\b", q, _I):
        return "date"
    if re.search(r"\bthe name of the (?:contract|agreement|document)\b|\bwhat is the (?:contract|agreement)'s name\b", q, _I):
        return "title"
    if re.search(r"\bparties who (?:signed|entered|executed)\b|\bwho are the parties\b|\bwhich parties\b", q, _I):
        return "parties"
    return None


def part_spans(part: str, text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Offsets (in ``text``) of what ``part`` asks for inside the clause ``text[start:end]``: its first date, its
    first title, or every party it names (each entity and the short name it is given, in order, each once)."""
    if part == "date":
        m = DATE.search(text, start, end)
        return [(m.start(), m.end())] if m else []
    if part == "title":
        m = TITLE.search(text, start, end)
        return [(m.start(), m.end())] if m else []
    spans: list[tuple[int, int]] = []
    seen: set[str] = set()
    found = [(m.start(), m.end()) for m in ENTITY.finditer(text, start, end)]
    found += [(m.start(1), m.end(1)) for m in ALIAS.finditer(text, start, end)]
    for a, b in sorted(found):
        name = text[a:b].strip(" ,")
        described = re.search(r"\b(?:a|an)\s+$", text[max(start, a - 4):a], _I)  # "a Delaware corporation"
        if (name.lower() in seen or _NOT_PARTY.match(name) or not name[:1].isupper() or described
                or any(a < y and x < b for x, y in spans)):
            continue
        seen.add(name.lower())
        spans.append((a, a + len(text[a:b].rstrip(" ,"))))
    return spans
