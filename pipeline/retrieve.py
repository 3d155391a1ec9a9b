"""Retrieval: passages from the vector and lexical indexes, fused, then aggregated per section.

A question's passages are ranked by FAISS (cosine) and by SQLite FTS5 (BM25); the two rankings are
combined by weighted reciprocal-rank fusion. A section's score sums its passages' fused scores with
a decay (best passage counts fully, the next ones less), so a long section with several relevant
passages outranks one lucky passage, but many weak hits do not drown a strong one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.config import RetrieveConfig
from pipeline.index import PassageIndex
from pipeline.store import SectionStore
from pipeline.types import Passage, ScoredSection

RRF_K = 60
SECTION_DECAY = 0.5


@dataclass(frozen=True, slots=True)
class ScoredPassage:
    passage: Passage
    score: float


@dataclass(frozen=True, slots=True)
class Retrieval:
    """The selected sections in rank order and, for each, its passages best first."""

    sections: tuple[ScoredSection, ...]
    passages: tuple[ScoredPassage, ...]


def fuse(rankings: Sequence[tuple[Sequence[int], float]], k: int = RRF_K) -> dict[int, float]:
    """Weighted reciprocal-rank fusion: ``[(ids best first, weight)]`` → ``{id: score}``."""
    scores: dict[int, float] = defaultdict(float)
    for ids, weight in rankings:
        for rank, pid in enumerate(ids):
            scores[int(pid)] += weight / (k + rank + 1)
    return dict(scores)


def section_scores(passage_scores: dict[str, list[float]]) -> dict[str, float]:
    """Per-section score: its passage scores, best first, summed with geometric decay."""
    out = {}
    for sid, scores in passage_scores.items():
        scores = sorted(scores, reverse=True)
        out[sid] = float(sum(s * SECTION_DECAY**i for i, s in enumerate(scores)))
    return out


class Retriever:
    def __init__(self, store: SectionStore, index: PassageIndex, embed, cfg: RetrieveConfig) -> None:
        self.store = store
        self.index = index
        self.embed = embed  # callable: list[str] -> [N, D] unit vectors
        self.cfg = cfg

    def retrieve(self, question: str, top_sections: int | None = None, doc_ids: Sequence[str] | None = None) -> Retrieval:
        k = self.cfg.top_passages
        restrict = self.store.passage_rowids(doc_ids) if doc_ids else None
        qvec = self.embed([question])[0]
        dense_ids, _ = self.index.search(qvec, k, rowids=restrict)
        rankings = [(dense_ids.tolist(), 1.0 - self.cfg.lexical_weight)]
        if self.cfg.lexical_weight > 0:
            lexical = self.store.lexical_search(question, k, doc_ids=list(doc_ids) if doc_ids else None)
            rankings.append(([pid for pid, _ in lexical], self.cfg.lexical_weight))
        fused = fuse(rankings)
        passages = self.store.passages_by_rowid(fused)
        by_section: dict[str, list[float]] = defaultdict(list)
        for pid, score in fused.items():
            if pid in passages:
                by_section[passages[pid].section_id].append(score)
        ranked = sorted(section_scores(by_section).items(), key=lambda kv: -kv[1])
        chosen = ranked[: top_sections or self.cfg.top_sections]
        sections = self.store.sections_by_id(sid for sid, _ in chosen)
        selected = tuple(ScoredSection(sections[sid], score) for sid, score in chosen if sid in sections)
        keep = {s.id for s in selected}
        scored = sorted((ScoredPassage(p, fused[pid]) for pid, p in passages.items() if p.section_id in keep),
                        key=lambda sp: -sp.score)
        return Retrieval(sections=selected, passages=tuple(scored))

