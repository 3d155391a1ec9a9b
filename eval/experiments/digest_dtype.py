"""What ``[summarize] dtype`` buys: the digest's time and answers in float32 and in bfloat16, one run.

For the first question on each of ``--docs`` documents of a suite that the store holds (items in the
dataset's order, one per document, so every question is its document's first and the encoder reads its sections cold), a fresh
``Pipeline`` per precision answers with the extractive writer, restricted to that document. Reported per
precision: the summed ``summarize`` time and wall time, the tokens the encoder read; then how many answers
and citation sets are the same in both. The rows run one after the other in one process, so they share
the machine alike.

    python -m eval.experiments.digest_dtype --suite financebench --store STORE --docs 8 [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from eval.datasets import load_suite

DTYPES = ("float32", "bfloat16")


def first_questions(suite: str, data_dir: Path, docs: int, stored: set[str]) -> list:
    """The first item of each of the first ``docs`` documents (dataset order) that the store holds."""
    seen, items = set(), []
    for item in load_suite(suite, data_dir).items:
        if item.doc_id in stored and item.doc_id not in seen:
            seen.add(item.doc_id)
            items.append(item)
        if len(items) == docs:
            break
    return items


def measure(store: Path, items: list, dtype: str) -> dict:
    from pipeline import Pipeline, PipelineConfig

    # every question through the digest (a typed answer would skip it): the digest is what is timed
    config = PipelineConfig().replace(synthesize={"llm": "extractive"}, summarize={"dtype": dtype},
                                      answers={"typed": ()})
    answers, wall, digest = [], 0.0, 0.0
    with Pipeline(store, config) as p:
        for item in items:
            start = time.perf_counter()
            answer = p.ask(item.question, doc_ids=[item.doc_id])
            wall += time.perf_counter() - start
            digest += dict(answer.timings).get("summarize", 0.0)
            answers.append((answer.text, sorted((c.doc_id, c.start, c.end) for c in answer.citations)))
        tokens = int(p.reading()["tokens"])
    return {"dtype": dtype, "questions": len(items), "summarize_s": round(digest, 2), "wall_s": round(wall, 2),
            "encoder_tokens": tokens, "answers": answers}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.experiments.digest_dtype", description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="financebench")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--store", type=Path, required=True, help="a store holding the suite's documents")
    ap.add_argument("--docs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.docs < 1:
        ap.error("--docs must be at least 1")
    if not args.store.is_dir():
        ap.error(f"--store {args.store} is not a folder")
    import torch

    from pipeline import Pipeline

    torch.set_num_threads(args.threads)
    with Pipeline(args.store) as p:
        stored = set(p.documents())
    items = first_questions(args.suite, args.data, args.docs, stored)
    if not items:
        print(f"error: the store {args.store} holds none of the {args.suite} documents", file=sys.stderr)
        return 2
    rows = [measure(args.store, items, dtype) for dtype in DTYPES]
    same_text = sum(a[0] == b[0] for a, b in zip(rows[0]["answers"], rows[1]["answers"], strict=True))
    same_cites = sum(a[1] == b[1] for a, b in zip(rows[0]["answers"], rows[1]["answers"], strict=True))
    result = {"suite": args.suite, "questions": len(items), "threads": args.threads,
              "rows": [{k: v for k, v in r.items() if k != "answers"} for r in rows],
              "digest_speedup": round(rows[0]["summarize_s"] / max(rows[1]["summarize_s"], 1e-9), 2),
              "same_answers": same_text, "same_citations": same_cites}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for r in result["rows"]:
            print(f"{r['dtype']:>9}: digest {r['summarize_s']} s, wall {r['wall_s']} s, "
                  f"{r['encoder_tokens']} encoder tokens over {r['questions']} first questions")
        print(f"digest {result['digest_speedup']}x faster in bfloat16; same answers {same_text} of {len(items)}, "
              f"same citations {same_cites} of {len(items)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
