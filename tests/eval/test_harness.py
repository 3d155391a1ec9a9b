"""Smoke evaluation on the real development data: run_eval with a small limit and the extractive writer.

The quick test runs one suite with the two headline systems (CI runs it); the slow one runs every
suite with every default system. Both check the report's structure, not its numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval.harness import run_eval

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not here")


def check_suite_report(out: Path, result: dict, systems: list[str]) -> None:
    assert result["report"] == str(out / "report.html")
    assert set(result["systems"]) == set(systems)
    for name in systems:
        m = result["systems"][name]
        assert m["items"] == result["items"] and m["errors"] == 0
        assert {"quality", "headline", "hallucination_rate", "retrieval", "citations", "abstention",
                "latency_s"} <= m.keys()
        assert m["headline"]["metric"] == result["headline_metric"]
        assert m["latency_s"]["p50"] > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["systems"].keys() == result["systems"].keys()
    md = (out / "report.md").read_text()
    assert "## Headline" in md and all(f"| {name} |" in md for name in systems)
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") == 4
    for png in ("quality_hallucination", "retrieval", "latency", "throughput"):
        assert (out / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    lines = (out / "items.jsonl").read_text().splitlines()
    assert len(lines) == result["items"] * len(systems)


def test_smoke_contractnli_resumes(tmp_path):
    out, stores = tmp_path / "run", tmp_path / "stores"
    systems = ["sectionrag", "chunk_baseline"]
    result = run_eval("contractnli", DATA, out, limit=2, llm="extractive", systems=systems, progress=False,
                      store_root=stores)
    assert result["suite"] == "contractnli" and result["items"] == 2
    check_suite_report(out, result, systems)
    assert result["throughput"]["ingest"]["documents"] == 2
    enc = result["throughput"]["encoder"]  # the long encoder read the two NDAs' longest sections whole
    assert enc["sections"] == 2 and enc["tokens"] > 100 and enc["tokens_per_s"] > 0
    assert "encoder tokens/s" in (out / "report.md").read_text()
    # a second run finds every answer in items.jsonl and recomputes nothing
    before = (out / "items.jsonl").read_text()
    again = run_eval("contractnli", DATA, out, limit=2, llm="extractive", systems=systems, progress=False,
                     store_root=stores)
    assert (out / "items.jsonl").read_text().splitlines()[: len(before.splitlines())] == before.splitlines()
    assert again["throughput"]["ingest"] == result["throughput"]["ingest"]  # what was measured is kept
    assert again["throughput"]["encoder"] == enc
    assert again["systems"]["sectionrag"]["headline"] == result["systems"]["sectionrag"]["headline"]


def test_cli_prints_one_json_object(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "eval.harness", "--suite", "cuad", "--limit", "1", "--llm", "extractive",
                           "--systems", "sectionrag,chunk_baseline", "--out", str(out), "--store-root",
                           str(tmp_path / "stores"), "--no-progress", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["suite"] == "cuad" and set(result["systems"]) == {"sectionrag", "chunk_baseline"}
    assert result["report"] == str(out / "report.html") and (out / "report.html").exists()
    bad = subprocess.run([sys.executable, "-m", "eval.harness", "--suite", "cuad", "--out", str(out), "--data",
                          str(tmp_path / "nope"), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and bad.stdout == "" and "data folder" in bad.stderr


@pytest.mark.slow
def test_smoke_all_suites(tmp_path):
    out = tmp_path / "all"
    result = run_eval("all", DATA, out, limit=2, llm="extractive", progress=False, store_root=tmp_path / "stores")
    assert result["suite"] == "all" and set(result["suites"]) == {"cuad", "financebench", "contractnli", "synthea",
                                                                  "faithbench"}
    for suite in ("cuad", "financebench", "contractnli", "synthea"):
        res = result["suites"][suite]
        check_suite_report(out / suite, res, list(res["systems"]))
        assert set(result["systems"]["sectionrag"]) >= {suite}
    assert (out / "report.html").exists() and (out / "report.md").read_text().count("| sectionrag |") == 4
    assert (out / "faithbench" / "report.md").exists()
