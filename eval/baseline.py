"""The plain chunked-RAG baseline over the same store: fixed 512-token chunks → the same answer writer.

What sectionrag is measured against. It ignores sections: each stored document's full text
(``store.document_text``) is cut into consecutive, non-overlapping windows of ``chunk_tokens``
tokens of the shipped MiniLM tokenizer (special tokens included, so a 512-token chunk holds 510
text tokens and is embedded whole: the model has 512 positions and ``max_seq_length`` is raised
to 512 for this), embedded with the same MiniLM, and searched exactly (FAISS flat inner product).
The top ``k`` chunks go straight to the same answer writer with the same prompt; there is no
section selection, no evidence-sentence selection, no verifier and no rewrite loop.

The chunk index is derived data cached under ``STORE/chunk_baseline/``: one folder per (store
generation, chunk size, embedder), written to a temporary folder and renamed into place, so a
reader never sees half an index. When the store changes the index is rebuilt, re-using the
embeddings of documents whose text did not change.

Everything it uses comes through the public API: the store's documents, the pipeline's embedder (a copy
that reads 512 tokens) and its answer writer (``Pipeline.draft``, the prompt ``ask`` uses).

>>> base = ChunkBaseline.open("store/")                     # builds or loads the chunk index
>>> chunks = base.search("How can the agreement be terminated?", k=5)
>>> answer = base.answer("How can the agreement be terminated?", k=5, llm="extractive")
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from pipeline import ABSTAIN_TEXT, Answer, Citation, Evidence, Pipeline
from pipeline.text import MIN_WORDS, content_words, relevance, sentence_spans, split_claims, trim_span

log = logging.getLogger(__name__)

CACHE_DIR = "chunk_baseline"
CACHE_FORMAT = 1
MODEL_POSITIONS = 512
# the extractive writer, like the pipeline's, quotes the best sentences within this margin of the best
EXTRACTIVE_SENTENCES = 2
EXTRACTIVE_MARGIN = 0.15


@dataclass(frozen=True, slots=True)
class Chunk:
    """A fixed-size window of a document: ``text == document_text[start:end]``; ``score`` is cosine."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float = 0.0


