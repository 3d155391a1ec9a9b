"""One system's metrics on one suite, aggregated over its recorded answers: means with bootstrap 95% CIs.

Per-item metrics come from ``eval.scoring.score`` (stored in each record's ``metrics``); this module only
aggregates them, so old runs get new aggregates without answering again.
"""

from __future__ import annotations

from collections.abc import Sequence

from eval import metrics
from eval.records import AnswerRecord
from eval.scoring import HEADLINE, QUALITY
from pipeline import ranking

LABELS = ("Entailment", "Contradiction", "NotMentioned")


def aggregate(suite: str, records: Sequence[AnswerRecord]) -> dict:
    """``{"items", "errors", "answered", "abstained", "quality", "headline", "hallucination_rate", …}``."""
    ok = [r for r in records if r.ok]
    m = lambda key: metrics.mean_ci(r.metrics.get(key) for r in ok)  # noqa: E731
    judged = [r for r in ok if r.judge is not None]
    claims = [len(r.judge.claims) for r in judged]
    unsupported = [sum(r.judge.unsupported) for r in judged]
    per_answer = [u / c for u, c in zip(unsupported, claims) if c]
    out = {
        "items": len(records), "errors": len(records) - len(ok),
        "answered": sum(not r.abstained for r in ok), "abstained": sum(r.abstained for r in ok),
        "quality": {k: m(k) for k in QUALITY[suite]},
        "headline": {"metric": HEADLINE[suite], **m(HEADLINE[suite])},
        "hallucination_rate": metrics.ratio_ci(unsupported, claims),
        "hallucination_rate_per_answer": metrics.mean_ci(per_answer),
        "judged_answers": len(judged),
        "retrieval": {"recall_at_k": m("retrieval_hit"), "evidence_coverage": m("evidence_coverage"),
                      "context_coverage": m("context_coverage"), "context_chars": m("context_chars")},
        "citations": {"precision": m("citation_precision"), "char_precision": m("citation_char_precision"),
                      "recall": m("citation_recall")},
        "abstention": metrics.precision_recall([r.abstained for r in ok], [r.impossible for r in ok]),
        "latency_s": {**metrics.percentiles(r.seconds for r in ok),
                      "mean": sum(r.seconds for r in ok) / len(ok) if ok else None},
        # answers that were a process's first on their document (records older than this flag have none)
        "latency_first_on_doc_s": {**metrics.percentiles(r.seconds for r in ok if r.first_on_doc),
                                   "n": sum(1 for r in ok if r.first_on_doc)},
    }
    if suite == "contractnli":
        labels = [(r.label, r.metrics["predicted_label"]) for r in ok]
        out["confusion"] = {g: {p: sum(1 for a, b in labels if a == g and b == p) for p in LABELS} for g in LABELS}
        out["nli"] = {**{f"f1_{g.lower()}": _f1(labels, g) for g in LABELS},
                      "evidence_map": m("evidence_ap"), "evidence_p_at_r80": m("evidence_p_at_r80")}
    scorers = sorted({k for r in ok for k in r.scorer_coverage})
    if scorers:  # gold evidence in each scorer's best units at the chunk baseline's token budget
        out["evidence_scorers"] = {k: metrics.mean_ci(r.scorer_coverage.get(k) for r in ok) for k in scorers}
    pooled = [pair for r in ok for pair in r.unit_pr]
    if pooled:  # the trained scorer's units pooled over every item, as CUAD's paper pools its spans
        scores, relevant = [x for x, _ in pooled], [bool(y) for _, y in pooled]
        out["unit_pr"] = {"aupr": ranking.area_under_pr(scores, relevant),
                          "p_at_r80": ranking.precision_at_recall(scores, relevant),
                          "units": len(pooled), "relevant": sum(relevant)}
    return out


def _f1(pairs: list[tuple[str, str]], label: str) -> float | None:
    """F1 of one label over (gold, predicted) pairs (None when it is neither gold nor predicted)."""
    tp = sum(g == p == label for g, p in pairs)
    gold, pred = sum(g == label for g, _ in pairs), sum(p == label for _, p in pairs)
    if not gold and not pred:
        return None
    return 2 * tp / (gold + pred)
