"""Typed answers: a question's answer made by the component that is right for its type (``graphs.qtype``), not by
the writer.

* ``span`` — the clause the trained reader selects: its best unit with the units of the same sections it scores
  at least ``answers.span_min_score``, in document order; none scoring that high: not found. A question asking for
  one thing the clause holds (its date, the agreement's title, the parties: ``graphs.parts``) gets that part of it.
* ``yesno`` — the trained reader's Entailment / Contradiction / NotMentioned verdict on the question read as a
  hypothesis (``graphs.check``), shown with the units it rests on; asked of contracts only (the verdict head is
  trained on contract hypotheses: whether a filing's margin improved is not one, and goes to the writer).
* ``list`` — every item of the list the question asks for: the bulleted or numbered lists of the documents in
  scope whose heading best matches the question, all their items (the same heading repeated — a list per
  encounter — adds its items), not the first one found.
* ``number`` — a financial metric or line item of a filing ("the FY2017 operating cash flow ratio", "FY2018 - FY2020
  average capex as a % of revenue"), computed by code from the rows of the filing's statements
  (``graphs.formulas``): the answer shows the calculation and cites every row it reads.
* ``date`` — the date the question asks for, read from the clause of the documents that best matches the
  question (BM25 over the clauses of the documents in scope); "first" / "earliest" takes the earliest date of the
  clauses that match as well, "last" / "latest" the latest.

Each returns a ``Typed``: the evidence it rests on (numbered ``[n]``, exact spans of the stored text), the claims
it makes (each citing its evidence) and the typed value. ``check_typed`` is the verifier's check of one: every
quote is the stored text, a date is in its clause, a list holds every item of its lists. ``None`` means the
component has no answer of its type here, and the question goes to the writer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from graphs.calc import CalcError, check_operands, evaluate
from graphs.formulas import Plan, compute, plan, shown
from graphs.parts import asked_part, part_spans
from graphs.statements import table_rows
from graphs.verifier import Embed
from pipeline.config import PipelineConfig
from pipeline.store import SectionStore
from pipeline.text import content_words, relevance, trim_span
from pipeline.types import VERDICT_LEADS, ClaimCheck, Evidence, ScoredSection, Section


@dataclass(frozen=True)
class Typed:
    """A typed answer before verification."""

    kind: str
    value: str | tuple[str, ...]
    """The date as the text writes it, the NLI label, the clause, or the list's items."""
    evidence: tuple[Evidence, ...]
    claims: tuple[tuple[str, tuple[int, ...]], ...]
    """(claim, cited evidence numbers); empty when the answer is "not found" / NotMentioned."""
    lead: str = ""
    """What the answer starts with before its first claim ("Yes: ", "1989-04-10: ")."""
    calculation: str = ""
    """A computed number's calculation over its cited rows (``[1] 1,469,502 / [2] 2,213,556``)."""


def _evidence(spans: Sequence[tuple[str, str, int, int, str, float]]) -> tuple[Evidence, ...]:
    return tuple(Evidence(n=k + 1, doc_id=d, section_id=s, start=a, end=b, text=t, score=sc)
                 for k, (d, s, a, b, t, sc) in enumerate(spans))


def scope_sections(store: SectionStore, sections: Sequence[ScoredSection], doc_ids: Sequence[str] | None,
                   scan_tokens: int) -> list[Section]:
    """The sections a list or date answer reads: every section of the documents asked about when they hold at
    most ``scan_tokens`` tokens in all (completeness needs the whole record), else the retrieved ones."""
    if doc_ids:
        whole = [s for d in doc_ids for s in store.sections(d)]
        if sum(s.tokens for s in whole) <= scan_tokens:
            return whole
    return [s.section for s in sections]


