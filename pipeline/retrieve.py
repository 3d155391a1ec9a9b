"""Retrieval: the few whole sections that hold the answer, within a token budget.

1. Scope: the documents a question may draw on: the caller's ``doc_ids``, else those whose
   metadata the question names (``pipeline.docmatch``: company, party, patient, fiscal year, form),
   further narrowed by a ``SectionFilter`` (document kind, dates of EHR sections).
2. Passages: ranked by FAISS (cosine) and by SQLite FTS5 (BM25, because defined terms, clause names,
   drug names and line items are exact strings); the rankings are combined by weighted
   reciprocal-rank fusion.
3. Sections: a section's score sums its passages' fused scores with a decay (the best passage
   counts fully, the next ones less), so a long section with several relevant passages outranks
   one lucky passage, but many weak hits do not drown a strong one. Sections are taken in score
   order while they fit the token budget (``top_sections`` at most).
4. Cross-references: "Section 9.2", "Item 7", "Note 12", "Exhibit B" in a selected section pull in
   the referenced section of the same document when the budget allows; it carries ``via``.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence

import numpy as np

from pipeline.config import RetrieveConfig
from pipeline.docmatch import DocFocus, DocProfile, match_documents
from pipeline.index import PassageIndex
from pipeline.store import SectionStore
from pipeline.types import Retrieval, ScoredPassage, ScoredSection, Section, SectionFilter
from pipeline.xref import KINDS_BY_DOC, find_references, heading_index, resolve

RRF_K = 60
SECTION_DECAY = 0.5
HEADING_CACHE = 256
"""(document, reference kind) heading indexes a retriever keeps: one pass over a document serves every
reference of that kind to it."""


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


def select_within_budget(ranked: Sequence[tuple[Section, float]], top: int, budget: int) -> list[tuple[Section, float]]:
    """Sections in rank order while they fit ``budget`` tokens, at most ``top``; one that does not
    fit is passed over for the next that does (the first is always taken, even if alone too long)."""
    chosen, used = [], 0
    for section, score in ranked:
        if len(chosen) >= top:
            break
        if chosen and used + section.tokens > budget:
            continue
        chosen.append((section, score))
        used += section.tokens
    return chosen


class Retriever:
    def __init__(self, store: SectionStore, index: PassageIndex, embed, cfg: RetrieveConfig) -> None:
        self.store = store
        self.index = index
        self.embed = embed  # callable: list[str] -> [N, D] unit vectors
        self.cfg = cfg
        self._profiles: tuple[int, list[DocProfile], dict[str, str]] | None = None
        self._headings: OrderedDict[tuple[int, str, str], dict[str, list[int]]] = OrderedDict()

    def _heading_index(self, doc_id: str, kind: str, text: str) -> dict[str, list[int]]:
        """``heading_index`` of a document, kept for the last HEADING_CACHE (document, kind) pairs."""
        key = (self.store.generation, doc_id, kind)
        found = self._headings.get(key)
        if found is None:
            found = self._headings[key] = heading_index(text, kind)
            while len(self._headings) > HEADING_CACHE:
                self._headings.popitem(last=False)
        self._headings.move_to_end(key)
        return found

    def _doc_profiles(self) -> tuple[list[DocProfile], dict[str, str]]:
        gen = self.store.generation
        if self._profiles is None or self._profiles[0] != gen:
            rows = self.store.document_metadata()
            self._profiles = (gen, [DocProfile.from_metadata(*r) for r in rows], {r[0]: r[1] for r in rows})
        return self._profiles[1], self._profiles[2]

    def scope(self, question: str, doc_ids: Sequence[str] | None, filters: SectionFilter | None) -> DocFocus:
        """The documents to search (``doc_ids`` ``None``: all), why, and how their sections rank (``DocFocus``)."""
        if doc_ids:
            return DocFocus(list(doc_ids))
        profiles, kinds = self._doc_profiles()
        allowed = None
        if filters and filters.kinds:
            allowed = [d for d, k in kinds.items() if k in filters.kinds]
            profiles = [p for p in profiles if p.doc_id in set(allowed)]
        if self.cfg.match_metadata:
            focus = match_documents(question, profiles)
            if focus.doc_ids is not None:
                return focus
        return DocFocus(allowed)

    def retrieve(self, question: str, top_sections: int | None = None, doc_ids: Sequence[str] | None = None,
                 filters: SectionFilter | None = None) -> Retrieval:
        cfg = self.cfg
        focus = self.scope(question, doc_ids, filters)
        docs, why, tiers = focus.doc_ids, focus.reason, focus.tiers
        if docs is not None and not docs:
            return Retrieval(sections=(), passages=(), scope="no document matches the filters")
        restrict = self.store.passage_rowids(docs) if docs is not None else None
        k = cfg.top_passages
        qvec = self.embed([question])[0]
        dense_ids, _ = self.index.search(qvec, k, rowids=restrict)
        rankings = [(dense_ids.tolist(), 1.0 - cfg.lexical_weight)]
        if cfg.lexical_weight > 0:
            lexical = self.store.lexical_search(question, k, doc_ids=docs)
            rankings.append(([pid for pid, _ in lexical], cfg.lexical_weight))
        fused = fuse(rankings)
        passages = self.store.passages_by_rowid(fused)
        by_section: dict[str, list[float]] = defaultdict(list)
        for pid, score in fused.items():
            if pid in passages:
                by_section[passages[pid].section_id].append(score)
        scored = section_scores(by_section)
        sections = self.store.sections_by_id(scored)
        # a named period's filing ranks wholly above the company's other filings (``DocFocus.tiers``)
        ranked = sorted(((sections[sid], sc) for sid, sc in scored.items() if sid in sections),
                        key=lambda pair: (tiers.get(pair[0].doc_id, 0), -pair[1], pair[0].doc_id, pair[0].ordinal))
        if filters is not None:
            ranked = [(s, sc) for s, sc in ranked if filters.keeps(s)]
        chosen = select_within_budget(ranked, top_sections or cfg.top_sections, cfg.token_budget)
        selected = [ScoredSection(s, sc) for s, sc in chosen]
        keep = {s.id for s in selected}
        out_passages = [ScoredPassage(p, fused[pid]) for pid, p in passages.items() if p.section_id in keep]
        if cfg.expand_references and cfg.max_references > 0 and selected:
            added, extra = self._expand(selected, cfg.token_budget - sum(s.tokens for s in selected), qvec)
            selected += added
            out_passages += extra
        out_passages.sort(key=lambda sp: -sp.score)
        return Retrieval(sections=tuple(selected), passages=tuple(out_passages), scope=why, notice=focus.notice)

    def _expand(self, selected: list[ScoredSection], room: int, qvec: np.ndarray
                ) -> tuple[list[ScoredSection], list[ScoredPassage]]:
        """Sections the selected ones cross-reference, best-ranked referrers first, within ``room`` tokens."""
        added: list[ScoredSection] = []
        passages: list[ScoredPassage] = []
        taken = [s.section for s in selected]
        _, kinds = self._doc_profiles()
        by_doc: dict[str, tuple[list[Section], str]] = {}  # sections and text, read once per document
        for referrer in selected:
            if len(added) >= self.cfg.max_references:
                break
            doc_id = referrer.doc_id
            if doc_id not in by_doc:
                by_doc[doc_id] = (self.store.sections(doc_id), self.store.document_text(doc_id))
            sections, text = by_doc[doc_id]
            for ref in find_references(referrer.section.text, KINDS_BY_DOC.get(kinds.get(doc_id, ""))):
                target = resolve(ref, text, sections, exclude=taken,
                                 index=self._heading_index(doc_id, ref.kind, text))
                if target is None or target.tokens > room:
                    continue
                why = f'referenced as "{" ".join(ref.text.split())}" by {" / ".join(referrer.path) or referrer.id}'
                score = referrer.score * SECTION_DECAY
                added.append(ScoredSection(target, score, via=why))
                taken.append(target)
                room -= target.tokens
                passages += self._section_passages(target, score, qvec)
                if len(added) >= self.cfg.max_references:
                    break
        return added, passages

    def _section_passages(self, section: Section, score: float, qvec: np.ndarray, n: int = 4) -> list[ScoredPassage]:
        """The ``n`` passages of ``section`` closest to the question, scored below its referrer."""
        rows = self.store.passages_of_section(section.id)
        if not rows:
            return []
        rowids = np.asarray([r for r, _ in rows], dtype=np.int64)
        sims = self.store.embeddings_of(rowids) @ np.asarray(qvec, dtype=np.float32)
        best = np.argsort(-sims, kind="stable")[:n]
        return [ScoredPassage(rows[i][1], score * (1.0 + float(sims[i])) / 2) for i in best]
