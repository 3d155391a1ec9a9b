"""Throughput figures a run reports beside its answers: peak memory, MiniLM passages per second, and the long
encoder's tokens per second reading whole sections."""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence

from eval.datasets import Item
from pipeline import Pipeline

ENCODER_SECTIONS = 4
ENCODER_MAX_TOKENS = 16384
EMBEDDING_PASSAGES = 128


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def embedding_speed(store: Pipeline, embedder=None, n: int = EMBEDDING_PASSAGES) -> dict:
    """Passages embedded per second by the systems' shared MiniLM (stored passage texts, batch as
    configured); the store pipeline's own when this run answered nothing."""
    passages = store.passages(n)
    if not passages:
        return {"passages_per_s": None}
    emb = embedder if embedder is not None else store.embedder
    emb.encode([passages[0].text])  # warm
    t0 = time.perf_counter()
    emb.encode([p.text for p in passages])
    dt = time.perf_counter() - t0
    return {"passages": len(passages), "seconds": round(dt, 3), "passages_per_s": len(passages) / dt}


def encoder_speed(store: Pipeline, items: Sequence[Item], sections: int = ENCODER_SECTIONS) -> dict:
    """Tokens per second of the long sparse encoder reading this suite's sections whole, each with its
    question as global tokens: the longest stored section of each of the first documents the run asks about
    (CPU threads as the process has them; sections past ``ENCODER_MAX_TOKENS`` are cut there)."""
    picked: dict[str, tuple[str, str]] = {}  # document → (its longest section's text, the first question on it)
    for it in items:
        if len(picked) == sections:
            break
        if it.doc_id not in picked and (secs := store.sections(it.doc_id)):
            picked[it.doc_id] = (max(secs, key=lambda s: len(s.text)).text, it.question)
    note = ("the long sparse encoder (kernels' blocked CPU backend) reading whole sections with the question as "
            "global tokens; the digest in answers reads each section once without it (throughput 'digest')")
    return {**store.encoder_throughput(list(picked.values()), max_tokens=ENCODER_MAX_TOKENS), "note": note}