# -- span ------------------------------------------------------------------------------------------------------
def span_answer(question: str, sections: Sequence[Section], store: SectionStore, reader, *, min_score: float,
                max_units: int) -> Typed:
    """The clause the reader selects in ``sections``: up to ``max_units`` units scoring ≥ ``min_score``, best first
    chosen, shown in document order; none: not found."""
    from encoders.units import section_units

    cands = []
    texts: dict[str, str] = {}
    for sec in sections:
        text = texts.setdefault(sec.doc_id, store.document_text(sec.doc_id))
        units = section_units(text, sec.start, sec.end, sec.path)
        if not units:
            continue
        scores = reader.read(text[sec.start:sec.end], [(u.start - sec.start, u.end - sec.start) for u in units],
                             question, key=sec.id).unit_scores
        cands += [(float(sc), sec, u.start, u.end, text[u.start:u.end]) for u, sc in zip(units, scores)]
    picked = sorted((c for c in cands if c[0] >= min_score), key=lambda c: -c[0])[:max_units]
    if not picked:
        return Typed("span", "", (), ())
    picked.sort(key=lambda c: (c[1].doc_id, c[2]))
    spans = [(s.doc_id, s.id, a, b, t, sc) for sc, s, a, b, t in picked]
    if part := asked_part(question):  # the date, title or parties the question asks for, inside the clause
        parts = [(d, sid, x, y, texts[d][x:y], sc) for d, sid, a, b, _, sc in spans
                 for x, y in part_spans(part, texts[d], a, b)]
        spans = parts or spans
    ev = _evidence(spans)
    return Typed("span", " … ".join(e.text for e in ev), ev, tuple((e.text, (e.n,)) for e in ev))


# -- yes / no --------------------------------------------------------------------------------------------------
_STATES_THAT = re.compile(r"^\s*(?:does|do|did|is|are|will|would|shall|should|must)\s+(?:the|this|that|each|any)\s+"
                          r"(?:[\w-]+\s+){0,3}?(?:state|say|provide|specify|require|stipulate|mention|"
                          r"establish|indicate|confirm)s?\s+(?:that\s+)?", re.IGNORECASE)


def hypothesis_of(question: str) -> str:
    """The statement a yes-no question asks to check: "Does the agreement state that X?" → "X"."""
    q = " ".join(question.split())
    m = _STATES_THAT.match(q)
    if m and len(q) - m.end() > 10:
        q = q[m.end():]
        q = q[0].upper() + q[1:]
    return q.rstrip(" ?") + ("." if not q.rstrip(" ?").endswith(".") else "")


def yesno_answer(question: str, store: SectionStore, retriever, reader, doc_ids: Sequence[str] | None,
                 config: PipelineConfig) -> Typed:
    """The reader's verdict on the question's hypothesis: Entailment → "Yes", Contradiction → "No", each with the
    units it rests on; NotMentioned → no claim (the answer says the documents do not say)."""
    from graphs.check import check_hypothesis

    verdict = check_hypothesis(store, retriever, reader, hypothesis_of(question), doc_ids, config)
    if verdict.label == "NotMentioned" or not verdict.evidence:
        return Typed("yesno", "NotMentioned", (), ())
    scores = {(u.doc_id, u.start, u.end): u.score for u in verdict.units}
    ev = _evidence([(c.doc_id, c.section_id, c.start, c.end, c.quote, scores.get((c.doc_id, c.start, c.end), 0.0))
                    for c in verdict.evidence])
    lead = VERDICT_LEADS[verdict.label]
    return Typed("yesno", verdict.label, ev, tuple((e.text, (e.n,)) for e in ev), lead=lead)


# -- list ------------------------------------------------------------------------------------------------------
_BULLET = re.compile(r"[ \t]*(?:[-•*▪◦‣]|\d{1,3}[.)]|\([a-z0-9]{1,3}\))[ \t]+(?=\S)")
_NAME_END = re.compile(r":\s|;\s|\s—\s|\s\(\w+ \d{4}-\d\d-\d\d")
MAX_ITEM_CHARS = 200


@dataclass(frozen=True)
class ListBlock:
    """A heading line and the bulleted items under it, as spans of the document."""

    section: Section
    heading: tuple[int, int]
    items: tuple[tuple[int, int], ...]


def list_blocks(text: str, section: Section) -> list[ListBlock]:
    """The lists of a section: runs of bulleted or numbered lines, each with the nearest non-item line above it."""
    blocks: list[ListBlock] = []
    heading: tuple[int, int] | None = None
    items: list[tuple[int, int]] = []
    at = section.start
    while at < section.end:
        nl = text.find("\n", at, section.end)
        stop = section.end if nl < 0 else nl
        s, e = trim_span(text, at, stop)
        if e > s:
            m = _BULLET.match(text, at, stop)
            if m:
                a, b = trim_span(text, m.end(), stop)
                if b > a:
                    items.append((a, b))
            else:
                if items and heading is not None:
                    blocks.append(ListBlock(section, heading, tuple(items)))
                heading, items = (s, e), []
        at = stop + 1
    if items and heading is not None:
        blocks.append(ListBlock(section, heading, tuple(items)))
    return blocks


