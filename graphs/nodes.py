"""The graph's nodes (verbs) and its router. Each node returns only the state keys it changes."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Literal

from graphs import prompts
from graphs.evidence import ReadSentences, select_digest, select_evidence
from graphs.llm import ChatModel
from graphs.state import ClaimCheck, Evidence, QAState
from graphs.verifier import Embed, split_claims, verify_claims
from pipeline.config import PipelineConfig
from pipeline.retrieve import Retriever
from pipeline.store import SectionStore
from pipeline.types import Answer, Citation

ABSTAIN_TEXT = "The documents do not contain a supported answer to this question."


@dataclass
class QANodes:
    """The nodes, bound to the pipeline's store, retriever, embedder, section reader and answer writer."""

    store: SectionStore
    retriever: Retriever
    embed: Embed
    llm: ChatModel | None
    config: PipelineConfig
    read: ReadSentences | None = None
    """The long encoder's in-context sentence vectors (``SectionReader.sentence_vectors``); needed when
    the digest is on with ``summarize.encoder_weight`` > 0."""

    # -- retrieve ------------------------------------------------------------------------------
    def retrieve(self, state: QAState) -> dict:
        t0 = time.perf_counter()
        cfg = self.config.retrieve
        found = self.retriever.retrieve(state.question, state.top_sections, state.doc_ids, state.filters)
        changes: dict = {"sections": list(found.sections)}
        if not self.config.summarize.enabled:  # the evidence comes from the best passages instead
            evidence = select_evidence(state.question, found.passages, self.store, self.embed,
                                       max_passages=cfg.evidence_passages, max_sentences=cfg.evidence_sentences)
            changes["evidence"] = self._relevant(evidence)
        changes["timings"] = {"retrieve": time.perf_counter() - t0}
        return changes

    def _relevant(self, evidence: list[Evidence]) -> list[Evidence]:
        # evidence too weakly related to the question is no evidence: the writer then abstains
        return [ev for ev in evidence if ev.score >= self.config.retrieve.min_evidence_score]

    # -- summarize -----------------------------------------------------------------------------
    def summarize(self, state: QAState) -> dict:
        """The digest of the best sections, read whole: their sentences most relevant to the question."""
        cfg = self.config.summarize
        if not cfg.enabled:
            return {}
        t0 = time.perf_counter()
        if cfg.encoder_weight > 0 and self.read is None:
            raise ValueError("summarize.encoder_weight > 0 needs the section reader (QANodes.read)")
        best = sorted(state.sections, key=lambda s: -s.score)[:cfg.max_sections]
        evidence = select_digest(state.question, [s.section for s in best], self.store, self.embed, self.read,
                                 max_sentences=cfg.digest_sentences, max_chars=cfg.digest_chars,
                                 encoder_weight=cfg.encoder_weight)
        return {"evidence": self._relevant(evidence), "timings": {"summarize": time.perf_counter() - t0}}

    # -- synthesize ----------------------------------------------------------------------------
    def synthesize(self, state: QAState) -> dict:
        t0 = time.perf_counter()
        if not state.evidence:
            draft = prompts.NOT_FOUND
        elif self.llm is None:
            draft = self._extractive(state)
        elif state.claims:  # a revision after verification
            draft = self.llm.chat(prompts.revision_messages(state.question, state.evidence, state.draft, state.claims),
                                  self.config.synthesize.max_new_tokens)
        else:
            draft = self.llm.chat(prompts.answer_messages(state.question, state.evidence),
                                  self.config.synthesize.max_new_tokens)
        spent = state.timings.get("synthesize", 0.0) + time.perf_counter() - t0
        changes: dict = {"draft": draft, "timings": {"synthesize": spent}}
        if state.claims:
            changes["revisions"] = state.revisions + 1
        return changes

    def _extractive(self, state: QAState, max_sentences: int = 2) -> str:
        """No LLM: the evidence sentences closest to the question, verbatim, each cited."""
        best = state.evidence[0].score
        picked = [ev for ev in state.evidence[:max_sentences] if ev.score >= best - 0.15]
        return " ".join(f"{' '.join(ev.text.split())} [{ev.n}]" for ev in picked)

    # -- verify --------------------------------------------------------------------------------
    def verify(self, state: QAState) -> dict:
        t0 = time.perf_counter()
        if prompts.NOT_FOUND in state.draft.upper() or not state.evidence:
            return {"claims": [], "timings": {"verify": time.perf_counter() - t0}}
        by_n = {ev.n: ev for ev in state.evidence}
        parsed = split_claims(state.draft)
        if not self.config.verify.enabled:  # ablation: every claim is kept, citing what it cites
            claims = []
            for claim, cited in parsed:
                evs = [by_n[n] for n in dict.fromkeys(cited) if n in by_n]
                citations = tuple(Citation(doc_id=ev.doc_id, section_id=ev.section_id, start=ev.start, end=ev.end,
                                           quote=ev.text) for ev in evs)
                claims.append(ClaimCheck(claim=claim, evidence=tuple(ev.n for ev in evs), citations=citations,
                                         support=1.0, supported=True))
            return {"claims": claims, "timings": {"verify": time.perf_counter() - t0}}
        cited_per_claim = []
        for _claim, cited in parsed:
            cited_ev = [by_n[n] for n in dict.fromkeys(cited) if n in by_n]
            cited_per_claim.append(cited_ev)
        # an uncited claim (or one citing evidence that does not exist) is judged against every
        # evidence sentence and keeps the one that supports it best
        pairs = [(i, ev) for i, evs in enumerate(cited_per_claim) for ev in (evs or state.evidence)]
        scored = verify_claims([parsed[i][0] for i, _ in pairs], [ev.text for _, ev in pairs], self.embed)
        best: dict[int, tuple[float, Evidence]] = {}
        for (i, ev), (support, _) in zip(pairs, scored):
            if not cited_per_claim[i] and (i not in best or support > best[i][0]):
                best[i] = (support, ev)
        groups = [evs or [best[i][1]] for i, evs in enumerate(cited_per_claim)]
        results = verify_claims([c for c, _ in parsed], [" ".join(ev.text for ev in evs) for evs in groups], self.embed)
        threshold = self.config.verify.min_claim_support
        claims = []
        for (claim, _), evs, (support, reasons) in zip(parsed, groups, results):
            citations = tuple(Citation(doc_id=ev.doc_id, section_id=ev.section_id, start=ev.start, end=ev.end,
                                       quote=ev.text) for ev in evs)
            claims.append(ClaimCheck(claim=claim, evidence=tuple(ev.n for ev in evs), citations=citations,
                                     support=support, supported=support >= threshold, reasons=reasons))
        spent = state.timings.get("verify", 0.0) + time.perf_counter() - t0
        return {"claims": claims, "timings": {"verify": spent}}

    def route_after_verify(self, state: QAState) -> Literal["synthesize", "quote", "finalize"]:
        unsupported = any(not c.supported for c in state.claims)
        if unsupported and self.llm is not None and not state.quoted and state.revisions < self.config.verify.max_revisions:
            return "synthesize"
        if (not any(c.supported for c in state.claims) and self.llm is not None and not state.quoted
                and state.evidence and self.config.verify.fallback == "quote"):
            return "quote"
        return "finalize"

    def quote(self, state: QAState) -> dict:
        """The writer's claims all failed verification: answer with the most relevant evidence, verbatim."""
        return {"draft": self._extractive(state), "quoted": True, "claims": []}

    # -- finalize ------------------------------------------------------------------------------
    def finalize(self, state: QAState) -> dict:
        kept = [c for c in state.claims if c.supported]
        if not kept:
            answer = Answer(text=ABSTAIN_TEXT, citations=(), abstained=True, support=0.0,
                            sections=tuple(state.sections), timings=tuple(state.timings.items()))
            return {"answer": answer}
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
        answer = Answer(text=" ".join(parts), citations=tuple(citations), abstained=False,
                        support=len(kept) / len(state.claims), sections=tuple(state.sections),
                        timings=tuple(state.timings.items()))
        return {"answer": answer}
