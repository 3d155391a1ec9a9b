"""The vector-index scale benchmark (``python -m pipeline.bench_index``) at a small size."""

from __future__ import annotations

from pipeline import bench_index
from pipeline.config import IndexConfig


def test_index_scale_bench_small():
    out = bench_index.bench(6000, 60, ["flat", "ivf", "hnsw"], IndexConfig())
    rows = {r["kind"]: r for r in out["rows"]}
    assert set(rows) == {"flat", "ivf", "hnsw"}
    assert rows["flat"]["recall@10"] == 1.0 and rows["flat"]["timed_queries"] == 60
    assert rows["ivf"]["recall@10"] >= 0.9 and rows["hnsw"]["recall@10"] >= 0.9
    assert rows["ivf"]["nlist"] > 1
    for r in rows.values():
        assert 0 < r["p50_ms"] <= r["p95_ms"] and r["index_mb"] > 0 and r["peak_rss_mb"] > 0
