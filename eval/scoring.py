"""Scoring one system's run on one item: the suite's answer-quality metrics, retrieval and citations.

``score(item, run, gold)`` returns a flat ``{metric: float | None}``; ``gold`` is the item's evidence as
spans of the *stored* document (aligned by the harness). Quality metrics per suite:

* cuad: ``clause_f1`` — token F1 of the answer against the gold clause text (all of the category's
  gold spans joined), on answerable items; ``span_f1`` — character-overlap F1 of the cited spans
  against the gold spans; ``abstain_correct`` on every item.
* financebench: ``numeric_match`` (a number of the answer equals the gold answer's within 1%, on the
  questions that ask for a number: FinanceBench's metrics questions and numerical-reasoning ones) and
  ``token_f1``; the evidence page hit is ``retrieval_hit``.
* contractnli: ``label_correct`` (Entailment / Contradiction / NotMentioned decided from the answer).
* synthea: ``fact_match`` — the gold date is in the answer, or the share of gold names it mentions.
"""

from __future__ import annotations

import re

from eval import metrics
from eval.datasets import Item
from eval.records import AnswerRecord
from eval.systems import Run, Span
from pipeline import Answer, Citation, ScoredUnit, ranking

_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|without|cannot|can't|won't|shan't|isn't|aren't|"
                       r"doesn't|don't|prohibited|unless)\b", re.IGNORECASE)

HEADLINE = {"cuad": "clause_f1", "financebench": "numeric_match", "contractnli": "label_correct",
            "synthea": "fact_match"}
QUALITY = {"cuad": ("clause_f1", "span_f1", "abstain_correct"),
           "financebench": ("numeric_match", "token_f1"),
           "contractnli": ("label_correct",),
           "synthea": ("fact_match",)}


def nli_label(answer_text: str, abstained: bool, hypothesis: str) -> str:
    """NotMentioned if the system abstained; Contradiction if the answer's negation differs from the
    hypothesis's (one states a prohibition the other does not); Entailment otherwise."""
    if abstained:
        return "NotMentioned"
    if bool(_NEGATION.search(answer_text)) != bool(_NEGATION.search(hypothesis)):
        return "Contradiction"
    return "Entailment"


def score(item: Item, run: Run, gold: list[tuple[int, int]]) -> dict:
    a = run.answer
    text = "" if a.abstained else a.text
    same_doc = lambda spans: [(s.start, s.end) for s in spans if s.doc_id == item.doc_id]  # noqa: E731
    cites = [(c.start, c.end) for c in a.citations if c.doc_id == item.doc_id]
    out: dict = {
        "retrieval_hit": metrics.hit(gold, same_doc(run.retrieved)),
        "evidence_coverage": metrics.coverage(gold, same_doc(run.retrieved)),
        "context_coverage": metrics.coverage(gold, same_doc(run.context)),
        "context_chars": float(sum(s.end - s.start for s in run.context)),
        "citation_precision": None if a.abstained else metrics.citation_precision(cites, gold),
        # the same, weighted by size: a whole 512-token chunk that contains a gold sentence is mostly not evidence
        "citation_char_precision": None if a.abstained or not cites or not gold else
        metrics.covered(cites, gold) / metrics.length(cites),
        "citation_recall": None if item.impossible else metrics.citation_recall(cites, gold),
    }
    match item.suite:
        case "cuad":
            out["clause_f1"] = None if item.impossible else metrics.token_f1(text, " ".join(item.answers))
            out["span_f1"] = None if item.impossible else metrics.span_f1(cites, gold) if cites else 0.0
            out["abstain_correct"] = float(a.abstained == item.impossible)
        case "financebench":
            # only questions that ask for a number (FinanceBench's metrics questions or numerical reasoning):
            # elsewhere a gold sentence's incidental numbers ("12 months ended January 28") would match by chance
            numeric = "metrics-generated" in item.label or "numerical" in item.label
            out["numeric_match"] = metrics.numeric_match(text, item.answers[0]) if numeric else None
            out["token_f1"] = metrics.token_f1(text, item.answers[0])
        case "contractnli":
            label = run.label or nli_label(text, a.abstained, item.answers[0])
            out["predicted_label"] = label
            out["label_correct"] = float(label == item.label)
            if run.units and not item.impossible:  # the paper's evidence measures, over every unit scored
                scores = [u.score for u in run.units]
                relevant = [any(u.start < e and u.end > s for s, e in gold) for u in run.units]
                out["evidence_ap"] = ranking.average_precision(scores, relevant)
                out["evidence_p_at_r80"] = ranking.precision_at_recall(scores, relevant)
        case "synthea":
            if item.label in ("medications", "allergies"):
                out["fact_match"] = metrics.name_recall(text, item.answers)
            else:
                out["fact_match"] = metrics.date_match(text, item.answers[0])
    return out


def run_from_record(rec: AnswerRecord) -> Run:
    """The parts of a run that scoring reads, rebuilt from its ``items.jsonl`` record (no texts)."""
    answer = Answer(text=rec.answer, abstained=rec.abstained, support=0.0,
                    citations=tuple(Citation(d, "", s, e, "") for d, s, e in rec.citations))
    units = tuple(ScoredUnit(rec.doc_id, "", s, e, "", score) for s, e, score in rec.units)
    return Run(answer=answer, retrieved=tuple(Span(d, s, e) for d, s, e in rec.retrieved),
               context=tuple(Span(d, s, e) for d, s, e in rec.context), seconds=rec.seconds, label=rec.verdict,
               units=units)


BASELINE_TOKENS = 5 * 512
"""The chunk baseline's context: 5 chunks of 512 tokens; every scorer's evidence is measured at this budget."""
CHARS_PER_TOKEN = 4
PR_UNITS = 100
"""The trained scorer's best units kept per item for the pooled precision-recall curve (gold ones always)."""


def scorer_coverage(run: Run, gold: list[tuple[int, int]]) -> dict[str, float | None]:
    """Per scorer, the share of the gold evidence in its best units within ``BASELINE_TOKENS``."""
    out = {}
    for scorer, units in run.scorers.items():
        picked, used = [], 0
        for u in sorted(units, key=lambda u: -u.score):
            size = -(-(u.end - u.start) // CHARS_PER_TOKEN)
            if picked and used + size > BASELINE_TOKENS:
                continue
            picked.append((u.start, u.end))
            used += size
        out[scorer] = metrics.coverage(gold, picked)
    return out


def unit_pr(run: Run, gold: list[tuple[int, int]]) -> list[list]:
    """[score, relevant] of the trained scorer's ``PR_UNITS`` best units and every gold one."""
    units = run.scorers.get("trained", ())
    if not units or not gold:
        return []
    rel = [any(u.start < e and u.end > s for s, e in gold) for u in units]
    order = sorted(range(len(units)), key=lambda i: -units[i].score)
    keep = set(order[:PR_UNITS]) | {i for i, r in enumerate(rel) if r}
    return [[round(units[i].score, 5), int(rel[i])] for i in sorted(keep)]
