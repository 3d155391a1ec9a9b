"""The graph's nodes (verbs) and its router: plain functions of the state and the run's context
(``graphs.context.QAContext``). Each node returns only the state keys it changes."""

from __future__ import annotations

import re
import time
from typing import Literal

from langgraph.runtime import Runtime

from graphs import prompts
from graphs.calc import CalcError, check_operands, evaluate, scale_of
from graphs.context import QAContext
from graphs.evidence import select_digest, select_evidence, select_trained
from graphs.injection import GuardedStore, drop_flagged, overlaps
from graphs.qtype import classify
from graphs.state import QAState
from graphs.typed import (
    Typed,
    check_number,
    check_typed,
    date_answer,
    list_answer,
    number_answer,
    scope_sections,
    span_answer,
    yesno_answer,
)
from graphs.verifier import verify_claims
from pipeline.text import split_claims
from pipeline.types import ABSTAIN_TEXT, Answer, Citation, ClaimCheck, Evidence


def _relevant(evidence: list[Evidence], ctx: QAContext) -> list[Evidence]:
    # evidence too weakly related to the question is no evidence: the writer then abstains
    return [ev for ev in evidence if ev.score >= ctx.config.retrieve.min_evidence_score]


def retrieve(state: QAState, runtime: Runtime[QAContext]) -> dict:
    ctx = runtime.context
    t0 = time.perf_counter()
    cfg = ctx.config.retrieve
    found = ctx.retriever.retrieve(state.question, state.top_sections, state.doc_ids, state.filters)
    changes: dict = {"sections": list(found.sections), "qtype": classify(state.question), "scope": found.scope,
                     "notice": found.notice}
    store = GuardedStore(ctx.store)  # planted instructions in what was retrieved are flagged and read as blanks
    store.guard_sections([s.section for s in found.sections])
    if not ctx.config.summarize.enabled:  # the evidence comes from the best passages instead
        evidence = select_evidence(state.question, found.passages, store, ctx.embed,
                                   max_passages=cfg.evidence_passages, max_sentences=cfg.evidence_sentences)
        changes["evidence"] = _relevant(drop_flagged(evidence, store.flagged), ctx)
    changes["injections"] = store.flagged
    changes["timings"] = {"retrieve": time.perf_counter() - t0}
    return changes


def route_after_retrieve(state: QAState, runtime: Runtime[QAContext]) -> Literal["typed", "summarize"]:
    ctx = runtime.context
    kind = state.qtype
    if kind not in ctx.config.answers.typed or (kind in ("span", "yesno") and ctx.reader is None):
        return "summarize"
    if kind == "yesno":  # the verdict head knows contract hypotheses: the best section must be a contract's
        best = max(state.sections, key=lambda s: s.score, default=None)
        kinds = ctx.store.kinds_and_titles([best.section.doc_id]) if best else {}
        if not best or kinds.get(best.section.doc_id, ("",))[0] != "contract":
            return "summarize"
    return "typed"


def typed(state: QAState, runtime: Runtime[QAContext]) -> dict:
    """The typed answer of a span, yes-no, list or date question (``graphs/typed.py``): its evidence and claims,
    checked by ``verify``; a list or date question with no answer of its type goes on to the writer."""
    ctx = runtime.context
    cfg = ctx.config.answers
    t0 = time.perf_counter()
    kind = state.qtype
    store = GuardedStore(ctx.store)  # every component reads the documents with planted instructions blanked
    if kind == "span":
        best = [s.section for s in sorted(state.sections, key=lambda s: -s.score)[:ctx.config.summarize.max_sections]]
        found = span_answer(state.question, store.guard_sections(best), store, ctx.reader,
                            min_score=cfg.span_min_score, max_units=cfg.span_max_units)
    elif kind == "yesno":
        found = yesno_answer(state.question, store, ctx.retriever, ctx.reader, state.doc_ids, ctx.config)
    elif kind == "number":  # the filing asked about, or the best section's
        best = max(state.sections, key=lambda s: s.score, default=None)
        doc = state.doc_ids[0] if state.doc_ids and len(state.doc_ids) == 1 else best.section.doc_id if best else None
        found = number_answer(state.question, doc, store) if doc else None
    else:
        scope = store.guard_sections(scope_sections(store, state.sections, state.doc_ids, cfg.scan_tokens))
        found = (list_answer(state.question, scope, store, ctx.embed) if kind == "list"
                 else date_answer(state.question, scope, store))
    timings = {"typed": time.perf_counter() - t0}
    if found is None:
        return {"timings": timings, "injections": store.flagged}
    # a typed answer resting on a flagged span has nothing left to stand on: its claims go with that evidence
    claims = [(c, cited) for c, cited in found.claims
              if not any(overlaps(ev.doc_id, ev.start, ev.end, store.flagged) for ev in found.evidence if ev.n in cited)]
    draft = found.lead + " ".join(f"{c} " + "".join(f"[{n}]" for n in cited) for c, cited in claims)
    return {"typed": kind, "value": found.value, "lead": found.lead, "evidence": list(found.evidence),
            "calculation": found.calculation, "draft": draft.strip() if claims else prompts.NOT_FOUND,
            "timings": timings, "injections": store.flagged}


