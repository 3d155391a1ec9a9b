"""Vector index at scale: build time, memory, query latency and recall@10 against exact search.

The passage index (``pipeline.index``) switches from an exact flat index to IVF past
``ivf_threshold`` passages. This benchmark builds each kind over N synthetic 384-d unit vectors
(default 1M) and measures, in one run: build seconds, index bytes, single-query latency p50/p95 at
the configured ``nprobe`` / ``efSearch``, and recall@10 against the exact flat index's answers.

Synthetic vectors mimic sentence embeddings' neighbourhood structure rather than being isotropic
noise (on which no approximate index is meaningful): points are drawn around topic centres on the
unit sphere, about 100 points per topic (cosine ≈ 0.55 between points of a topic, ≈ 0 across),
queries from the same distribution. Queries run one at a time on one thread, as a serving process
answers them; building uses every core.

    python -m pipeline.bench_index --n 1000000 --queries 1000 --json
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import faiss
import numpy as np

from pipeline.config import IndexConfig
from pipeline.index import ivf_cells, make_index

FLAT_TIMED = 100


def synthetic(n: int, dim: int, centres: int, seed: int, spread: float = 0.9) -> np.ndarray:
    """``n`` unit vectors [n, dim] around ``centres`` random topic centres."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    step = 200_000
    for i in range(0, n, step):
        m = min(step, n - i)
        x = c[rng.integers(0, centres, m)] + spread * rng.standard_normal((m, dim)).astype(np.float32) / np.sqrt(dim)
        out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def overlap_at_10(found: np.ndarray, truth: np.ndarray, rows: int) -> float:
    """Mean share of the exact top 10 that ``found`` holds, over the first ``rows`` queries."""
    return float(np.mean([len(set(found[i]) & set(truth[i])) / 10 for i in range(rows)]))


def index_bytes(index: faiss.Index) -> int:
    return int(faiss.serialize_index(index).nbytes)


def bench(n: int, n_queries: int, kinds: list[str], cfg: IndexConfig, seed: int = 0) -> dict:
    dim = 384
    t0 = time.perf_counter()
    data = synthetic(n + n_queries, dim, centres=max(1, n // 100), seed=seed)
    threads = faiss.omp_get_max_threads()
    base, queries = data[:n], data[n:]
    ids = np.arange(n, dtype=np.int64)
    gen_s = time.perf_counter() - t0
    rows = []
    truth = None
    for kind in ["flat"] + [k for k in kinds if k != "flat"]:
        t0 = time.perf_counter()
        train = base[np.random.default_rng(seed).choice(n, size=min(cfg.ivf_train_size, n), replace=False)] \
            if kind == "ivf" else None
        index = make_index(kind, dim, train, n_total=n, hnsw_m=cfg.hnsw_m)
        for i in range(0, n, 100_000):
            index.add_with_ids(base[i:i + 100_000], ids[i:i + 100_000])
        build_s = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)
        params = {"ivf": faiss.SearchParametersIVF(nprobe=cfg.nprobe),
                  "hnsw": faiss.SearchParametersHNSW(efSearch=cfg.ef_search)}.get(kind)
        # an exact scan of N vectors per query is slow one at a time: the truth comes from one batched
        # (BLAS) search, and the flat row's single-query latency is timed on the first FLAT_TIMED queries
        timed = min(n_queries, FLAT_TIMED) if kind == "flat" else n_queries
        found = np.empty((n_queries, 10), dtype=np.int64)
        lat = []
        for qi in range(timed):
            t = time.perf_counter()
            _, hits = index.search(queries[qi:qi + 1], 10, params=params)
            lat.append(time.perf_counter() - t)
            found[qi] = hits[0]
        if kind == "flat":
            faiss.omp_set_num_threads(threads)
            _, truth = index.search(queries, 10)
            faiss.omp_set_num_threads(1)
            # single-query and batched exact search may order float ties differently; report it
            same = overlap_at_10(found, truth, timed)
            found = truth
        recall = overlap_at_10(found, truth, n_queries)
        lat.sort()
        row = {"kind": kind, "n": n, "build_s": round(build_s, 1), "index_mb": round(index_bytes(index) / 2**20, 1),
               "p50_ms": round(1000 * lat[len(lat) // 2], 2), "p95_ms": round(1000 * lat[int(0.95 * len(lat))], 2), "timed_queries": len(lat),
               "recall@10": round(recall, 4)}
        if kind == "flat":
            row["single_vs_batched_overlap"] = round(same, 4)
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        if kind == "ivf":
            row |= {"nlist": index.nlist, "nprobe": cfg.nprobe, "train_vectors": len(train)}
        if kind == "hnsw":
            row |= {"M": cfg.hnsw_m, "efSearch": cfg.ef_search}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
        faiss.omp_set_num_threads(threads)
        del index
    return {"n": n, "dim": dim, "queries": n_queries, "build_threads": threads, "query_threads": 1,
            "generate_s": round(gen_s, 1), "ivf_cells_rule": f"4*sqrt(n) -> {ivf_cells(n)}", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--kinds", default="flat,ivf", help="comma-separated: flat, ivf, hnsw (flat is always run: it is the truth)")
    ap.add_argument("--nprobe", type=int, default=IndexConfig.nprobe)
    ap.add_argument("--ef-search", type=int, default=IndexConfig.ef_search)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cfg = IndexConfig(nprobe=args.nprobe, ef_search=args.ef_search)
    result = bench(args.n, args.queries, args.kinds.split(","), cfg)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for r in result["rows"]:
            print(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
