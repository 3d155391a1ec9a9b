"""The retrieval measurement scripts on real data: section recall against the chunk baseline, and the
vector-index scale benchmark at a small size."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import SHARED_DATA

from eval import bench_faiss_scale, digest_dtype, retrieval_quality
from pipeline import Pipeline
from pipeline.config import IndexConfig

CUAD = SHARED_DATA / "cuad"
CONTRACTS = ["RMRGROUPINC_01_22_2020-EX-99.1-JOINT FILING AGREEMENT.txt",
             "PcquoteComInc_19990721_S-1A_EX-10.11_6377149_EX-10.11_Co-Branding Agreement2.txt"]


@pytest.mark.skipif(not CUAD.is_dir(), reason="../shared/data is not here")
def test_cuad_section_recall_and_baseline_on_a_real_store(tmp_path):
    src = tmp_path / "contracts"
    src.mkdir()
    for name in CONTRACTS:
        shutil.copy(CUAD / "contracts" / name, src / name)
    with Pipeline(tmp_path / "store") as pipe:
        assert pipe.ingest([src]).documents == 2
    out = retrieval_quality.run("cuad", tmp_path / "store", SHARED_DATA, None, variants=False,
                                baseline=True, baseline_ks=(3, 20))
    assert out["store_counts"] == {"documents": 2, "documents_with_items": 2}
    sec, base = out["systems"]["sectionrag"], out["systems"]["chunk_baseline"]
    assert sec["n"] == base["n"] > 0
    for m in (sec, base):
        recalls = [m[f"recall@{k}"] for k in retrieval_quality.KS]
        assert recalls == sorted(recalls) and 0.0 <= recalls[0] and recalls[-1] <= 1.0
    # a contract is a handful of sections: the top 10 hold every gold clause
    assert sec["recall@10"] == 1.0
    at3, at20 = out["chunk_baseline_at_k"]
    assert at3["recall"] == base["recall@3"]          # the same ranking, cut at 3
    assert at20["recall"] >= base["recall@10"] and at20["mean_tokens"] >= at3["mean_tokens"] > 0


def test_faiss_scale_bench_small():
    out = bench_faiss_scale.bench(6000, 60, ["flat", "ivf", "hnsw"], IndexConfig())
    rows = {r["kind"]: r for r in out["rows"]}
    assert set(rows) == {"flat", "ivf", "hnsw"}
    assert rows["flat"]["recall@10"] == 1.0 and rows["flat"]["timed_queries"] == 60
    assert rows["ivf"]["recall@10"] >= 0.9 and rows["hnsw"]["recall@10"] >= 0.9
    assert rows["ivf"]["nlist"] > 1
    for r in rows.values():
        assert 0 < r["p50_ms"] <= r["p95_ms"] and r["index_mb"] > 0 and r["peak_rss_mb"] > 0


def one_contract_store(tmp_path, name: str):
    """A store holding one real CUAD contract."""
    src = tmp_path / "contracts"
    src.mkdir()
    shutil.copy(CUAD / "contracts" / name, src / name)
    with Pipeline(tmp_path / "store") as pipe:
        assert pipe.ingest([src]).documents == 1
    return tmp_path / "store"


@pytest.mark.skipif(not CUAD.is_dir(), reason="../shared/data is not here")
def test_digest_salience_ranks_real_gold_clauses(tmp_path, capsys):
    from eval import digest_salience

    store = one_contract_store(tmp_path, CONTRACTS[1])
    assert digest_salience.main(["--suite", "cuad", "--store", str(store), "--data", str(SHARED_DATA),
                                 "--items", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["items"] == 3
    rankings = out["rankings"]
    assert {"passages (no digest)", "own embedding only", "question-free w=0.25", "question global w=1.0"} <= set(rankings)
    for r in rankings.values():
        covs = [r[f"cov@{k}"] for k in digest_salience.TOP]
        assert covs == sorted(covs) and 0.0 <= covs[0] and covs[-1] <= 1.0
        assert 0.0 <= r["hit@1"] <= 1.0
    assert digest_salience.coverage([(0, 5), (8, 10)], [(3, 9)]) == pytest.approx(3 / 6)
    assert digest_salience.main(["--suite", "cuad", "--store", str(tmp_path / "none")]) == 2
    assert "no sectionrag store" in capsys.readouterr().err


@pytest.mark.skipif(not CUAD.is_dir(), reason="../shared/data is not here")
def test_digest_dtype_times_both_precisions_on_a_real_contract(tmp_path, capsys):
    store = one_contract_store(tmp_path, CONTRACTS[0])
    assert digest_dtype.main(["--suite", "cuad", "--store", str(store), "--data", str(SHARED_DATA),
                              "--docs", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["questions"] == 1  # the store holds one of the contracts
    assert [r["dtype"] for r in out["rows"]] == ["float32", "bfloat16"]
    for r in out["rows"]:
        assert r["summarize_s"] > 0 and r["encoder_tokens"] > 0 and r["wall_s"] >= r["summarize_s"]
    assert 0 <= out["same_answers"] <= 1 and out["digest_speedup"] > 0
    empty = tmp_path / "empty"
    with Pipeline(empty) as pipe:
        pipe.ingest([])
    assert digest_dtype.main(["--suite", "cuad", "--store", str(empty), "--data", str(SHARED_DATA)]) == 2
    assert "holds none" in capsys.readouterr().err