def item_name(text: str, start: int, end: int) -> tuple[int, int]:
    """The naming part of a list item ("Cisplatin 50 MG Injection" of "Cisplatin 50 MG Injection: 221 …")."""
    m = _NAME_END.search(text, start, end)
    stop = m.start() if m and m.start() > start else end
    return trim_span(text, start, min(stop, start + MAX_ITEM_CHARS))


def _norm(s: str) -> str:
    return re.sub(r"[\d\W_]+", " ", s.lower()).strip()


_ASKED = re.compile(r"\b(?:which|what|who|list|name|enumerate|all|every)\b(?:\s+(?:are|were|is|was|of|the|all|"
                    r"any|major|main|primary|principal|key|current|other|different)\b)*\s+(?:[\w-]+\s+){0,2}?"
                    r"(?P<noun>[a-z][\w-]{2,}s)\b", re.IGNORECASE)


def _asked_noun(question: str) -> str:
    """The plural noun a list question asks for ("Which *allergies* does …", "What are major *acquisitions* …"), or ""."""
    m = _ASKED.search(question)
    if m and not m.group("noun").lower().endswith(("ss", "us", "is")):
        return m.group("noun")
    return ""


def list_answer(question: str, sections: Sequence[Section], store: SectionStore, embed: Embed) -> Typed | None:
    """Every item of the lists whose heading best matches ``question``; ties go to the longer list, and lists under
    the same heading (one per visit) are joined. ``None``: no list in scope, or the best one is not headed by the
    noun the question asks for ("allergies" in "Which allergies does … have?")."""
    texts: dict[str, str] = {}
    blocks = []
    for sec in sections:
        text = texts.setdefault(sec.doc_id, store.document_text(sec.doc_id))
        blocks += list_blocks(text, sec)
    if not blocks:
        return None
    headings = [texts[b.section.doc_id][b.heading[0]:b.heading[1]] for b in blocks]
    unique = list(dict.fromkeys(_norm(h) for h in headings))
    vecs = embed([question, *unique])
    by_heading = dict(zip(unique, relevance(question, vecs[0], unique, vecs[1:])))
    sizes: dict[str, int] = {}
    for h, b in zip(headings, blocks):
        sizes[_norm(h)] = sizes.get(_norm(h), 0) + len(b.items)
    best = max(by_heading.values())
    chosen = max((h for h, sc in by_heading.items() if sc >= best - 0.02), key=lambda h: (sizes[h], by_heading[h]))
    head = _asked_noun(question)
    if not (content_words(head) if head else content_words(question)) & content_words(chosen):
        return None  # no list is headed by what the question asks for
    spans, seen = [], set()
    for h, b in zip(headings, blocks):
        if _norm(h) != chosen:
            continue
        text = texts[b.section.doc_id]
        for a, e in b.items:
            na, nb = item_name(text, a, e)
            key = text[na:nb].lower()
            if key not in seen:
                seen.add(key)
                spans.append((b.section.doc_id, b.section.id, na, nb, text[na:nb], float(by_heading[chosen])))
    ev = _evidence(spans)
    return Typed("list", tuple(e.text for e in ev), ev, tuple((e.text, (e.n,)) for e in ev))


# -- date ------------------------------------------------------------------------------------------------------
_MONTHS = ("january february march april may june july august september october november december").split()
_DATE = re.compile(r"\b(?P<iso>(?:1[6-9]|20)\d\d-[01]\d-[0-3]\d)\b|\b(?P<us>[01]?\d/[0-3]?\d/(?:1[6-9]|20)\d\d)\b|"
                   r"\b(?P<long>(?:" + "|".join(m.capitalize() for m in _MONTHS) + r")\s+[0-3]?\d,\s+(?:1[6-9]|20)\d\d)\b")
_FIRST = re.compile(r"\b(?:first|earliest|initial(?:ly)?|originally|began|begin|start(?:ed)?)\b", re.IGNORECASE)
_LAST = re.compile(r"\b(?:last|latest|most recent(?:ly)?|final)\b", re.IGNORECASE)
NEAR_BEST = 0.9
"""Clauses scoring at least this share of the best are the same thing mentioned again (its other dates)."""


def parse_date(s: str) -> date | None:
    try:
        if m := re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", s):
            return date(int(m[3]), int(m[1]), int(m[2]))
        if m := re.fullmatch(r"(\w+)\s+(\d{1,2}),\s+(\d{4})", s):
            return date(int(m[3]), _MONTHS.index(m[1].lower()) + 1, int(m[2]))
    except ValueError:
        return None
    return None


