"""``python -m eval.experiments.digest_dtype`` on a store of one real CUAD contract."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import SHARED_DATA

from eval.experiments import digest_dtype
from pipeline import Pipeline

CUAD = SHARED_DATA / "cuad"
CONTRACT = "RMRGROUPINC_01_22_2020-EX-99.1-JOINT FILING AGREEMENT.txt"


@pytest.mark.skipif(not CUAD.is_dir(), reason="../shared/data is not here")
def test_digest_dtype_times_both_precisions_on_a_real_contract(tmp_path, capsys):
    src = tmp_path / "contracts"
    src.mkdir()
    shutil.copy(CUAD / "contracts" / CONTRACT, src / CONTRACT)
    with Pipeline(tmp_path / "store") as pipe:
        assert pipe.ingest([src]).documents == 1
    assert digest_dtype.main(["--suite", "cuad", "--store", str(tmp_path / "store"), "--data", str(SHARED_DATA),
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
