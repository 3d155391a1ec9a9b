"""Checking a hypothesis against documents: does a contract entail it, contradict it, or not mention it?

The Span NLI design over whole sections: the trained reader (``encoders.EvidenceReader``) reads each
section with the hypothesis as global tokens, scores every sentence and table row as evidence and gives
the section's verdict; a document's verdict is its most-mentioning section's (``encoders.reader.combine``).
Short documents are read in full, section by section (an NDA is a few thousand tokens); in longer ones only
the sections retrieval selects for the hypothesis. The evidence is the deciding section's best units, each
an exact span of the stored text.

>>> verdict = check_hypothesis(store, retriever, reader, "Receiving Party may share information with employees.",
...                            ["nda-17"], config)
>>> verdict.label, verdict.confidence, [c.quote for c in verdict.evidence]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from encoders.reader import EvidenceReader, combine
from encoders.units import section_units
from graphs.injection import GuardedStore, overlaps
from pipeline.config import PipelineConfig
from pipeline.retrieve import Retriever
from pipeline.store import SectionStore
from pipeline.types import Citation, ScoredSection, ScoredUnit, Verdict


def sections_to_read(store: SectionStore, retriever: Retriever, hypothesis: str, doc_ids: Sequence[str] | None,
                     config: PipelineConfig) -> list[ScoredSection]:
    """Every section of the documents in scope when they are short enough to read whole, else the sections
    retrieval selects for the hypothesis."""
    docs = list(doc_ids) if doc_ids else store.document_ids()
    sections = [s for d in docs for s in store.sections(d)]
    if sum(s.tokens for s in sections) <= config.check.read_all_tokens:
        return [ScoredSection(s, 0.0) for s in sections]
    return list(retriever.retrieve(hypothesis, None, doc_ids).sections)


def check_hypothesis(store: SectionStore, retriever: Retriever, reader: EvidenceReader, hypothesis: str,
                     doc_ids: Sequence[str] | None, config: PipelineConfig) -> Verdict:
    cfg = config.check
    # planted instructions (graphs/injection.py) are read as blanks and never become a verdict's evidence
    guard = store if isinstance(store, GuardedStore) else GuardedStore(store)
    sections = sections_to_read(guard, retriever, hypothesis, doc_ids, config)
    texts: dict[str, str] = {}
    readings, units_of = [], []
    for scored in sections:
        s = guard.guard_sections([scored.section])[0]
        if s.doc_id not in texts:
            texts[s.doc_id] = guard.document_text(s.doc_id)
        units = section_units(texts[s.doc_id], s.start, s.end, s.path)
        readings.append(reader.read(s.text, [(u.start - s.start, u.end - s.start) for u in units], hypothesis,
                                    key=s.id))
        units_of.append([(u.start, u.end, u.kind) for u in units])
    label, confidence, best = combine(readings, cfg.threshold)
    order = list(range(len(sections)))
    if best is not None:
        order.remove(best)
        order.insert(0, best)
    evidence: list[Citation] = []
    if best is not None:
        s, scores = sections[best].section, readings[best].unit_scores
        for rank, i in enumerate(np.argsort(-scores, kind="stable")[: cfg.max_evidence]):
            if rank and scores[i] < cfg.evidence_score:  # a verdict always shows the unit it rests on most
                break
            a, b, _ = units_of[best][i]
            if overlaps(s.doc_id, a, b, guard.flagged):
                continue
            evidence.append(Citation(doc_id=s.doc_id, section_id=s.id, start=a, end=b, quote=texts[s.doc_id][a:b]))
        evidence.sort(key=lambda c: c.start)
    scored = [ScoredUnit(doc_id=sec.section.doc_id, section_id=sec.section.id, start=a, end=b, kind=kind,
                         score=round(float(x), 5))
              for sec, units, r in zip(sections, units_of, readings) for (a, b, kind), x in zip(units, r.unit_scores)]
    scored.sort(key=lambda u: (u.doc_id, u.start))
    return Verdict(hypothesis=hypothesis, label=label, confidence=round(confidence, 4), evidence=tuple(evidence),
                   sections=tuple(sections[i] for i in order), units=tuple(scored))