def dates_in(text: str) -> list[tuple[str, date]]:
    """The dates ``text`` writes (ISO, US month/day/year, "January 5, 2020"), in order, with their values."""
    out = []
    for m in _DATE.finditer(text):
        if (d := parse_date(m.group(0))) is not None:
            out.append((m.group(0), d))
    return out


_CLAUSE_END = re.compile(r";\s|\n")


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out, at = [], start
    for m in _CLAUSE_END.finditer(text, start, end):
        s, e = trim_span(text, at, m.start())
        if e > s:
            out.append((s, e))
        at = m.end()
    s, e = trim_span(text, at, end)
    if e > s:
        out.append((s, e))
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _phrase_bm25(query: str, texts: Sequence[str]) -> np.ndarray:
    """BM25 of each text for ``query`` over every word but function words — digits too ("stage 1" is not
    "stage 4") — plus, per text, the longest run of the query's words it holds in the query's order (a name
    quoted whole beats its words scattered)."""
    from graphs.evidence import bm25
    from pipeline.text import STOPWORDS

    q = [w for w in _words(query) if w not in STOPWORDS]
    if not texts or not q:
        return np.zeros(len(texts))
    out = bm25(query, texts, words=_words, query_words=lambda t: [w for w in _words(t) if w not in STOPWORDS])
    for i, t in enumerate(texts):
        if out[i]:
            out[i] *= 1.0 + _longest_run(q, _words(t)) / len(q)
    return out


def _longest_run(q: list[str], d: list[str]) -> int:
    """The most consecutive words of ``q`` that appear consecutively in ``d``."""
    best = 0
    for i in range(len(d)):
        for j in range(len(q)):
            n = 0
            while i + n < len(d) and j + n < len(q) and d[i + n] == q[j + n]:
                n += 1
            best = max(best, n)
    return best


def date_answer(question: str, sections: Sequence[Section], store: SectionStore) -> Typed | None:
    """The date of the clause (a line, or a part of one between semicolons) that best matches ``question`` (BM25
    weighted by the longest run of the question's words the clause holds, the words of the documents' titles left
    out); with "first" the earliest date of the clauses matching as well,
    with "last" the latest. ``None``: no dated clause shares a word with the question."""
    texts: dict[str, str] = {}
    cands = []
    for sec in sections:
        text = texts.setdefault(sec.doc_id, store.document_text(sec.doc_id))
        for a, b in _clauses(text, sec.start, sec.end):
            if _DATE.search(text, a, b):
                cands.append((sec, a, b, text[a:b]))
    if not cands:
        return None
    # the words naming the documents (a patient's name, a company's) pick the document, not the clause
    naming = {w for _, title in store.kinds_and_titles(texts).values() for w in _words(title)}
    # and "first" / "last" qualify the date asked for: they are not what the clause is about
    asked = _LAST.sub(" ", _FIRST.sub(" ", question))
    query = " ".join(w for w in _words(asked) if w not in naming) or question
    scores = _phrase_bm25(query, [c[3] for c in cands])
    best = float(scores.max()) if len(scores) else 0.0
    if best <= 0:
        return None
    order = np.argsort(-scores, kind="stable")
    near = [int(i) for i in order if scores[i] >= NEAR_BEST * best]
    first, last = bool(_FIRST.search(question)), bool(_LAST.search(question))

    if first or last:  # every date of the clauses as good as the best, the earliest (latest) of them
        dated = [(d, -float(scores[i]), i, s) for i in near for s, d in dates_in(cands[i][3])]
        _, _, i, value = (min if first else max)(dated, key=lambda x: (x[0], x[1]) if first else (x[0], -x[1]))
    else:  # the best clause's first date
        i = near[0]
        value = dates_in(cands[i][3])[0][0]
    sec, a, b, t = cands[i]
    ev = _evidence([(sec.doc_id, sec.id, a, b, t, float(scores[i]))])
    return Typed("date", value, ev, ((t, (1,)),), lead=f"{value}: ")


