"""Document metadata a question can name: who a document is about, what it is, and when.

Filings: the registrant (``company``), the form (``10-K``, ``10-Q``, ``8-K``, ``earnings``), the period end
and the fiscal year, read from the cover page (or an earnings release's dateline). Contracts: the
title, the parties and the date from the preamble. EHRs carry the patient and date range from the
FHIR reader already. Retrieval (``pipeline.docmatch``) filters and boosts by these when a question
names them. Every field is optional: a cover page that does not parse leaves the field out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import date

from pipeline.types import Document

_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], start=1)}
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = rf"({_MONTH})\s+(\d{{1,2}}),?\s+(\d{{4}})"
_DAY_OF = rf"(\d{{1,2}})(?:st|nd|rd|th)?\s+day\s+of\s+({_MONTH}),?\s+(\d{{4}})"

_PERIOD = re.compile(rf"(?:fiscal\s+year|quarterly\s+period|period)\s+ended[\s:]*(?:[A-Za-z ]{{0,30}}\n)?\s*{_DATE}", re.I)
_REPORT_DATE = re.compile(rf"Date\s+of\s+report[^:]{{0,60}}:\s*{_DATE}", re.I)
_REGISTRANT = re.compile(r"\(\s*Exact\s+name\s+of\s+(?:the\s+)?registrant", re.I)
_TICKER_NAME = re.compile(r"([A-Z][\w&.,'’\- ]{1,60}?)\s*\(\s*(?:NYSE|NASDAQ|Nasdaq|NYSE American)\s*:\s*([A-Z.]{1,6})\s*\)")
_BOILERPLATE = re.compile(r"transition|commission|file number|report|pursuant|act of|registrant|jurisdiction", re.I)
_FILE_NUMBER = re.compile(r"Commission\s+File\s+(?:Number|No\.?)\s*:?\s*[\d-]+", re.I)
_ORG = re.compile(r"\b(?:The\s+)?(?:[A-Z][\w&\-]*\s+){1,3}(?:Company|Inc\.|Corporation|Incorporated)")
_GENERIC = {"our", "this", "such", "each", "any", "other", "parent", "operating", "holding"}
_FORM = re.compile(r"FORM\s+(10-K|10-Q|8-K)\b", re.I)
_ANNOUNCE_YEAR = re.compile(r"(?:quarter|full[- ]year|fiscal)[^.]{0,60}?\b((?:19|20)\d\d)\b", re.I)

_BETWEEN = re.compile(r"\b(?:by\s+and\s+)?(?:between|among)\b\s*:?", re.I)
_AND = re.compile(r"\s(?:and|AND)\s+(?:between\s+)?|\n\s*(?:\d\)|\(?[b-z]\))\s*")
_PARTY_END = re.compile(r"\s*\(|,\s+(?:a|an|having|with|located|whose|its|each|together)\s|,\s+(?:LLC|Inc)\b(?=\s*\()|\s+(?:and|AND)\s+|\n|[.;]\s")
_TITLE = re.compile(r"^[^a-z\n]{0,80}\b(?:AGREEMENT|CONTRACT|LICENSE|LEASE|AMENDMENT|POWER OF ATTORNEY)\b[^a-z\n]{0,40}$", re.M)
_CONTRACT_DATE = re.compile(rf"(?:dated|effective|entered\s+into|made)[^.]{{0,80}}?(?:{_DATE}|{_DAY_OF})", re.I)

_SUFFIXES = {"inc", "incorporated", "corp", "corporation", "co", "company", "plc", "ltd", "limited", "llc", "lp",
             "holdings", "group", "the", "sa", "nv", "ag", "gmbh", "bv", "trust", "of", "and"}


def _iso(month: str, day: str, year: str) -> str | None:
    try:
        return date(int(year), _MONTHS[month.lower()], int(day)).isoformat()
    except (ValueError, KeyError):
        return None


def _words(name: str) -> list[str]:
    """Lower-case words of a name without legal suffixes (``"BEST BUY CO., INC."`` → best, buy)."""
    return [w for w in re.findall(r"[a-z0-9]+", name.lower().replace("&", " ")) if w not in _SUFFIXES]


def _registrant(head: str) -> str | None:
    m = _REGISTRANT.search(head)
    if not m:
        return None
    before = head[max(0, m.start() - 300):m.start()]
    lines = [ln.strip(" \t_-") for ln in re.split(r"[\n\r]|\s{3,}", before) if ln.strip(" \t_-")]
    for line in reversed(lines[-3:]):
        if _words(line) and not _BOILERPLATE.search(line):
            return re.sub(r"\s+", " ", line)
    return None


def _after_file_number(head: str) -> str | None:
    m = _FILE_NUMBER.search(head)
    if not m:
        return None
    lines = [ln.strip() for ln in head[m.end():m.end() + 400].splitlines()[1:8] if ln.strip()]
    for line, after in zip(lines, lines[1:] + [""]):
        if re.search(r"state\s+(?:or\s+other\s+jurisdiction|of\s+incorporation)|address\s+of\s+principal", after, re.I):
            continue  # "Delaware" above "(State or other jurisdiction …)" is not the registrant
        if line[0].isalpha() and _words(line) and not _BOILERPLATE.search(line) and not re.search(r"\d{2}-\d{5,}", line):
            return re.sub(r"\s+", " ", line)
    return None


def _most_named(text: str) -> str | None:
    counts = Counter(name for m in _ORG.finditer(text)
                     if set(_words(name := re.sub(r"\s+", " ", m.group(0)))) - _GENERIC)
    if counts:
        name, n = counts.most_common(1)[0]
        if n >= 3:
            return name
    return None


def filing_metadata(text: str) -> dict[str, str]:
    head, cover = text[:20000], text[:4000]
    meta: dict[str, str] = {}
    ticker = _TICKER_NAME.search(head)
    if company := _registrant(head) or _after_file_number(cover):
        meta["company"] = company
    elif ticker:
        meta["company"] = re.sub(r"^.*?[–—-]\s+", "", ticker.group(1)).strip(" ,")
    elif company := _most_named(text[:400000]):
        meta["company"] = company
    if ticker:
        meta["ticker"] = ticker.group(2)
    if m := _FORM.search(cover):
        meta["form"] = m.group(1).upper()
    elif re.search(r"\bannounce[sd]?\b[^.]{0,80}\bresults\b", head, re.I):
        meta["form"] = "earnings"
    end = None
    if meta.get("form") == "earnings":
        pass
    elif m := _PERIOD.search(cover):
        end = _iso(*m.groups())
    elif m := _REPORT_DATE.search(cover):
        end = _iso(*m.groups())
    if end:
        meta["period_end"] = end
        meta["fiscal_year"] = end[:4]
    elif meta.get("form") == "earnings" and (m := _ANNOUNCE_YEAR.search(head)):
        meta["fiscal_year"] = m.group(1)
    return meta


def _party(fragment: str) -> str | None:
    """The leading name of a preamble fragment, up to its description (``, a Delaware …``, ``("Buyer")``)."""
    fragment = re.sub(r"^\s*(?::|\d\)|\(?[a-z]\))?\s*", "", fragment)
    name = _PARTY_END.split(fragment, maxsplit=1)[0].strip(" ,;:\"“”")
    name = re.sub(r"\s+", " ", name)
    if not name or len(name) > 80 or not name[0].isupper() or not _words(name):
        return None
    return name


def _parties(head: str) -> list[str]:
    m = _BETWEEN.search(head)
    if not m:
        return []
    rest = head[m.end():m.end() + 1500]
    first = _party(rest)
    second = None
    if first:
        for sep in _AND.finditer(rest[len(first):]):
            second = _party(rest[len(first) + sep.end():])
            if second:
                break
    names = [p for p in (first, second) if p]
    return [p for i, p in enumerate(names) if _words(p) not in [_words(q) for q in names[:i]]]


def contract_metadata(text: str) -> dict[str, str]:
    head = text[:6000]
    meta: dict[str, str] = {}
    if m := _TITLE.search(head[:3000]):
        meta["title"] = re.sub(r"\s+", " ", m.group(0)).strip()
    if parties := _parties(head):
        meta["parties"] = "; ".join(parties)
    if m := _CONTRACT_DATE.search(head):
        g = m.groups()
        iso = _iso(g[0], g[1], g[2]) if g[0] else _iso(g[4], g[3], g[5])
        if iso:
            meta["date"] = iso
            meta["fiscal_year"] = iso[:4]
    return meta


def with_metadata(doc: Document) -> Document:
    """``doc`` with the metadata its kind allows added (fields it already has win)."""
    if doc.kind == "filing":
        found = filing_metadata(doc.text)
    elif doc.kind == "contract":
        found = contract_metadata(doc.text)
    elif doc.kind == "generic":
        # an earnings release or exhibit the filing detector did not claim: keep what names a company
        found = filing_metadata(doc.text)
        if "ticker" not in found and "form" not in found:
            return doc
    else:
        return doc
    merged = dict(found) | dict(doc.metadata)
    if not doc.title and (title := merged.get("title") or merged.get("company")):
        doc = replace(doc, title=title)
    return replace(doc, metadata=tuple(sorted(merged.items())))
