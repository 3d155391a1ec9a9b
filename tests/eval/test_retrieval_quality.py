"""``python -m eval.retrieval_quality`` on real data: section recall against the chunk baseline."""

from __future__ import annotations

import shutil

import pytest
from conftest import SHARED_DATA

from eval import retrieval_quality
from pipeline import Pipeline

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