def route_after_typed(state: QAState) -> Literal["verify", "summarize"]:
    return "verify" if state.typed else "summarize"


def summarize(state: QAState, runtime: Runtime[QAContext]) -> dict:
    """The digest of the best sections, read whole: their sentences most relevant to the question."""
    ctx = runtime.context
    cfg = ctx.config.summarize
    if not cfg.enabled:
        return {}
    t0 = time.perf_counter()
    best = sorted(state.sections, key=lambda s: -s.score)[:cfg.max_sections]
    store = GuardedStore(ctx.store)  # planted instructions are read as blanks: never candidates for evidence
    sections = store.guard_sections([s.section for s in best])
    if cfg.scorer == "trained":  # the trained reader's units; none scoring high enough: abstain, no writer call
        if ctx.reader is None:
            raise ValueError("summarize.scorer = 'trained' needs the trained reader (QAContext.reader)")
        evidence = select_trained(state.question, sections, store, ctx.reader,
                                  max_tokens=cfg.evidence_tokens, min_score=cfg.min_unit_score)
        return {"evidence": drop_flagged(evidence, store.flagged), "injections": store.flagged,
                "timings": {"summarize": time.perf_counter() - t0}}
    if cfg.encoder_weight > 0 and ctx.read is None:
        raise ValueError("summarize.encoder_weight > 0 needs the section reader (QAContext.read)")
    evidence = select_digest(state.question, sections, store, ctx.embed, ctx.read,
                             max_sentences=cfg.digest_sentences, max_chars=cfg.digest_chars,
                             encoder_weight=cfg.encoder_weight)
    return {"evidence": _relevant(drop_flagged(evidence, store.flagged), ctx), "injections": store.flagged,
            "timings": {"summarize": time.perf_counter() - t0}}


def synthesize(state: QAState, runtime: Runtime[QAContext]) -> dict:
    ctx = runtime.context
    t0 = time.perf_counter()
    max_new_tokens = ctx.config.synthesize.max_new_tokens
    if not state.evidence:
        draft = prompts.NOT_FOUND
    elif ctx.llm is None:
        draft = extractive(state.evidence)
    elif _computes(state, ctx):  # the writer states the calculation; verify evaluates and checks it
        problems = [r for c in state.claims for r in c.reasons] if state.claims else None
        draft = ctx.llm.chat(prompts.number_messages(state.question, state.evidence, problems), max_new_tokens)
    elif state.claims:  # a revision after verification
        draft = ctx.llm.chat(prompts.revision_messages(state.question, state.evidence, state.draft, state.claims),
                             max_new_tokens)
    else:
        draft = ctx.llm.chat(prompts.answer_messages(state.question, state.evidence), max_new_tokens)
    spent = state.timings.get("synthesize", 0.0) + time.perf_counter() - t0
    changes: dict = {"draft": draft, "timings": {"synthesize": spent}}
    if state.claims:
        changes["revisions"] = state.revisions + 1
    return changes


def _computes(state: QAState, ctx: QAContext) -> bool:
    return ctx.config.synthesize.computed_numbers and ctx.llm is not None and state.qtype == "number"


def _scales(evidence: list[Evidence], store) -> dict[int, float]:
    """The scale each evidence's numbers are written in: a scale word in the unit itself (a table row carries its
    table's title), else the last one its section declares before it ("(In thousands)" over a statement)."""
    sections = store.sections_by_id({ev.section_id for ev in evidence})
    out = {}
    for ev in evidence:
        out[ev.n] = scale_of(ev.text)
        if out[ev.n] == 1.0 and (section := sections.get(ev.section_id)) is not None:
            out[ev.n] = scale_of(section.text[max(0, ev.start - section.start - 4000): ev.start - section.start])
    return out