def chunk_spans(text: str, tokenizer, chunk_tokens: int) -> list[tuple[int, int]]:
    """Char spans of consecutive windows of ``chunk_tokens - 2`` text tokens (room for [CLS] and [SEP])."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = [(s, e) for s, e in enc["offset_mapping"] if e > s]
    room = chunk_tokens - 2
    spans = []
    for i in range(0, len(offsets), room):
        s, e = trim_span(text, offsets[i][0], offsets[min(i + room, len(offsets)) - 1][1])
        if e > s:
            spans.append((s, e))
    return spans


class ChunkBaseline:
    """Top-k fixed-size chunks from an exact FAISS index, answered by the same writer without a verifier."""

    def __init__(self, pipeline: Pipeline, embedder, chunk_tokens: int, doc_ids: list[str],
                 starts: np.ndarray, ends: np.ndarray, index: faiss.Index) -> None:
        self.pipeline = pipeline
        self.embedder = embedder
        self.chunk_tokens = chunk_tokens
        self.chunk_doc = doc_ids          # [N] doc id of chunk i
        self.starts = starts              # [N] int64
        self.ends = ends                  # [N] int64
        self.index = index                # IndexFlatIP over [N, D] unit vectors, id = chunk row
        rows: dict[str, list[int]] = {}
        for i, d in enumerate(doc_ids):
            rows.setdefault(d, []).append(i)
        self.rows_of = {d: np.asarray(r, dtype=np.int64) for d, r in rows.items()}
        self.build_stats: dict | None = None
        """Set when this instance built (rather than loaded) its index: chunks, embedded, seconds."""
        self._shas: dict[str, str] = {}
        self._texts: dict[str, str] = {}

    # -- build / load --------------------------------------------------------------------------
    @classmethod
    def open(cls, store: str | Path | Pipeline, chunk_tokens: int = 512, *, embedder=None,
             progress: bool = False) -> ChunkBaseline:
        """Loads the cached chunk index of the store (a folder, or a ``Pipeline`` over it, whose answer writer
        the baseline then uses) if it matches the store, else (re)builds it. ``embedder`` is one from an
        earlier ``open`` (the baseline's own 512-token copy of the pipeline's)."""
        if not 16 <= chunk_tokens <= MODEL_POSITIONS:
            raise ValueError(f"chunk_tokens must be between 16 and {MODEL_POSITIONS} (the embedder's positions)")
        pipeline = store if isinstance(store, Pipeline) else Pipeline(store)
        if embedder is None:
            # a model of its own: the baseline embeds whole 512-token chunks, the pipeline ≤ 256-token passages
            embedder = pipeline.embedder.with_max_seq_length(MODEL_POSITIONS)
        model_key = str(embedder.model_path or "default-minilm")
        generation = pipeline.generation
        root = pipeline.folder / CACHE_DIR
        name = f"c{chunk_tokens}-g{generation}"
        folder = root / name
        meta = _read_meta(folder)
        if meta and meta.get("model") == model_key and meta.get("format") == CACHE_FORMAT:
            return cls._load(pipeline, embedder, chunk_tokens, folder)
        previous = _latest_cache(root, chunk_tokens, model_key)
        self = cls._build(pipeline, embedder, chunk_tokens, previous, progress)
        self._save(root, name, generation, model_key)
        return self

    @classmethod
    def _load(cls, pipeline: Pipeline, embedder, chunk_tokens: int, folder: Path) -> ChunkBaseline:
        arrays = np.load(folder / "chunks.npz", allow_pickle=False)
        doc_ids = json.loads((folder / "docs.json").read_text())["chunk_docs"]
        index = faiss.read_index(str(folder / "chunks.faiss"))
        return cls(pipeline, embedder, chunk_tokens, doc_ids, arrays["starts"], arrays["ends"], index)

    @classmethod
    def _build(cls, pipeline: Pipeline, embedder, chunk_tokens: int, previous: Path | None,
               progress: bool) -> ChunkBaseline:
        reuse: dict[str, tuple[str, np.ndarray, np.ndarray, np.ndarray]] = {}
        if previous is not None:  # documents whose text is unchanged keep their chunks and vectors
            try:
                old = cls._load(pipeline, embedder, chunk_tokens, previous)
                shas = json.loads((previous / "docs.json").read_text())["sha"]
                vecs = old.index.reconstruct_n(0, old.index.ntotal) if old.index.ntotal else None
                for d, rows in old.rows_of.items():
                    reuse[d] = (shas[d], old.starts[rows], old.ends[rows], vecs[rows])
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                log.warning("chunk baseline: previous cache %s unusable (%s); embedding everything", previous, exc)
        t0 = time.perf_counter()
        doc_ids, starts, ends, vecs, shas = [], [], [], [], {}
        n_embedded = 0
        ids = pipeline.documents()
        it = ids
        if progress:
            from tqdm import tqdm

            it = tqdm(ids, desc="chunk baseline index", unit="doc", leave=False)
        for d in it:
            doc = pipeline.document(d)
            sha = doc.sha or str(hash(doc.text))
            shas[d] = sha
            if d in reuse and reuse[d][0] == sha:
                _, s, e, v = reuse[d]
            else:
                spans = chunk_spans(doc.text, embedder.tokenizer, chunk_tokens)
                s = np.asarray([a for a, _ in spans], dtype=np.int64)
                e = np.asarray([b for _, b in spans], dtype=np.int64)
                v = embedder.encode([doc.text[a:b] for a, b in spans])
                n_embedded += len(spans)
            doc_ids += [d] * len(s)
            starts.append(s)
            ends.append(e)
            vecs.append(v)
        dim = embedder.dim
        index = faiss.IndexFlatIP(dim)
        if vecs:
            index.add(np.ascontiguousarray(np.concatenate(vecs), dtype=np.float32))
        self = cls(pipeline, embedder, chunk_tokens, doc_ids,
                   np.concatenate(starts) if starts else np.zeros(0, np.int64),
                   np.concatenate(ends) if ends else np.zeros(0, np.int64), index)
        self._shas = shas
        self.build_stats = {"chunks": len(doc_ids), "embedded": n_embedded, "seconds": time.perf_counter() - t0}
        return self

    def _save(self, root: Path, name: str, generation: int, model_key: str) -> None:
        tmp = root / f".{name}.tmp{os.getpid()}"
        try:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            np.savez(tmp / "chunks.npz", starts=self.starts, ends=self.ends)
            faiss.write_index(self.index, str(tmp / "chunks.faiss"))
            (tmp / "docs.json").write_text(json.dumps({"chunk_docs": self.chunk_doc, "sha": self._shas}))
            # meta last: a folder without it is never loaded
            (tmp / "meta.json").write_text(json.dumps({"format": CACHE_FORMAT, "generation": generation,
                                                       "chunk_tokens": self.chunk_tokens, "model": model_key,
                                                       "chunks": len(self.chunk_doc)}))
            final = root / name
            if final.exists():  # another process built the same generation meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                os.rename(tmp, final)
            for other in root.glob(f"c{self.chunk_tokens}-g*"):
                if other.name != name:
                    shutil.rmtree(other, ignore_errors=True)
        except OSError as exc:  # a read-only store still gets a baseline, just not a cached one
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("chunk baseline: could not cache the index under %s (%s)", root, exc)

    # -- search --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.chunk_doc)

    def _text(self, doc_id: str) -> str:
        if doc_id not in self._texts:
            self._texts[doc_id] = self.pipeline.document(doc_id).text
        return self._texts[doc_id]

    def search(self, question: str, k: int, doc_ids: Sequence[str] | None = None) -> list[Chunk]:
        """The ``k`` chunks most similar to the question (cosine), best first, within ``doc_ids`` if given."""
        if k < 1:
            raise ValueError("k must be at least 1")
        params = None
        if doc_ids:
            unknown = [d for d in doc_ids if d not in self.rows_of]
            if len(unknown) == len(doc_ids):
                return []
            rows = np.concatenate([self.rows_of[d] for d in doc_ids if d in self.rows_of]).astype(np.int64)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows))
        if self.index.ntotal == 0:
            return []
        q = self.embedder.encode_cached([question])
        scores, ids = self.index.search(q, min(k, self.index.ntotal), params=params)
        out = []
        for i, score in zip(ids[0], scores[0]):
            if i < 0:
                continue
            d, s, e = self.chunk_doc[i], int(self.starts[i]), int(self.ends[i])
            out.append(Chunk(doc_id=d, start=s, end=e, text=self._text(d)[s:e], score=float(score)))
        return out

    # -- answer --------------------------------------------------------------------------------
    def answer(self, question: str, k: int, llm: str, doc_ids: Sequence[str] | None = None) -> Answer:
        """The top ``k`` chunks, numbered, straight to the answer writer; its claims are returned unchecked.

        Citations are the chunks the writer cites (``[n]``), whole. ``support`` is 1.0 for any answer
        (nothing is verified, every claim is returned) and 0.0 when the writer abstains. ``llm`` is
        ``extractive`` or the writer of the pipeline the baseline was opened with (``Pipeline.draft``).
        """
        return self.answer_with_chunks(question, k, llm, doc_ids)[0]

    def answer_with_chunks(self, question: str, k: int, llm: str, doc_ids: Sequence[str] | None = None
                           ) -> tuple[Answer, list[Chunk]]:
        """``answer`` and the chunks the writer was given (what the evaluation judges the answer against)."""
        t0 = time.perf_counter()
        chunks = self.search(question, k, doc_ids)
        evidence = [Evidence(n=i + 1, doc_id=c.doc_id, section_id="", start=c.start, end=c.end, text=c.text,
                             score=c.score) for i, c in enumerate(chunks)]
        t1 = time.perf_counter()
        if not evidence:
            text, claims = "", []
        elif llm == "extractive":
            text = self._extractive(question, evidence)
            claims = split_claims(text)
        else:
            draft = self.pipeline.draft(question, evidence, llm=llm)
            text, claims = draft.text, list(draft.claims)
        t2 = time.perf_counter()
        timings = (("retrieve", round(t1 - t0, 4)), ("synthesize", round(t2 - t1, 4)), ("total", round(t2 - t0, 4)))
        if not claims:
            return Answer(text=ABSTAIN_TEXT, citations=(), abstained=True, support=0.0, timings=timings), chunks
        by_n = {ev.n: ev for ev in evidence}
        cited = [by_n[n] for _, ns in claims for n in ns if n in by_n]
        citations = tuple(dict.fromkeys(Citation(doc_id=ev.doc_id, section_id="", start=ev.start, end=ev.end,
                                                 quote=ev.text) for ev in cited))
        return Answer(text=text.strip(), citations=citations, abstained=False, support=1.0, timings=timings), chunks

    def _extractive(self, question: str, evidence: list[Evidence]) -> str:
        """No LLM: the chunks' sentences closest to the question, verbatim, each citing its chunk.

        The same rule as the pipeline's extractive writer (best sentences within a margin of the best,
        ``pipeline.text.relevance``), applied to the chunks it was handed.
        """
        cands = []
        for ev in evidence:
            for s, e in sentence_spans(ev.text, max_chars=600):
                if len(content_words(ev.text[s:e])) >= MIN_WORDS:
                    cands.append((ev.n, ev.text[s:e]))
        if not cands:
            return f"{' '.join(evidence[0].text.split())} [1]"
        vecs = self.embedder.encode_cached([question, *(t for _, t in cands)])
        scores = relevance(question, vecs[0], [t for _, t in cands], vecs[1:])
        order = np.argsort(-scores)[:EXTRACTIVE_SENTENCES]
        best = scores[order[0]]
        picked = [int(i) for i in order if scores[i] >= best - EXTRACTIVE_MARGIN]
        return " ".join(f"{' '.join(cands[i][1].split())} [{cands[i][0]}]" for i in picked)

    def close(self) -> None:
        self.pipeline.close()


def _read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def _latest_cache(root: Path, chunk_tokens: int, model_key: str) -> Path | None:
    best, best_gen = None, -1
    for folder in root.glob(f"c{chunk_tokens}-g*"):
        meta = _read_meta(folder)
        if meta and meta.get("model") == model_key and meta.get("format") == CACHE_FORMAT and meta["generation"] > best_gen:
            best, best_gen = folder, meta["generation"]
    return best
