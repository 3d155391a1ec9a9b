"""Phase 4 of a question-answering run: the hallucination judge's verdicts and the suite's metrics per answer.

The judge (``eval.judge``) grades each answer's claims against the text the system had; answers recorded
while it was unavailable are judged on a later run (``rejudge``). Metrics are recomputed from the recorded
answers on every run (``score_records``), so old runs get new metrics without answering again.
"""

from __future__ import annotations

from eval.arithmetic import COMPUTED, check_computed
from eval.datasets import Item
from eval.records import AnswerRecord, JudgeVerdicts
from eval.scoring import run_from_record, score
from pipeline import Pipeline
from pipeline.types import VERDICT_LEADS


def load_judge(kind: str):
    """The hallucination judge of ``kind``, warmed up, and None; or None and a note saying why it is unavailable."""
    try:
        from eval.judge import make_judge

        judge = make_judge(kind)
        if hasattr(judge, "warm_up"):
            judge.warm_up()  # a judge without its weights says so once, not once per answer
        return judge, None
    except Exception as exc:  # the judge is a separate component; without it the rest is still measured
        return None, f"hallucination judge unavailable ({type(exc).__name__}: {exc}); hallucination rate not measured"


def judged_text(rec: AnswerRecord) -> str:
    """The answer's claims: a yes-no verdict's leading "Yes: " / "No: " is its label (scored as ``label_correct``),
    not a claim about the text."""
    lead = VERDICT_LEADS.get(rec.verdict or "", "")
    return rec.answer[len(lead):] if lead and rec.answer.startswith(lead) else rec.answer


def judge_one(judge, rec: AnswerRecord, sources: list[str]) -> None:
    """The judge's verdicts on the answer's claims; a computed claim ("0.66, computed as (1,469,502 / 2,213,556)")
    is checked by the harness's own arithmetic (``eval.arithmetic``: its operands written in the sources, its
    result recomputed), which a text judge cannot do."""
    try:
        text = judged_text(rec)
        computed = list(COMPUTED.finditer(text))
        rest = COMPUTED.sub(" ", text)
        j = judge.judge(rest, None, sources) if rest.strip(" .;") else None
        claims = list(j.claims) if j else []
        unsupported = [bool(u) for u in j.unsupported] if j else []
        scores = [round(float(x), 4) for x in j.scores] if j else []
        for m in computed:
            ok, _ = check_computed(m.group("result"), m.group("expression"), sources)
            claims.append(m.group(0).split("[")[0].strip())
            unsupported.append(not ok)
            scores.append(0.0 if ok else 1.0)
        rec.judge = JudgeVerdicts(claims=claims, unsupported=unsupported, scores=scores)
        rec.judge_error = None
    except Exception as exc:  # noqa: BLE001 - recorded with the answer; the judge is retried on a re-run
        rec.judge_error = f"{type(exc).__name__}: {exc}"


def rejudge(done: dict[str, AnswerRecord], keys: list[str], store: Pipeline, kind: str, notes: list[str]) -> bool:
    """Judges answers recorded while the judge was unavailable (their context is re-read from the store);
    True when any record changed."""
    pending = [done[k] for k in keys if k in done and done[k].ok and not done[k].abstained and done[k].judge is None]
    if not pending:
        return False
    judge, note = load_judge(kind)
    if judge is None:
        if note not in notes:
            notes.append(note)
        return False
    texts: dict[str, str] = {}
    for rec in pending:
        for doc_id, _, _ in rec.context:
            if doc_id not in texts:
                texts[doc_id] = store.document(doc_id).text
        judge_one(judge, rec, [texts[d][s:e] for d, s, e in rec.context])
    return True


def score_records(items: list[Item], records: dict[str, list[AnswerRecord]]) -> None:
    """Metrics are recomputed from the recorded answers: old runs get new metrics."""
    by_id = {it.id: it for it in items}
    for recs in records.values():
        for rec in recs:
            if rec.ok:
                rec.metrics = score(by_id[rec.item], run_from_record(rec), [tuple(g) for g in rec.gold])