# -- number ----------------------------------------------------------------------------------------------------
def in_statement_years(p: Plan, metadata: dict[str, str]) -> Plan:
    """``p`` with its years as the statements' columns date them (by the calendar year each fiscal year ends). A
    company that names a fiscal year ending in January by the year it began (Ulta's "fiscal 2022" ended January 28,
    2023: ``fiscal_year_named`` 2022 beside ``fiscal_year`` 2023) is asked in its own names when the question names
    the filing's year as the company does and not as the calendar does; every year the question names then moves by
    that difference."""
    try:
        named, ends = int(metadata["fiscal_year_named"]), int(metadata["fiscal_year"])
    except (KeyError, ValueError):
        return p
    if named == ends or named not in p.years or ends in p.years:
        return p
    return replace(p, years=tuple(y + ends - named for y in p.years))


def number_answer(question: str, doc_id: str, store: SectionStore) -> Typed | None:
    """The metric or line item ``question`` asks for, computed from the statements of filing ``doc_id``; None when
    the question names no known metric or the filing's tables lack an operand (the writer answers)."""
    p = plan(question)
    if p is None:
        return None
    p = in_statement_years(p, dict(store.document(doc_id).metadata))
    text = store.document_text(doc_id)
    done = compute(p, table_rows(text))
    if done is None:
        return None
    sections = store.sections(doc_id)
    spans = []
    for row in done.rows:
        sec = next((s for s in sections if s.start <= row.start < s.end), sections[-1])
        spans.append((doc_id, sec.id, row.start, row.end, text[row.start:row.end], 1.0))
    ev = _evidence(spans)
    claim = f"{done.value}, computed as {done.calculation.plain()}"
    return Typed("number", done.value, ev, ((claim, tuple(e.n for e in ev)),), calculation=done.expression)


def check_number(question: str, value: str, calculation: str, evidence: Sequence[Evidence],
                 store: SectionStore) -> ClaimCheck:
    """A computed answer recomputed from its source: every cited row is the stored text, the calculation's operands
    are numbers of the rows they cite, read in their tables' scales, and evaluating it again gives ``value``."""
    from pipeline.types import Citation

    reasons: list[str] = []
    scales = {}
    texts: dict[str, str] = {}
    row_scales: dict[str, dict[int, float]] = {}
    for e in evidence:
        if e.doc_id not in texts:
            texts[e.doc_id] = store.document_text(e.doc_id)
            row_scales[e.doc_id] = {r.start: r.scale for r in table_rows(texts[e.doc_id])}
        if texts[e.doc_id][e.start:e.end] != e.text:
            reasons.append(f"the row [{e.n}] is not the stored text at {e.start}–{e.end}")
        scales[e.n] = row_scales[e.doc_id].get(e.start, 1.0)
    claim = f"{value}, computed as {calculation}"
    try:
        calc = evaluate(calculation, scales)
        reasons += check_operands(calc, {e.n: e.text for e in evidence})
        p = plan(question)
        again = shown(calc.value, p) if p else None
        if again != value:
            reasons.append(f"recomputed {again}, not {value}")
        claim = f"{value}, computed as {calc.plain()}"
    except CalcError as err:
        reasons.append(str(err))
    return ClaimCheck(claim=claim, evidence=tuple(e.n for e in evidence),
                      citations=tuple(Citation(e.doc_id, e.section_id, e.start, e.end, e.text) for e in evidence),
                      support=0.0 if reasons else 1.0, supported=not reasons, reasons=tuple(reasons))


# -- verification ----------------------------------------------------------------------------------------------
def check_typed(typed: Typed, store: SectionStore) -> list[ClaimCheck]:
    """The verifier's findings on a typed answer: each claim is supported when its quote is the stored text at its
    offsets and, for a date, when the date is written in its clause."""
    from pipeline.types import Citation

    by_n = {e.n: e for e in typed.evidence}
    texts: dict[str, str] = {}
    out = []
    for claim, cited in typed.claims:
        evs = [by_n[n] for n in cited if n in by_n]
        reasons = []
        for e in evs:
            text = texts.setdefault(e.doc_id, store.document_text(e.doc_id))
            if text[e.start:e.end] != e.text:
                reasons.append(f"the quote of [{e.n}] is not the stored text at {e.start}–{e.end}")
        if typed.kind == "date" and not any(str(typed.value) in e.text for e in evs):
            reasons.append(f"the date {typed.value} is not in the cited clause")
        if not evs:
            reasons.append("the claim cites no evidence")
        out.append(ClaimCheck(claim=claim, evidence=tuple(e.n for e in evs),
                              citations=tuple(Citation(e.doc_id, e.section_id, e.start, e.end, e.text) for e in evs),
                              support=0.0 if reasons else 1.0, supported=not reasons, reasons=tuple(reasons)))
    return out
