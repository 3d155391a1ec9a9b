"""Evidence selection: the sentences that bear most on the question, numbered for the writer.

The answer writer gets single sentences instead of whole passages: a small local model stays on
topic when every line it sees is relevant, and a citation to a sentence is precise enough for a
reader to check at a glance. Two selections:

* ``select_digest`` (the ``summarize`` stage): every sentence of the best sections competes, each
  scored on its own embedding and on its in-context vector from the long encoder's whole-section
  reading (``encoders.SectionReader``);
* ``select_evidence`` (the stage switched off): only the sentences of the best few passages (whole
  sentences of their sections, also where a passage window cuts one), each embedded on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np

from graphs.verifier import Embed
from pipeline.store import SectionStore
from pipeline.text import MIN_WORDS, STOPWORDS, content_words, relevance, sentence_spans
from pipeline.types import Evidence, ScoredPassage, ScoredUnit, Section

MAX_SENTENCE_CHARS = 600
NEAR_DUPLICATE = 0.95
"""Cosine above which a sentence repeats one already picked (overlapping passages, boilerplate)."""


class ReadSentences(Protocol):
    """``encoders.SectionReader.sentence_vectors``: (section id, section text, spans) → [N, D] unit vectors."""

    def __call__(self, key: str, text: str, spans: Sequence[tuple[int, int]]) -> np.ndarray: ...


Candidate = tuple[str, str, int, int, str]
"""(doc_id, section_id, start, end, text): a sentence with its document offsets."""


def section_sentences(text: str, section: Section) -> list[tuple[int, int]]:
    """Spans (into ``text``, the section's document) of the section's sentences with at least
    ``MIN_WORDS`` content words: the sentences that can become evidence."""
    return [(s, e) for s, e in sentence_spans(text, section.start, section.end, max_chars=MAX_SENTENCE_CHARS)
            if len(content_words(text[s:e])) >= MIN_WORDS]


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
    cands: list[Candidate] = []
    texts: dict[str, str] = {}
    top = [sp.passage for sp in passages[:max_passages]]
    sections = store.sections_by_id(p.section_id for p in top)
    in_section: dict[str, list[tuple[int, int]]] = {}
    for p in top:
        if p.doc_id not in texts:  # one read per document, not per passage
            texts[p.doc_id] = store.document_text(p.doc_id)
        text = texts[p.doc_id]
        # whole sentences: split the passage's section, not the passage, whose window starts and ends
        # mid-sentence, and keep the sentences the passage overlaps
        if p.section_id not in in_section:
            in_section[p.section_id] = section_sentences(text, sections[p.section_id])
        for s, e in in_section[p.section_id]:
            if not (s < p.end and e > p.start) or (p.doc_id, s, e) in seen:
                continue
            seen.add((p.doc_id, s, e))
            cands.append((p.doc_id, p.section_id, s, e, text[s:e]))
    if not cands:
        return []
    vecs = embed([question, *(c[4] for c in cands)])
    scores = relevance(question, vecs[0], [c[4] for c in cands], vecs[1:])
    return _pick(cands, scores, vecs[1:], max_sentences)


def select_digest(
    question: str,
    sections: Sequence[Section],
    store: SectionStore,
    embed: Embed,
    read: ReadSentences,
    *,
    max_sentences: int,
    max_chars: int,
    encoder_weight: float,
) -> list[Evidence]:
    """The query-focused digest of whole ``sections``: up to ``max_sentences`` sentences (about
    ``max_chars`` characters), best first.

    A sentence's similarity to the question is ``(1 - w) ×`` that of its own embedding ``+ w ×`` that
    of its in-context vector (``read``), ``w = encoder_weight``; ``relevance`` adds the word overlap.
    """
    cands: list[Candidate] = []
    spans_of: list[tuple[Section, list[tuple[int, int]]]] = []
    texts: dict[str, str] = {}
    for sec in sections:
        if sec.doc_id not in texts:
            texts[sec.doc_id] = store.document_text(sec.doc_id)
        text = texts[sec.doc_id]
        spans = section_sentences(text, sec)
        spans_of.append((sec, spans))
        cands += [(sec.doc_id, sec.id, s, e, text[s:e]) for s, e in spans]
    if not cands:
        return []
    vecs = embed([question, *(c[4] for c in cands)])
    q_vec, own = vecs[0], vecs[1:]
    similar = own
    if encoder_weight > 0:
        in_context = np.concatenate([
            read(sec.id, texts[sec.doc_id][sec.start:sec.end], [(s - sec.start, e - sec.start) for s, e in spans])
            for sec, spans in spans_of if spans])
        similar = (1 - encoder_weight) * own + encoder_weight * in_context
    scores = relevance(question, q_vec, [c[4] for c in cands], similar)
    return _pick(cands, scores, own, max_sentences, max_chars)


def _pick(cands: Sequence[Candidate], scores: np.ndarray, vecs: np.ndarray, max_sentences: int,
          max_chars: int | None = None) -> list[Evidence]:
    """The best-scoring candidates, near-duplicates skipped, numbered 1.. best first."""
    picked: list[int] = []
    used = 0
    for i in np.argsort(-scores, kind="stable"):
        if len(picked) == max_sentences:
            break
        size = len(cands[i][4])
        if max_chars is not None and picked and used + size > max_chars:
            continue  # a long sentence that does not fit gives way to shorter ones that do
        if all(float(vecs[i] @ vecs[j]) < NEAR_DUPLICATE for j in picked):
            picked.append(int(i))
            used += size
    return [Evidence(n=k + 1, doc_id=cands[i][0], section_id=cands[i][1], start=cands[i][2], end=cands[i][3],
                     text=cands[i][4], score=float(scores[i])) for k, i in enumerate(picked)]


CHARS_PER_TOKEN = 4
"""The evidence budget counts about this many characters a token (MiniLM's WordPiece on English prose)."""


def select_trained(question: str, sections: Sequence[Section], store: SectionStore, reader, *, max_tokens: int,
                   min_score: float) -> list[Evidence]:
    """The trained reader's evidence from whole ``sections``: every sentence and table row scored with the
    question as global tokens; those scoring at least ``min_score``, best first while they fit ``max_tokens``,
    numbered in document order (the order a reader of the sections would meet them)."""
    from encoders.units import section_units

    texts: dict[str, str] = {}
    cands: list[tuple[float, int, Candidate]] = []
    for rank, sec in enumerate(sections):
        if sec.doc_id not in texts:
            texts[sec.doc_id] = store.document_text(sec.doc_id)
        text = texts[sec.doc_id]
        units = section_units(text, sec.start, sec.end, sec.path)
        scores = reader.read(text[sec.start:sec.end], [(u.start - sec.start, u.end - sec.start) for u in units],
                             question, key=sec.id).unit_scores
        cands += [(float(sc), rank, (sec.doc_id, sec.id, u.start, u.end, text[u.start:u.end]))
                  for u, sc in zip(units, scores) if sc >= min_score]
    picked, used = [], 0
    for score, rank, cand in sorted(cands, key=lambda c: -c[0]):
        size = -(-len(cand[4]) // CHARS_PER_TOKEN)
        if picked and used + size > max_tokens:
            continue  # a long unit that does not fit gives way to shorter ones that do
        picked.append((rank, cand, score))
        used += size
    picked.sort(key=lambda p: (p[0], p[1][2]))
    return [Evidence(n=k + 1, doc_id=c[0], section_id=c[1], start=c[2], end=c[3], text=c[4], score=score)
            for k, (_, c, score) in enumerate(picked)]


def score_units(question: str, sections: Sequence[Section], store: SectionStore, scorer: str, *, embed: Embed,
                read: ReadSentences | None = None, reader=None) -> list[ScoredUnit]:
    """Every reading unit of ``sections`` (in their order, then document order) scored for ``question`` by
    ``scorer`` (``pipeline.types.UNIT_SCORERS``): ``lead`` — earlier is better; ``bm25`` — BM25 of the unit's
    content words against the question's, the units of these sections as the collection; ``minilm`` — cosine of
    the unit embedded alone; ``encoder`` — cosine of the untrained long encoder's in-context vector (``read``);
    ``trained`` — the trained reader's evidence probability (``reader``)."""
    from encoders.units import section_units
    from graphs.injection import GuardedStore

    store = GuardedStore(store)  # read as the answer flow reads (the readers cache by section id)
    sections = store.guard_sections(sections)
    texts = {s.doc_id: store.document_text(s.doc_id) for s in sections}
    per_section = [(s, section_units(texts[s.doc_id], s.start, s.end, s.path)) for s in sections]
    flat = [(s, u) for s, units in per_section for u in units]
    unit_texts = [texts[s.doc_id][u.start:u.end] for s, u in flat]
    match scorer:
        case "lead":
            scores = -np.arange(len(flat), dtype=np.float64)
        case "bm25":
            scores = bm25(question, unit_texts)
        case "minilm":
            vecs = embed([question, *unit_texts]) if flat else np.zeros((1, 1))
            scores = vecs[1:] @ vecs[0]
        case "encoder":
            if read is None:
                raise ValueError("the encoder scorer needs the long encoder's sentence reading")
            q = embed([question])[0]
            parts = [read(s.id, texts[s.doc_id][s.start:s.end], [(u.start - s.start, u.end - s.start) for u in units])
                     for s, units in per_section if units]
            scores = np.concatenate(parts) @ q if parts else np.zeros(0)
        case "trained":
            if reader is None:
                raise ValueError("the trained scorer needs the trained reader")
            parts = [reader.read(texts[s.doc_id][s.start:s.end], [(u.start - s.start, u.end - s.start) for u in units],
                                 question, key=s.id).unit_scores for s, units in per_section if units]
            scores = np.concatenate(parts) if parts else np.zeros(0)
        case _:
            raise ValueError(f"unknown unit scorer {scorer!r}")
    return [ScoredUnit(doc_id=s.doc_id, section_id=s.id, start=u.start, end=u.end, kind=u.kind, score=float(x))
            for (s, u), x in zip(flat, scores)]


def bm25(query: str, texts: Sequence[str], k1: float = 1.2, b: float = 0.75, *,
         words: Callable[[str], Iterable[str]] | None = None,
         query_words: Callable[[str], Iterable[str]] | None = None) -> np.ndarray:
    """Okapi BM25 of each of ``texts`` for ``query``, ``texts`` as the collection; ``words`` splits a text into its
    terms (default: content words of two letters or more), ``query_words`` the query (default: ``words``)."""
    words = words or _words
    docs = [list(words(t)) for t in texts]
    if not docs:
        return np.zeros(0)
    avg = sum(map(len, docs)) / len(docs) or 1.0
    df: dict[str, int] = {}
    for d in docs:
        for w in set(d):
            df[w] = df.get(w, 0) + 1
    out = np.zeros(len(docs))
    for w in set((query_words or words)(query)):
        if w not in df:
            continue
        idf = np.log(1 + (len(docs) - df[w] + 0.5) / (df[w] + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(w)
            if tf:
                out[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avg))
    return out


def _words(text: str):
    return (w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS and len(w) > 1)
