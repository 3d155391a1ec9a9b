"""Retrieval quality and latency on CUAD and FinanceBench: sectionrag's sections against top-k chunks.

CUAD (every contract in one store; each answerable question restricted to its own contract, as a
user asking about one contract would): a question is a hit at k when one of the first k returned
units (sections, or 512-token chunks for the baseline) wholly contains one of its gold clause spans.
FinanceBench (every filing in one store, no filter): an evidence item is a hit at k when one of the
first k units overlaps its gold page of its filing; ``wrong_period_share@5`` is the share of the top 5 units that
come from another period's filing of the same company.

Both systems run on the same store and embedder in the same process; every retrieval call is timed,
so the latency figures are for the same queries. Variants switch one retrieval stage off (lexical
fusion, metadata matching) to show what each is worth.

    python -m eval.retrieval_quality --suite cuad --store STORE --json
    python -m eval.retrieval_quality --suite financebench --store STORE --json
    python -m eval.retrieval_quality --suite cuad --store STORE --no-variants --baseline-ks 5,20,40

``--baseline-ks`` adds the baseline's recall within its top k chunks for larger k, to compare the
two at equal tokens (sections are longer than chunks).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from eval.baseline import ChunkBaseline
from pipeline import Pipeline
from pipeline.config import PipelineConfig

KS = (1, 3, 5, 10)
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@dataclass(frozen=True)
class Unit:
    """A returned unit of text: a section or a chunk, as offsets into its document."""

    doc_id: str
    start: int
    end: int
    tokens: int


@dataclass(frozen=True)
class Item:
    question: str
    doc_filter: tuple[str, ...] | None
    gold: tuple[tuple[str, int, int], ...]
    """``(doc_id, start, end)`` spans; a hit needs one inside a unit (CUAD) or overlapping it (pages)."""


def cuad_items(data: Path, pipe: Pipeline, limit: int | None, seed: int = 0) -> list[Item]:
    items = []
    known = set(pipe.documents())
    for line in (data / "cuad" / "cuad_qa.jsonl").open():
        r = json.loads(line)
        if r.get("is_impossible") or not r.get("answers") or r["doc_id"] not in known:
            continue
        gold = tuple((r["doc_id"], a["answer_start"], a["answer_start"] + len(a["text"])) for a in r["answers"])
        items.append(Item(r["question"], (r["doc_id"],), gold))
    if limit:
        items = random.Random(seed).sample(items, min(limit, len(items)))
    return items


def financebench_items(data: Path, pipe: Pipeline, limit: int | None, seed: int = 0) -> list[Item]:
    items = []
    known = set(pipe.documents())
    for line in (data / "financebench" / "questions.jsonl").open():
        r = json.loads(line)
        for ev in r["evidence"]:
            if ev["doc_name"] not in known:
                continue
            doc = pipe.document(ev["doc_name"])
            n = ev["evidence_page_num"]
            if n >= doc.pages:
                continue
            end = doc.page_starts[n + 1] if n + 1 < doc.pages else len(doc.text)
            items.append(Item(r["question"], None, ((ev["doc_name"], doc.page_starts[n], end),)))
    if limit:
        items = random.Random(seed).sample(items, min(limit, len(items)))
    return items


def contains(unit: Unit, gold: tuple[str, int, int]) -> bool:
    return unit.doc_id == gold[0] and unit.start <= gold[1] and gold[2] <= unit.end


def overlaps(unit: Unit, gold: tuple[str, int, int]) -> bool:
    return unit.doc_id == gold[0] and unit.start < gold[2] and gold[1] < unit.end


def wrong_period(data: Path) -> Callable[[Unit, tuple], bool]:
    """Whether a returned unit comes from another period's filing of the gold filing's company (FinanceBench's
    document_information: the same company, another ``doc_period``)."""
    info = {r["doc_name"]: r for r in map(json.loads, (data / "financebench" / "document_information.jsonl").open())}

    def check(unit: Unit, gold: tuple) -> bool:
        a, b = info.get(unit.doc_id), info.get(gold[0])
        return bool(a and b and a["company"] == b["company"] and a["doc_period"] != b["doc_period"])
    return check


def evaluate(items: list[Item], search: Callable[[Item], list[Unit]], hit: Callable[[Unit, tuple], bool],
             name: str, wrong: Callable[[Unit, tuple], bool] | None = None) -> dict:
    hits = {k: 0 for k in KS}
    wrong_units = total_units = 0
    tokens = {k: [] for k in KS}
    latencies = []
    for item in tqdm(items, desc=name, file=sys.stderr, leave=False):
        t0 = time.perf_counter()
        units = search(item)
        latencies.append(time.perf_counter() - t0)
        for k in KS:
            top = units[:k]
            hits[k] += any(hit(u, g) for u in top for g in item.gold)
            tokens[k].append(sum(u.tokens for u in top))
        if wrong is not None:
            wrong_units += sum(wrong(u, item.gold[0]) for u in units[:5])
            total_units += len(units[:5])
    n = len(items)
    lat = sorted(latencies)
    return {
        "n": n,
        **{f"recall@{k}": round(hits[k] / n, 4) if n else None for k in KS},
        **{f"mean_tokens@{k}": round(statistics.fmean(tokens[k]), 1) if n else None for k in KS},
        "latency_ms_p50": round(1000 * lat[n // 2], 2) if n else None,
        "latency_ms_p95": round(1000 * lat[min(n - 1, int(0.95 * n))], 2) if n else None,
        **({"wrong_period_share@5": round(wrong_units / total_units, 4) if total_units else None,
            "wrong_period_units@5": wrong_units} if wrong is not None else {}),
    }


def section_search(pipe: Pipeline, k: int) -> Callable[[Item], list[Unit]]:
    def run(item: Item) -> list[Unit]:
        found = pipe.retrieve(item.question, top_sections=k, doc_ids=list(item.doc_filter) if item.doc_filter else None)
        return [Unit(s.doc_id, s.start, s.end, s.tokens) for s in found]
    return run


def chunk_search(baseline: ChunkBaseline, k: int) -> Callable[[Item], list[Unit]]:
    def run(item: Item) -> list[Unit]:
        chunks = baseline.search(item.question, k, doc_ids=list(item.doc_filter) if item.doc_filter else None)
        return [Unit(c.doc_id, c.start, c.end, baseline.chunk_tokens) for c in chunks]
    return run


def evaluate_top(items: list[Item], search: Callable[[Item], list[Unit]], hit: Callable[[Unit, tuple], bool],
                 k: int) -> dict:
    """Recall within all ``k`` units returned, and their mean size: a comparison at equal tokens."""
    hits, tokens = 0, []
    for item in tqdm(items, desc=f"top {k}", file=sys.stderr, leave=False):
        units = search(item)
        hits += any(hit(u, g) for u in units for g in item.gold)
        tokens.append(sum(u.tokens for u in units))
    n = len(items)
    return {"n": n, "k": k, "recall": round(hits / n, 4) if n else None,
            "mean_tokens": round(statistics.fmean(tokens), 1) if n else None}


def run(suite: str, store: Path, data: Path, limit: int | None, variants: bool, baseline: bool = True,
        lexical_weights: tuple[float, ...] = (), baseline_ks: tuple[int, ...] = ()) -> dict:
    k = max(KS)
    base_cfg = PipelineConfig().replace(retrieve={"top_sections": k, "token_budget": 10**9, "expand_references": False})
    # cross-referenced sections come after the ranked ones, so they do not change recall@k; this row
    # is there for the latency of the default retrieval, expansion included
    configs = {"sectionrag": base_cfg,
               "sectionrag_with_xref": base_cfg.replace(retrieve={"expand_references": True})}
    if variants:
        configs["sectionrag_dense_only"] = base_cfg.replace(retrieve={"lexical_weight": 0.0})
        configs["sectionrag_lexical_only"] = base_cfg.replace(retrieve={"lexical_weight": 1.0})
        if suite == "financebench":
            configs["sectionrag_no_metadata"] = base_cfg.replace(retrieve={"match_metadata": False})
    for w in lexical_weights:
        configs[f"sectionrag_lexical_{w:g}"] = base_cfg.replace(retrieve={"lexical_weight": w})
    out: dict = {"suite": suite, "store": str(store), "systems": {}}
    with Pipeline(store, base_cfg) as pipe:
        if suite == "cuad":
            items, hit = cuad_items(data, pipe, limit), contains
            out["systems_hit_rule"] = "a returned unit wholly contains a gold clause span"
        else:
            items, hit = financebench_items(data, pipe, limit), overlaps
            out["systems_hit_rule"] = "a returned unit overlaps the gold evidence page of its filing"
        out["store_counts"] = {"documents": len(pipe.documents()),
                               "documents_with_items": len({g[0] for it in items for g in it.gold})}
        wrong = wrong_period(data) if suite == "financebench" else None
        for name, cfg in configs.items():
            pipe.config = cfg
            out["systems"][name] = evaluate(items, section_search(pipe, k), hit, name, wrong)
        if not baseline:
            return out
        t0 = time.perf_counter()
        baseline = ChunkBaseline.open(store, 512, progress=True)  # its own embedder: it sets 512 positions
        out["chunk_baseline_open_s"] = round(time.perf_counter() - t0, 1)
        out["systems"]["chunk_baseline"] = evaluate(items, chunk_search(baseline, k), hit, "chunk_baseline", wrong)
        if baseline_ks:
            out["chunk_baseline_at_k"] = [evaluate_top(items, chunk_search(baseline, bk), hit, bk) for bk in baseline_ks]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=["cuad", "financebench"], required=True)
    ap.add_argument("--store", type=Path, required=True, help="a store holding the suite's documents")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, help="a seeded sample of this many items")
    ap.add_argument("--no-variants", action="store_true", help="skip the dense-only / lexical-only / no-metadata rows")
    ap.add_argument("--no-baseline", action="store_true", help="skip the chunk baseline (it embeds every document again)")
    ap.add_argument("--lexical-weights", help="comma-separated extra rows with these retrieve.lexical_weight values")
    ap.add_argument("--baseline-ks", help="comma-separated chunk counts: the baseline's recall within its top k "
                    "chunks, to compare with sections at equal tokens")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    weights = tuple(float(w) for w in args.lexical_weights.split(",")) if args.lexical_weights else ()
    ks = tuple(int(k) for k in args.baseline_ks.split(",")) if args.baseline_ks else ()
    if any(k < 1 for k in ks):
        ap.error("--baseline-ks: chunk counts must be positive")
    result = run(args.suite, args.store, args.data, args.limit, not args.no_variants, not args.no_baseline, weights, ks)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['suite']}: {result['systems_hit_rule']}")
        for name, m in result["systems"].items():
            print(f"{name:26s} n={m['n']} " + " ".join(f"R@{k}={m[f'recall@{k}']}" for k in KS)
                  + f" tokens@5={m['mean_tokens@5']} p50={m['latency_ms_p50']}ms p95={m['latency_ms_p95']}ms"
                  + (f" wrong-period@5={m['wrong_period_share@5']}" if "wrong_period_share@5" in m else ""))
        for m in result.get("chunk_baseline_at_k", []):
            print(f"chunk_baseline top {m['k']:<4d} recall={m['recall']} mean tokens={m['mean_tokens']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
