"""Document metadata a question can name: who a document is about, what it is, and when.

Filings: the registrant (``company``), the form (``10-K``, ``10-Q``, ``8-K``, ``earnings``), the period end
and the fiscal year, read from the cover page the way the form defines them: the company is the name printed above
"(Exact name of registrant as specified in its charter)" (or below it, where a cover sets the label first), never a
neighbouring label's value ("Delaware" above "(State or other jurisdiction …)"); the form is the cover's
"FORM 10-K"; the period is "For the fiscal year / quarterly period ended …", an 8-K's "Date of report", an
earnings release's "… ended <date>"; the fiscal year is the calendar year in which the fiscal year ends (a
10-Q's quarter counts in the fiscal year it falls in, from its "six months ended …"). Each value carries its
confidence and where it was read (``<field>_from``: how, and ``[start:end]`` in the text); a company read with
less confidence than ``[ingest] metadata_min_confidence`` gives way to a surer reading (the name beside the
ticker, the organisation the filing names most). Contracts: the title, the parties and the date from the
preamble. EHRs carry the patient and date range from the FHIR reader already. Retrieval
(``pipeline.docmatch``) scopes and ranks by these when a question names them. Every field is optional: a cover
page that does not parse leaves the field out. ``python -m eval.metadata_accuracy`` measures the filing fields.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace
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


@dataclass(frozen=True, slots=True)
class Read:
    """One metadata value, how sure the reader is of it, and where in the text it was read."""

    value: str
    confidence: float
    how: str
    start: int
    end: int


ACCEPT = 0.5
"""A company read with less confidence than this gives way to a surer reading (``_company``)."""

_LABEL_WORDS = re.compile(
    r"\b(?:state|jurisdiction|incorporation|organi[sz]ation|address|telephone|employer|identification|commission|"
    r"file\s+n(?:umber|o)|registrant|transition|pursuant|report|act\s+of|securities|zip\s+code|area\s+code|"
    r"mark\s+one|form\s+10|washington|charter|exchange)\b|[()]|\d{2}-\d{5,}|^\W*$", re.I)
_SEGMENT = re.compile(r"\n|\t|_{3,}|\s{3,}")
_SMALL_CAPS = re.compile(r"\b([A-Z]) ([A-Z]{2,})\b")


def _clean_name(text: str) -> str:
    # a trailing comma ("SQUARE, INC.,") ends a cut-off line: its full stop goes too; otherwise "INC." keeps it
    name = re.sub(r"\s+", " ", text).strip(" ,;:.-_\"“”" if text.strip().endswith(",") else " ,;:-_\"“”")
    if name.isupper() or not re.search(r"[a-z]", name):
        name = _SMALL_CAPS.sub(r"\1\2", name)  # "MGM R ESORTS I NTERNATIONAL": small capitals extracted apart
    return name


def _name_part(segment: str) -> bool:
    """A piece of a name: letters, no label words, not a date (a legal suffix alone, "INC.", counts)."""
    return (not _LABEL_WORDS.search(segment) and bool(re.search(r"[A-Za-z]{2}", segment))
            and not re.search(_DATE, segment) and not re.fullmatch(r"[\W\d]*\d[\W\d]*", segment))


def _name_like(segment: str) -> bool:
    """A whole name: a name part with a significant word, short (a sentence is not a name)."""
    return _name_part(segment) and bool(_words(segment)) and len(segment) <= 80 and len(segment.split()) <= 8


def _segments(text: str, offset: int) -> list[tuple[str, int, int]]:
    """Non-blank pieces of ``text`` between line breaks, tabs, underscore rules and wide gaps, with offsets."""
    out, at = [], 0
    for m in [*_SEGMENT.finditer(text), None]:
        stop = m.start() if m else len(text)
        piece = text[at:stop]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            out.append((piece.strip(), offset + at + lead, offset + at + lead + len(piece.strip())))
        at = m.end() if m else len(text)
    return out


def _registrant(text: str) -> Read | None:
    """The registrant as the form defines it: the name printed above "(Exact name of registrant as specified in
    its charter)" (a name extracted one word per line is joined back), or, where the cover sets the label first,
    the first name-like line below it. A neighbouring label ("State of incorporation", an address) is never taken."""
    m = _REGISTRANT.search(text[:20000])
    if not m:
        return None
    lo = max(0, m.start() - 300)
    before = _segments(text[lo:m.start()], lo)
    picked: list[tuple[str, int, int]] = []
    for seg in reversed(before):
        if not _name_part(seg[0]):
            if picked or not re.fullmatch(r"[\W_]*", seg[0]):
                break
            continue
        if picked and (len(seg[0].split()) > 3 or len(picked[0][0].split()) > 3
                       or sum(len(p[0].split()) for p in picked) >= 6):
            break
        picked.insert(0, seg)
        if len(seg[0].split()) > 3:
            break
    if picked:
        name = _clean_name(" ".join(p[0] for p in picked))
        if _words(name):
            return Read(name, 0.95, "the name above “(Exact name of registrant as specified in its charter)”",
                        picked[0][1], picked[-1][2])
    label_end = text.find(")", m.end(), m.end() + 200)
    below = _segments(text[label_end + 1:label_end + 400], label_end + 1)[:4]
    for seg, after in zip(below, [*below[1:], ("", 0, 0)], strict=True):
        if re.match(r"\(|state\b|jurisdiction", after[0], re.I):
            continue  # "Delaware" above "(State or other jurisdiction …)" is that label's value, not the registrant
        if _name_like(seg[0]):
            return Read(_clean_name(seg[0]), 0.8, "the name below “Exact name of registrant as specified in its charter”",
                        seg[1], seg[2])
    return None


def _after_file_number(text: str) -> Read | None:
    m = _FILE_NUMBER.search(text[:4000])
    if not m:
        return None
    lines = _segments(text[m.end():m.end() + 600], m.end())
    for (line, a, b), after in zip(lines[:6], [*lines[1:7], ("", 0, 0)]):
        if after[0].startswith("(") or re.search(
                r"state\s+(?:or\s+other\s+jurisdiction|of\s+incorporation)|address\s+of\s+principal", after[0], re.I):
            continue  # "Delaware" above "(State or other jurisdiction …)" is that label's value, not the registrant
        if line[0].isalpha() and _name_like(line):
            return Read(_clean_name(line), 0.7, "the first name below the Commission file number", a, b)
    return None


def _most_named(text: str) -> Read | None:
    counts = Counter(name for m in _ORG.finditer(text)
                     if set(_words(name := re.sub(r"\s+", " ", m.group(0)))) - _GENERIC)
    if counts:
        name, n = counts.most_common(1)[0]
        if n >= 3:
            at = text.find(name) if name in text else 0
            return Read(name, 0.4, f"the organisation the document names most ({n} times)", at, at + len(name))
    return None


def _company(text: str, accept: float, ticker: re.Match | None) -> Read | None:
    candidates = [_registrant(text), _after_file_number(text)]
    if ticker:
        name = re.sub(r"^.*?[–—-]\s+", "", ticker.group(1)).strip(" ,")
        at = ticker.start(1) + ticker.group(1).find(name)
        candidates.append(Read(name, 0.6, f"the name before its ticker ({ticker.group(2)})", at, at + len(name)))
    candidates.append(_most_named(text[:400000]))
    found = [c for c in candidates if c]
    sure = [c for c in found if c.confidence >= accept]
    return sure[0] if sure else (found[0] if found else None)


_MONTHS_ELAPSED = {"three": 3, "six": 6, "nine": 9, "3": 3, "6": 6, "9": 9, "thirteen": 3, "twenty-six": 6,
                   "thirty-nine": 9, "13": 3, "26": 6, "39": 9}


def _elapsed(text: str, end: date) -> tuple[int, int, int] | None:
    """How many months of its fiscal year a report ending ``end`` covers, from "six months ended <end>", and where
    that was read."""
    date_re = rf"{_MONTH}\s+{end.day},?\s+{end.year}"
    found = [(_MONTHS_ELAPSED[m.group(1).lower()], m.start(), m.end()) for m in re.finditer(
        rf"\b(three|six|nine|thirteen|twenty-six|thirty-nine|3|6|9|13|26|39)[\s-]+(?:months|weeks)\s+ended\s+{date_re}",
        text[:200000], re.I)]
    return max(found, key=lambda f: (f[0], -f[1])) if found else None


def _fiscal_year_of_quarter(text: str, end: date, k: int | None) -> tuple[str, float, str]:
    """The fiscal year a quarter ending ``end`` belongs to, named as FinanceBench and most analysts name it: the
    calendar year in which that fiscal year ends. Read from the ``k`` months elapsed ("six months ended <end>": the
    year ends 12 − 6 months later) or, failing that, from the "fiscal YYYY" the report names most."""
    if k:
        months = end.month + (12 - k)
        year_end = date(end.year + (months - 1) // 12, (months - 1) % 12 + 1, 1)
        # a 52/53-week quarter ends a few days after its month: "July 2" closes June
        year = year_end.year - 1 if end.day <= 7 and year_end.month == 1 else year_end.year
        return str(year), 0.9, f"its {k} months ended {end.isoformat()}: the fiscal year ends {12 - k} months later"
    named = Counter(re.findall(r"\bfiscal\s+(?:year\s+)?((?:19|20)\d\d)\b", text[:200000], re.I))
    named = Counter({y: n for y, n in named.items() if y in (str(end.year), str(end.year + 1))})
    if named:
        return named.most_common(1)[0][0], 0.6, "the fiscal year the report names most"
    return str(end.year), 0.5, "the year of the period end"


def _named_fiscal_year(text: str, end: date, fiscal_year: str) -> Read | None:
    """The fiscal year as the company itself names it, where that differs from ``fiscal_year``: a year ending in
    January or February is "fiscal 2022" to some retailers and "fiscal 2023" to others ("Fourth Quarter Fiscal 2022
    Results … ended January 28, 2023"). Read as the "fiscal YYYY" printed within 400 characters before the period's
    end date on the first pages (a comparison deep in a report names other years), the year before the end's."""
    if end.month > 3:
        return None
    when = re.compile(rf"{_MONTH}\s+{end.day},?\s+{end.year}")
    for m in when.finditer(text[:6000]):
        window = text[max(0, m.start() - 400):m.start()]
        for y in re.finditer(r"\bfiscal\s+(?:year\s+)?((?:19|20)\d\d)\b", window, re.I):
            if y.group(1) == str(end.year - 1) and y.group(1) != fiscal_year:
                at = max(0, m.start() - 400) + y.start()
                return Read(y.group(1), 0.8, f"“{y.group(0)}” before the period's end, {end.isoformat()}: the "
                            "company's own name for the year", at, at + len(y.group(0)))
    return None


_QUARTERS = {"first": "1", "second": "2", "third": "3", "fourth": "4"}
_RELEASE_QUARTER = re.compile(r"\b(first|second|third|fourth)[\s-]+quarter\b|\bQ([1-4])\b", re.I)
_EARNINGS_PERIOD = re.compile(rf"(?:quarter|year|period|weeks)[^.]{{0,80}}?\bended\s+{_DATE}", re.I)


def read_filing(text: str, accept: float = ACCEPT) -> dict[str, Read]:
    """Each filing field read from the cover page as the form defines it, with its confidence and place; a company
    read with less confidence than ``accept`` gives way to a surer candidate (the first found where none is)."""
    head, cover = text[:20000], text[:4000]
    out: dict[str, Read] = {}
    ticker = _TICKER_NAME.search(head)
    if company := _company(text, accept, ticker):
        out["company"] = company
    if ticker:
        out["ticker"] = Read(ticker.group(2), 0.9, "the ticker beside the company's name", ticker.start(2), ticker.end(2))
    if m := _FORM.search(cover):
        out["form"] = Read(m.group(1).upper(), 0.95, "“FORM …” on the cover page", m.start(), m.end())
    elif m := re.search(r"\bannounce[sd]?\b[^.]{0,80}\bresults\b", head, re.I):
        out["form"] = Read("earnings", 0.7, "an announcement of results (an earnings release)", m.start(), m.end())
    form = out["form"].value if "form" in out else ""
    period = None
    if form == "earnings":
        if m := _EARNINGS_PERIOD.search(head[:3000]):
            period = (m, 0.8, "the period the release reports on")
    elif m := _PERIOD.search(cover):
        period = (m, 0.95, "“For the fiscal year / quarterly period ended …” on the cover page")
    elif m := _REPORT_DATE.search(cover):
        period = (m, 0.9, "“Date of report” on the cover page")
    end = _iso(*period[0].groups()[-3:]) if period else None
    if period and end:
        m, conf, how = period
        out["period_end"] = Read(end, conf, how, m.start(), m.end())
        if form == "10-Q":
            elapsed = _elapsed(text, date.fromisoformat(end))
            year, c, why = _fiscal_year_of_quarter(text, date.fromisoformat(end), elapsed[0] if elapsed else None)
            out["fiscal_year"] = Read(year, min(conf, c), why, m.start(), m.end())
            if elapsed:
                k, a, b = elapsed
                out["fiscal_quarter"] = Read(str(k // 3), 0.9, f"its {k} months ended {end}", a, b)
        else:
            out["fiscal_year"] = Read(end[:4], conf, "the year its fiscal year or period ends", m.start(), m.end())
        if named := _named_fiscal_year(text, date.fromisoformat(end), out["fiscal_year"].value):
            out["fiscal_year_named"] = named
    elif form == "earnings" and (m := _ANNOUNCE_YEAR.search(head)):
        out["fiscal_year"] = Read(m.group(1), 0.5, "the year the announcement names", m.start(1), m.end(1))
    if form == "earnings" and (m := _RELEASE_QUARTER.search(head[:3000])):
        quarter = _QUARTERS.get((m.group(1) or "").lower()) or m.group(2)
        out["fiscal_quarter"] = Read(quarter, 0.8, "the quarter the release announces", m.start(), m.end())
    return out


def filing_metadata(text: str, accept: float = ACCEPT) -> dict[str, str]:
    """The filing's fields (``company``, ``ticker``, ``form``, ``period_end``, ``fiscal_year``, ``fiscal_quarter``
    for a 10-Q or an earnings release) and, for each,
    ``<field>_from`` (how and where it was read: ``… [start:end]``) and ``<field>_confidence``."""
    meta: dict[str, str] = {}
    for key, r in read_filing(text, accept).items():
        meta[key] = r.value
        meta[f"{key}_from"] = f"{r.how} [{r.start}:{r.end}]"
        meta[f"{key}_confidence"] = f"{r.confidence:.2f}"
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


def with_metadata(doc: Document, accept: float = ACCEPT) -> Document:
    """``doc`` with the metadata its kind allows added (fields it already has win)."""
    if doc.kind == "filing":
        found = filing_metadata(doc.text, accept)
    elif doc.kind == "contract":
        found = contract_metadata(doc.text)
    elif doc.kind == "generic":
        # an earnings release or exhibit the filing detector did not claim: keep what names a company
        found = filing_metadata(doc.text, accept)
        if "ticker" not in found and "form" not in found:
            return doc
    else:
        return doc
    merged = dict(found) | dict(doc.metadata)
    if not doc.title and (title := merged.get("title") or merged.get("company")):
        doc = replace(doc, title=title)
    return replace(doc, metadata=tuple(sorted(merged.items())))
