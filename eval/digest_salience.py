"""Which sentence scoring puts gold evidence first? The digest's ``encoder_weight``, measured.

For items with gold evidence spans (CUAD answerable clauses, ContractNLI Entailment/Contradiction
evidence), on a store holding their documents: retrieval as the pipeline does it, then the sentences
of the best ``--sections`` sections ranked by ``relevance`` with the similarity taken

* from each sentence embedded on its own (``w = 0``),
* blended with its in-context vector from the long encoder's question-free, whole-section reading
  (``SectionReader``, what the digest uses) at weight ``w``,
* blended with the in-context vector of a reading with the question as global tokens;

and, as the peer, the sentences of the best 8 passages (``select_evidence``, the no-digest path).
Reported per ranking: the share of gold characters covered by the top 1, 2, 6 and 12 sentences, and
hit@1 (the top sentence touches gold). Items are drawn with a fixed seed.

    python -m eval.digest_salience --suite contractnli --store STORE --items 150 [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from eval.datasets import align_spans, load_suite

TOP = (1, 2, 6, 12)
WEIGHTS = (0.0, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0)


def coverage(picks: list[tuple[int, int]], gold: list[tuple[int, int]]) -> float:
    """Share of the gold characters inside the picked spans."""
    covered = total = 0
    for gs, ge in gold:
        mask = np.zeros(ge - gs, dtype=bool)
        for s, e in picks:
            a, b = max(s, gs), min(e, ge)
            if a < b:
                mask[a - gs:b - gs] = True
        covered, total = covered + int(mask.sum()), total + ge - gs
    return covered / total if total else 0.0


def measure(suite_name: str, data: Path, store: Path, n_items: int, n_sections: int = 3, seed: int = 3) -> dict:
    from encoders.long_encoder import LongEncoder
    from encoders.section_reader import SectionReader
    from graphs.evidence import relevance, section_sentences, select_evidence
    from pipeline import Pipeline

    suite = load_suite(suite_name, data)
    p = Pipeline(store)
    st, embed, retriever = p._open_store(), p.embedder.encode_cached, p._retriever()
    stored = set(p.documents())
    items = [it for it in suite.items if it.doc_id in stored and it.spans]
    random.Random(seed).shuffle(items)
    encoder = LongEncoder(p.embedder.model_path, window=256, max_tokens=32768)
    reader = SectionReader(encoder)
    runs: dict[str, dict[str, list[float]]] = {}

    def add(name: str, picks: list[tuple[int, int]], gold: list[tuple[int, int]]) -> None:
        r = runs.setdefault(name, {f"cov@{k}": [] for k in TOP} | {"hit@1": []})
        for k in TOP:
            r[f"cov@{k}"].append(coverage(picks[:k], gold))
        r["hit@1"].append(float(bool(picks) and coverage(picks[:1], gold) > 0))

    used = 0
    for it in items:
        if used == n_items:
            break
        text = st.document_text(it.doc_id)
        gold = align_spans(suite.source_text(it.doc_id), text, it.spans)
        found = retriever.retrieve(it.question, None, [it.doc_id], None)
        best = [s.section for s in sorted(found.sections, key=lambda s: -s.score)[:n_sections]]
        spans_of = [(sec, section_sentences(text, sec)) for sec in best]
        cands = [(s, e) for _, spans in spans_of for s, e in spans]
        if not gold or not cands:
            continue
        used += 1
        passages = select_evidence(it.question, found.passages, st, embed, max_passages=8, max_sentences=max(TOP))
        add("passages (no digest)", [(ev.start, ev.end) for ev in passages], gold)
        texts = [text[s:e] for s, e in cands]
        vecs = embed([it.question, *texts])
        q_vec, own = vecs[0], vecs[1:]
        free = np.concatenate([reader.sentence_vectors(sec.id, text[sec.start:sec.end],
                                                       [(s - sec.start, e - sec.start) for s, e in spans])
                               for sec, spans in spans_of])
        rows = []
        for sec, spans in spans_of:
            enc = encoder.encode(text[sec.start:sec.end], query=it.question,
                                 spans=[(s - sec.start, e - sec.start) for s, e in spans])
            rows.append(enc.span_embeddings)
        glob = np.concatenate(rows)
        glob /= np.maximum(np.linalg.norm(glob, axis=1, keepdims=True), 1e-9)
        for w in WEIGHTS:
            for label, ctx in (("question-free", free), ("question global", glob)):
                if w == 0 and label == "question global":
                    continue
                name = "own embedding only" if w == 0 else f"{label} w={w}"
                scores = relevance(it.question, q_vec, texts, (1 - w) * own + w * ctx)
                add(name, [cands[i] for i in np.argsort(-scores, kind="stable")], gold)
        print(f"{used}/{n_items}", file=sys.stderr, flush=True)
    p.close()
    return {"suite": suite_name, "items": used, "sections": n_sections,
            "rankings": {name: {k: float(np.mean(v)) for k, v in r.items()} for name, r in runs.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.digest_salience", description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=["cuad", "contractnli"], required=True)
    ap.add_argument("--store", type=Path, required=True, help="a store holding (some of) the suite's documents")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--items", type=int, default=150)
    ap.add_argument("--sections", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from pipeline.store import StoreError

    try:
        out = measure(args.suite, args.data, args.store, args.items, args.sections)
    except (StoreError, ValueError, FileNotFoundError) as exc:  # no store there, a dataset folder missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['suite']}: {out['items']} items, sentences of the best {out['sections']} sections")
        print(f"{'ranking':32s} " + " ".join(f"{k:>7s}" for k in (*(f'cov@{t}' for t in TOP), 'hit@1')))
        for name, r in out["rankings"].items():
            print(f"{name:32s} " + " ".join(f"{r[k]:7.3f}" for k in (*(f'cov@{t}' for t in TOP), 'hit@1')))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
