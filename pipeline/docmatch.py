"""Which stored documents a question names: company, party or patient, fiscal year, form.

A question such as "What was Adobe's operating cash flow ratio in FY2015?" names a company and a
fiscal year; every Adobe 10-K mentions 2015 in some table, so neither dense nor lexical passage
search can tell the 2015 filing from the 2016 one. Document metadata (``ingest.metadata``) can: the
documents whose names the question mentions are kept (the best-matching names only), and those
among them whose fiscal year (and form) the question names are boosted. A boost, not a filter: an
earnings release for fiscal 2022 is where "is growth expected to accelerate in FY2023?" is
answered. A question naming nothing is searched everywhere.

>>> focus = match_documents("Adobe's FY2015 revenue?", profiles)
>>> focus.doc_ids, focus.boosts, focus.reason
(['ADOBE_2015_10K', 'ADOBE_2016_10K'], {'ADOBE_2015_10K': 2.0}, 'names adobe systems; fiscal year 2015')
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

    @classmethod
    def from_metadata(cls, doc_id: str, kind: str, title: str, meta: dict[str, str]) -> DocProfile:
        names = []
        for key in ("company", "parties", "ticker"):
            for name in meta.get(key, "").split(";"):
                if toks := name_tokens(name):
                    names.append(tuple(toks))
        if kind == "ehr" and (toks := name_tokens(re.sub(r"\d+", "", title))):
            names.append(tuple(toks))  # the patient: Synthea-style digits in names are not spoken
        years = tuple(y for y in (meta.get("fiscal_year", ""),) if y)
        return cls(doc_id, tuple(names), years, meta.get("form", ""))


@dataclass(frozen=True, slots=True)
class DocFocus:
    """The documents a question is restricted to (``None``: no restriction) and why."""

    doc_ids: list[str] | None
    reason: str = ""
    boosts: dict[str, float] = field(default_factory=dict)
    """Section-score multipliers for documents whose fiscal year or form the question names."""


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


def _name_score(name: tuple[str, ...], q_tokens: set[str], q_proper: set[str]) -> float:
    """Share of a name's tokens in the question; its first token must appear as a proper noun
    (capitalised or a number), so "the target price" does not name a company called Target."""
    if not name or name[0] not in q_proper:
        return 0.0
    return sum(t in q_tokens for t in name) / len(name)


def match_documents(question: str, profiles: Sequence[DocProfile], min_name_score: float = 0.5,
                    boost: float = 2.0) -> DocFocus:
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
    years = question_years(question)
    if years and (in_year := [p for p in kept if set(p.years) & years]):
        for p in in_year:
            boosts[p.doc_id] = boost
        reasons.append(f"fiscal year {', '.join(sorted(set(y for p in in_year for y in p.years) & years))}")
    q_lower = question.lower()
    forms = {f for key, f in _FORMS.items() if re.search(rf"(?<![\w-]){re.escape(key)}(?![\w-])", q_lower)}
    if forms and (of_form := [p for p in kept if p.form in forms]):
        for p in of_form:
            boosts[p.doc_id] = boosts.get(p.doc_id, 1.0) * boost
        reasons.append(f"form {', '.join(sorted(forms))}")
    return DocFocus(sorted(p.doc_id for p in kept), "; ".join(reasons), boosts)
