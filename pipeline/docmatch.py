"""Which stored documents a question names: company, party or patient, fiscal year, form.

A question such as "What was Adobe's operating cash flow ratio in FY2015?" names a company and a
fiscal year; every Adobe 10-K mentions 2015 in some table, so neither dense nor lexical passage
search can tell the 2015 filing from the 2016 one. Document metadata (``ingest.metadata``) can: the
documents whose names the question mentions are kept (the best-matching names only), and those
among them whose fiscal year (and form) the question names are ranked first: every section of the
named period's filing above every section of the company's other filings, which are still searched
(a filing's comparatives hold earlier years). A question about what is expected for a year also takes
the year before it (an earnings release for fiscal 2022 is where "is growth expected to accelerate in
FY2023?" is answered). A question naming a year no stored filing covers gets a notice saying so.
A question naming nothing is searched everywhere.

>>> focus = match_documents("Adobe's FY2015 revenue?", profiles)
>>> focus.doc_ids, focus.tiers, focus.reason
(['ADOBE_2015_10K', 'ADOBE_2016_10K'], {'ADOBE_2015_10K': 0, 'ADOBE_2016_10K': 8},
 'names adobe systems; fiscal year 2015; ranked below every section of that period: ADOBE_2016_10K')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_SUFFIXES = {"inc", "incorporated", "corp", "corporation", "co", "company", "plc", "ltd", "limited", "llc", "lp",
             "holdings", "group", "the", "sa", "nv", "ag", "gmbh", "bv", "trust", "of", "and", "mr", "mrs", "ms",
             "dr"}
_FORMS = {"10-k": "10-K", "10k": "10-K", "10-q": "10-Q", "10q": "10-Q", "8-k": "8-K", "8k": "8-K",
          "annual report": "10-K", "quarterly report": "10-Q", "earnings release": "earnings"}


def name_tokens(name: str) -> list[str]:
    """Significant lower-case tokens of a name: ``"BEST BUY CO., INC."`` → ``["best", "buy"]``."""
    return [w for w in re.findall(r"[a-z0-9]+", name.lower().replace("&", " ")) if w not in _SUFFIXES]


@dataclass(frozen=True, slots=True)
class DocProfile:
    """What a question can name about one document."""

    doc_id: str
    names: tuple[tuple[str, ...], ...]
    """Token lists of the organisations or people the document is about (registrant, parties, patient)."""
    years: tuple[str, ...]
    form: str = ""
    quarter: str = ""
    """The fiscal quarter a 10-Q or an earnings release reports on ("1" … "4"), or ""."""

    @classmethod
    def from_metadata(cls, doc_id: str, kind: str, title: str, meta: dict[str, str]) -> DocProfile:
        names = []
        for key in ("company", "parties", "ticker"):
            for name in meta.get(key, "").split(";"):
                if toks := name_tokens(name):
                    names.append(tuple(toks))
        if kind == "ehr" and (toks := name_tokens(re.sub(r"\d+", "", title))):
            names.append(tuple(toks))  # the patient: Synthea-style digits in names are not spoken
        # the year as the period's end names it and, where the company names it otherwise, as the company does
        years = tuple(dict.fromkeys(y for y in (meta.get("fiscal_year", ""), meta.get("fiscal_year_named", "")) if y))
        return cls(doc_id, tuple(names), years, meta.get("form", ""), meta.get("fiscal_quarter", ""))


@dataclass(frozen=True, slots=True)
class DocFocus:
    """The documents a question is restricted to (``None``: no restriction) and why."""

    doc_ids: list[str] | None
    reason: str = ""
    boosts: dict[str, float] = field(default_factory=dict)
    """Section-score multipliers for documents whose fiscal year or form the question names."""
    tiers: dict[str, int] = field(default_factory=dict)
    """Rank tier per document when the question names a period, quarter or form (lower first, every section of a
    tier above every section of the next): by fiscal year (the latest named year, another named year, another
    period: 0 / 4 / 8), then the named quarter (+2 for another), then the named form (+1 for another). Empty: rank
    by score alone."""
    notice: str = ""
    """Set when the question names a period no stored filing of the company covers: said in the answer."""


def question_years(question: str) -> set[str]:
    """Years a question names: ``2015``, ``FY2015``, ``FY15``, ``fiscal 2015``, and ranges."""
    years = set(re.findall(r"(?<![\d$.,])((?:19|20)\d\d)(?![\d%])", question))
    years |= {"20" + y for y in re.findall(r"\bFY'?(\d\d)\b", question, re.I)}
    # "FY2015 through FY2017", "2018-2020": the years between are named too
    for a, b in re.findall(r"((?:19|20)\d\d)\s*(?:through|to|until|[-–])\s*(?:FY\s*|fiscal\s+(?:year\s+)?)?((?:19|20)\d\d)",
                           question, re.I):
        if 0 < int(b) - int(a) <= 10:
            years |= {str(y) for y in range(int(a), int(b) + 1)}
    return years


_ORDINAL = {"first": "1", "second": "2", "third": "3", "fourth": "4", "1st": "1", "2nd": "2", "3rd": "3", "4th": "4"}


def question_quarter(question: str) -> str:
    """The fiscal quarter a question names: "Q2", "2Q", "second quarter", "quarter 2" → "2"; else ""."""
    if m := re.search(r"\bQ([1-4])\b|\b([1-4])Q\b|\bquarter\s+([1-4])\b", question, re.I):
        return next(g for g in m.groups() if g)
    if m := re.search(r"\b(first|second|third|fourth|1st|2nd|3rd|4th)[\s-]+(?:fiscal\s+)?quarter\b", question, re.I):
        return _ORDINAL[m.group(1).lower()]
    return ""


def _name_score(name: tuple[str, ...], q_tokens: set[str], q_proper: set[str]) -> float:
    """Share of a name's tokens in the question; its first token must appear as a proper noun
    (capitalised or a number), so "the target price" does not name a company called Target."""
    if not name or name[0] not in q_proper:
        return 0.0
    return sum(t in q_tokens for t in name) / len(name)


_FORWARD = re.compile(r"\b(?:forecast\w*|expect\w*|guidance|outlook|project(?:ed|ing|ion|ions)?|anticipat\w*|"
                      r"plan(?:s|ned)?\s+to|will|target(?:s|ed)?|predict\w*)\b", re.I)


def period_years(question: str) -> tuple[set[str], str]:
    """The fiscal years whose filings answer the question, and why: the years it names, and for a question about
    what is expected, forecast or planned for a year, the year before it too (a forecast of FY2023 is published in
    FY2022's reports)."""
    years = question_years(question)
    if years and _FORWARD.search(question):
        return years | {str(int(y) - 1) for y in years}, "forward-looking: the year before each named year too"
    return years, ""


def _rank_periods(question: str, kept: list[DocProfile], named: list[str], tiers: dict[str, int],
                  boosts: dict[str, float], reasons: list[str], boost: float) -> str:
    """Fills the fiscal-year tiers and boosts of the kept documents; returns the notice for a period no stored
    filing covers ("")."""
    years, why = period_years(question)
    if years:
        in_year = [p for p in kept if set(p.years) & years]
        if not in_year:
            stored = sorted({y for p in kept for y in p.years})
            reasons.append(f"no filing of fiscal {', '.join(sorted(years))}: all of the company's filings searched")
            return (f"No stored filing of {', '.join(named)} is for fiscal {', '.join(sorted(question_years(question)))}"
                    + (f" (stored: fiscal {', '.join(stored)})" if stored else "")
                    + "; this answer is read from the filings that are stored.")
        latest = max(y for p in in_year for y in set(p.years) & years)
        for p in kept:  # the period first, then the named quarter, then the named form (in match_documents)
            tiers[p.doc_id] = 4 * (0 if latest in p.years else 1 if set(p.years) & years else 2)
        for p in in_year:
            boosts[p.doc_id] = boost
        wrong = sorted(p.doc_id for p in kept if tiers[p.doc_id] == 8)
        reasons.append(f"fiscal year {', '.join(sorted(set(y for p in in_year for y in p.years) & years))}"
                       + (f" ({why})" if why else "")
                       + (f"; ranked below every section of that period: {', '.join(wrong)}" if wrong else ""))
    elif (filings := [p for p in kept if p.form and p.years]) and len({y for p in filings for y in p.years}) > 1:
        # a question about a company's filings that names no period asks about the latest one
        latest = max(y for p in filings for y in p.years)
        for p in filings:
            tiers[p.doc_id] = 0 if latest in p.years else 8
        older = sorted(p.doc_id for p in filings if tiers[p.doc_id] == 8)
        reasons.append(f"no period named: the latest, fiscal {latest}, first; ranked below it: {', '.join(older)}")
    return ""


def match_documents(question: str, profiles: Sequence[DocProfile], min_name_score: float = 0.5,
                    boost: float = 2.0) -> DocFocus:
    """The documents the question names, with the rank tier of each (see ``DocFocus.tiers``) and the reason."""
    q_tokens = set(name_tokens(question))
    q_proper = {w.lower() for w in re.findall(r"\b(?:[A-Z][\w]*|\d\w*)", question.replace("&", " "))}
    q_proper = {t for w in q_proper for t in re.findall(r"[a-z0-9]+", w)}
    scored = []
    for p in profiles:
        best = max((_name_score(n, q_tokens, q_proper) for n in p.names), default=0.0)
        if best >= min_name_score:
            scored.append((best, p))
    if not scored:
        return DocFocus(None)
    top = max(s for s, _ in scored)
    kept = [p for s, p in scored if s == top]
    named = sorted({" ".join(n) for p in kept for n in p.names if _name_score(n, q_tokens, q_proper) == top})
    reasons = [f"names {', '.join(named)}"]
    boosts: dict[str, float] = {}
    tiers: dict[str, int] = {}
    notice = _rank_periods(question, kept, named, tiers, boosts, reasons, boost)
    if (quarter := question_quarter(question)) and any(p.quarter == quarter for p in kept):
        for p in kept:
            if p.quarter != quarter:
                tiers[p.doc_id] = tiers.get(p.doc_id, 0) + 2
        reasons.append(f"quarter {quarter}")
    q_lower = question.lower()
    forms = {f for key, f in _FORMS.items() if re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", q_lower)}
    if forms and (of_form := [p for p in kept if p.form in forms]):
        for p in kept:
            if p.form not in forms:
                tiers[p.doc_id] = tiers.get(p.doc_id, 0) + 1
        for p in of_form:
            boosts[p.doc_id] = boosts.get(p.doc_id, 1.0) * boost
        reasons.append(f"form {', '.join(sorted(forms))}")
    return DocFocus(sorted(p.doc_id for p in kept), "; ".join(reasons), boosts, tiers, notice)
