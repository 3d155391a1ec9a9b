"""Evidence selection: the sentences of the retrieved passages that bear most on the question.

The answer writer gets single sentences, numbered, instead of whole passages: a small local model
stays on topic when every line it sees is relevant, and a citation to a sentence is precise enough
for a reader to check at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphs.state import Evidence
from graphs.verifier import Embed, content_words
from pipeline.retrieve import ScoredPassage
from pipeline.store import SectionStore
from pipeline.text import sentence_spans

MIN_WORDS = 3
MAX_SENTENCE_CHARS = 600


def relevance(question: str, q_vec: np.ndarray, texts: Sequence[str], vecs: np.ndarray) -> np.ndarray:
    """0.7 × cosine + 0.3 × share of the question's content words present."""
    q_words = content_words(question)
    overlap = np.array([len(q_words & content_words(t)) / len(q_words) if q_words else 0.0 for t in texts])
    return 0.7 * (vecs @ q_vec) + 0.3 * overlap


def select_evidence(
    question: str,
    passages: Sequence[ScoredPassage],
    store: SectionStore,
    embed: Embed,
    *,
    max_passages: int,
    max_sentences: int,
) -> list[Evidence]:
    """Up to ``max_sentences`` evidence sentences from the best ``max_passages`` passages, best first."""
    seen: set[tuple[str, int, int]] = set()
    cands: list[tuple[str, str, int, int, str]] = []
    texts: dict[str, str] = {}
    for sp in passages[:max_passages]:
        p = sp.passage
        if p.doc_id not in texts:  # one read per document, not per passage
            texts[p.doc_id] = store.document_text(p.doc_id)
        text = texts[p.doc_id]
        for s, e in sentence_spans(text, p.start, p.end, max_chars=MAX_SENTENCE_CHARS):
            if (p.doc_id, s, e) in seen or len(content_words(text[s:e])) < MIN_WORDS:
                continue
            seen.add((p.doc_id, s, e))
            cands.append((p.doc_id, p.section_id, s, e, text[s:e]))
    if not cands:
        return []
    vecs = embed([question, *(c[4] for c in cands)])
    scores = relevance(question, vecs[0], [c[4] for c in cands], vecs[1:])
    picked: list[int] = []
    for i in np.argsort(-scores):
        if len(picked) == max_sentences:
            break
        # near-duplicates (overlapping passage windows, repeated boilerplate) add nothing
        if all(float(vecs[1 + i] @ vecs[1 + j]) < 0.95 for j in picked):
            picked.append(int(i))
    return [Evidence(n=k + 1, doc_id=cands[i][0], section_id=cands[i][1], start=cands[i][2], end=cands[i][3], text=cands[i][4], score=float(scores[i]))
            for k, i in enumerate(picked)]