def check_calculation(draft: str, evidence: list[Evidence], store) -> ClaimCheck:
    """The writer's ``CALC:`` line evaluated by code; supported only when it parses, evaluates and every operand
    is a number of the evidence it cites. The claim reads "RESULT, computed as EXPRESSION"."""
    line = ((draft.split(prompts.CALC, 1)[1].strip().splitlines() or [""])[0] if prompts.CALC in draft
            else draft.strip())
    by_n = {ev.n: ev for ev in evidence}
    try:
        calc = evaluate(line, _scales(evidence, store))
    except CalcError as e:
        return ClaimCheck(claim=line, evidence=(), citations=(), support=0.0, supported=False, reasons=(str(e),))
    problems = check_operands(calc, {n: ev.text for n, ev in by_n.items()})
    evs = [by_n[n] for n in dict.fromkeys(op.n for op in calc.operands) if n in by_n]
    claim = calc.result() if len(calc.operands) == 1 else f"{calc.result()}, computed as {calc.plain()}"
    return ClaimCheck(claim=claim, evidence=tuple(ev.n for ev in evs), citations=_citations(evs),
                      support=0.0 if problems else 1.0, supported=not problems, reasons=tuple(problems))


def extractive(evidence: list[Evidence], max_sentences: int = 2) -> str:
    """No LLM: the evidence sentences closest to the question, verbatim, each cited."""
    best = evidence[0].score
    picked = [ev for ev in evidence[:max_sentences] if ev.score >= best - 0.15]
    return " ".join(f"{' '.join(ev.text.split())} [{ev.n}]" for ev in picked)


def _citations(evs: list[Evidence]) -> tuple[Citation, ...]:
    return tuple(Citation(doc_id=ev.doc_id, section_id=ev.section_id, start=ev.start, end=ev.end, quote=ev.text)
                 for ev in evs)


def verify(state: QAState, runtime: Runtime[QAContext]) -> dict:
    """Each claim of the draft checked against the evidence it cites; a claim citing a span flagged as a planted
    instruction is not supported, whatever else the checks found."""
    changes = _verify(state, runtime)
    if state.injections and changes.get("claims"):
        changes["claims"] = [_unflagged(c, state.injections) for c in changes["claims"]]
    return changes


def _unflagged(claim: ClaimCheck, flagged: list[Citation]) -> ClaimCheck:
    if not any(overlaps(c.doc_id, c.start, c.end, flagged) for c in claim.citations):
        return claim
    return ClaimCheck(claim=claim.claim, evidence=claim.evidence, citations=claim.citations, support=0.0,
                      supported=False, reasons=(*claim.reasons, "cites text flagged as a planted instruction"))


