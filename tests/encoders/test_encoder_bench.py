"""The encoder benchmark's contract: one JSON object with device and rows, each row from its own process."""

from __future__ import annotations

import json

import pytest

from encoders.bench import bench_encoder, main


def test_bench_encoder_rows_follow_the_contract():
    result = bench_encoder([128], impls=["sectionrag_blocked", "hf_bert_sdpa"], repeats=1, progress=False)
    assert result["device"].startswith("cpu")
    assert [row["impl"] for row in result["rows"]] == ["sectionrag_blocked", "hf_bert_sdpa"]
    for row in result["rows"]:
        assert {"impl", "length", "ms", "tokens_per_s", "peak_mb"} <= set(row)
        assert row["length"] == 128 and row["ms"] > 0 and row["tokens_per_s"] > 0 and row["peak_mb"] >= 0
    assert result["rows"][1]["ratio_vs_bert_sdpa"] == 1.0
    json.dumps(result)


def test_main_prints_one_json_object(capsys):
    assert main(["--lengths", "64", "--impls", "sectionrag_blocked", "--repeats", "1", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0])["rows"][0]["impl"] == "sectionrag_blocked"


def test_bad_arguments_are_one_clear_error(capsys):
    assert main(["--lengths", "64", "--impls", "nope", "--json"]) == 2
    assert "unknown encoder impl" in capsys.readouterr().err
    with pytest.raises(ValueError, match="lengths"):
        bench_encoder([])


def test_attention_bench_runs_on_the_cpu():
    from kernels.bench import bench_attention

    result = bench_attention([256], device="cpu", impls=["blocked", "sdpa"], repeats=1)
    assert [row["impl"] for row in result["rows"]] == ["blocked", "sdpa"] and all("ms" in r for r in result["rows"])


def test_rows_run_in_each_precision_and_ratios_stay_within_one():
    result = bench_encoder([128], impls=["sectionrag_blocked", "hf_bert_sdpa"], repeats=1, progress=False,
                           dtypes=["float32", "bfloat16"])
    assert [(r["impl"], r["dtype"]) for r in result["rows"]] == [
        ("sectionrag_blocked", "float32"), ("hf_bert_sdpa", "float32"),
        ("sectionrag_blocked", "bfloat16"), ("hf_bert_sdpa", "bfloat16")]
    assert [r["ratio_vs_bert_sdpa"] for r in result["rows"][1::2]] == [1.0, 1.0]  # each against its own precision
    assert result["config"]["dtype"] == ["float32", "bfloat16"]
    with pytest.raises(ValueError, match="dtype"):
        bench_encoder([128], impls=["hf_bert_sdpa"], dtypes=["float16"])