def _verify(state: QAState, runtime: Runtime[QAContext]) -> dict:
    ctx = runtime.context
    t0 = time.perf_counter()
    if prompts.NOT_FOUND in state.draft.upper() or not state.evidence:
        return {"claims": [], "timings": {"verify": time.perf_counter() - t0}}
    if state.typed == "number":  # a computed number: recomputed from the rows it cites
        claims = [check_number(state.question, str(state.value), state.calculation, state.evidence, ctx.store)]
        return {"claims": claims, "timings": {"verify": time.perf_counter() - t0}}
    if state.typed:  # a typed answer: one claim per quoted unit, each checked against the stored text
        found = Typed(state.typed, state.value or "", tuple(state.evidence),
                      tuple((ev.text, (ev.n,)) for ev in state.evidence), state.lead)
        return {"claims": check_typed(found, ctx.store), "timings": {"verify": time.perf_counter() - t0}}
    if _computes(state, ctx) and not state.quoted:
        claims = [check_calculation(state.draft, state.evidence, ctx.store)]
        spent = state.timings.get("verify", 0.0) + time.perf_counter() - t0
        # the computed result is the answer's value (none while the calculation is refused)
        value = claims[0].claim.split(", computed as ", 1)[0] if claims[0].supported else None
        return {"claims": claims, "value": value, "timings": {"verify": spent}}
    by_n = {ev.n: ev for ev in state.evidence}
    parsed = split_claims(state.draft)
    cited_per_claim = [[by_n[n] for n in dict.fromkeys(cited) if n in by_n] for _claim, cited in parsed]
    if not ctx.config.verify.enabled:  # ablation: every claim is kept, citing what it cites
        claims = [ClaimCheck(claim=claim, evidence=tuple(ev.n for ev in evs), citations=_citations(evs),
                             support=1.0, supported=True) for (claim, _), evs in zip(parsed, cited_per_claim)]
        return {"claims": claims, "timings": {"verify": time.perf_counter() - t0}}
    # an uncited claim (or one citing evidence that does not exist) is judged against every
    # evidence sentence and keeps the one that supports it best
    pairs = [(i, ev) for i, evs in enumerate(cited_per_claim) for ev in (evs or state.evidence)]
    scored = verify_claims([parsed[i][0] for i, _ in pairs], [ev.text for _, ev in pairs], ctx.embed)
    best: dict[int, tuple[float, Evidence]] = {}
    for (i, ev), (support, _) in zip(pairs, scored):
        if not cited_per_claim[i] and (i not in best or support > best[i][0]):
            best[i] = (support, ev)
    groups = [evs or [best[i][1]] for i, evs in enumerate(cited_per_claim)]
    results = verify_claims([c for c, _ in parsed], [" ".join(ev.text for ev in evs) for evs in groups], ctx.embed)
    threshold = ctx.config.verify.min_claim_support
    claims = [ClaimCheck(claim=claim, evidence=tuple(ev.n for ev in evs), citations=_citations(evs),
                         support=support, supported=support >= threshold, reasons=reasons)
              for (claim, _), evs, (support, reasons) in zip(parsed, groups, results)]
    spent = state.timings.get("verify", 0.0) + time.perf_counter() - t0
    return {"claims": claims, "timings": {"verify": spent}}


def route_after_verify(state: QAState, runtime: Runtime[QAContext]) -> Literal["synthesize", "quote", "finalize"]:
    ctx = runtime.context
    writes = ctx.llm is not None and not state.quoted and not state.typed
    if any(not c.supported for c in state.claims) and writes and state.revisions < ctx.config.verify.max_revisions:
        return "synthesize"
    if (not any(c.supported for c in state.claims) and writes and state.evidence
            and ctx.config.verify.fallback == "quote"):
        return "quote"
    return "finalize"


def quote(state: QAState) -> dict:
    """The writer's claims all failed verification: answer with the most relevant evidence, verbatim."""
    return {"draft": extractive(state.evidence), "quoted": True, "claims": []}


def _noticed(state: QAState, text: str) -> str:
    """The answer's text after what the reader must know first (a named period no stored filing covers)."""
    return f"{state.notice}\n\n{text}" if state.notice else text


def finalize(state: QAState) -> dict:
    kept = [c for c in state.claims if c.supported]
    kind = state.qtype
    if not kept:
        # a yes-no question the reader finds not mentioned is answered NotMentioned (and abstains)
        value = "NotMentioned" if state.typed == "yesno" else None
        return {"answer": Answer(text=_noticed(state, ABSTAIN_TEXT), citations=(), abstained=True, support=0.0,
                                 sections=tuple(state.sections), timings=tuple(state.timings.items()), kind=kind,
                                 value=value, injections=tuple(state.injections))}
    citations: list[Citation] = []
    parts = []
    for c in kept:
        marks = []
        for cit in c.citations:
            if cit not in citations:
                citations.append(cit)
            marks.append(citations.index(cit) + 1)
        claim = re.sub(r"\s+", " ", c.claim)
        parts.append(f"{claim} " + "".join(f"[{m}]" for m in dict.fromkeys(marks)))
    value = state.value if state.typed or (state.qtype == "number" and not state.quoted) else None
    if state.typed == "list":
        value = tuple(re.sub(r"\s+", " ", c.claim) for c in kept)
    sep = "; " if state.typed == "list" else " "
    answer = Answer(text=_noticed(state, state.lead + sep.join(parts)), citations=tuple(citations), abstained=False,
                    support=len(kept) / len(state.claims), sections=tuple(state.sections),
                    timings=tuple(state.timings.items()), kind=kind, value=value,
                    injections=tuple(state.injections))
    return {"answer": answer}
