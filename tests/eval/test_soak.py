"""``python -m eval.soak`` on a small real store: the report is computed from the questions it asked, and the
memory growth check fails the run when its bound cannot be met."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, SHARED_DATA

from pipeline import Pipeline

CONTRACTS = SHARED_DATA / "cuad" / "contracts"
FILES = [CONTRACTS / "MSCIINC_02_28_2008-EX-10.10-.txt",
         CONTRACTS / "LifewayFoodsInc_20160316_10-K_EX-10.24_9489766_EX-10.24_Endorsement Agreement.txt"]

pytestmark = pytest.mark.skipif(not all(f.exists() for f in FILES), reason="needs ../shared/data/cuad")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("soak") / "store"
    with Pipeline(folder) as p:
        assert p.ingest(FILES).documents == 2
    return folder


def _soak(store, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "eval.soak", "--store", str(store), "--data", str(SHARED_DATA), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_soak_reports_throughput_latency_and_memory_of_its_run(store, tmp_path):
    out = tmp_path / "soak.json"
    run = _soak(store, "--questions", "20", "--window", "5", "--out", str(out), "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert json.loads(out.read_text()) == report
    assert report["suites"] == ["cuad"] and report["pool"] == 2 * 41  # CUAD's questions on the two contracts
    assert report["questions"] == 20 and report["errors"] == 0
    windows = report["windows"]
    assert [w["questions"] for w in windows] == [5, 5, 5, 5]
    assert [(w["first"], w["last"]) for w in windows] == [(0, 4), (5, 9), (10, 14), (15, 19)]
    assert sum(w["seconds"] for w in windows) == pytest.approx(report["seconds"], abs=0.01)
    assert report["questions_per_s"] == pytest.approx(20 / report["seconds"], rel=1e-3)
    lat = report["latency_s"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["max"]
    assert all(0 < w["p50"] <= w["p95"] <= w["max"] <= lat["max"] for w in windows)
    rss = report["rss_mb"]
    assert [s["question"] for s in rss["samples"]] == list(range(20))
    assert rss["max"] == max(s["rss_mb"] for s in rss["samples"]) >= rss["end"] == rss["samples"][-1]["rss_mb"]
    assert rss["first"] > rss["start"] > 0  # the models were loaded by the first question
    growth = report["growth"]
    assert growth["baseline_window"] == 1 and growth["baseline_mb"] == windows[1]["rss_mb"]
    assert growth["growth_mb"] == pytest.approx(windows[-1]["rss_mb"] - windows[1]["rss_mb"], abs=0.11)
    assert growth["bound_mb"] == max(200.0, 0.1 * growth["baseline_mb"]) and growth["ok"]


def test_soak_fails_when_memory_grows_past_the_bound(store):
    # -100% of the baseline: the last window would need no memory at all
    run = _soak(store, "--questions", "4", "--window", "2", "--max-growth-mb", "-1", "--max-growth-pct", "-100")
    assert run.returncode == 1
    assert "RSS grew" in run.stderr and "more than the bound" in run.stderr
    assert "EXCEEDED" in run.stdout


def test_soak_says_in_one_line_when_the_store_is_missing(tmp_path):
    run = _soak(tmp_path / "nothing", "--questions", "2")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"error: no sectionrag store at {tmp_path / 'nothing'}: "
                                               f"run `sectionrag ingest PATH --store {tmp_path / 'nothing'}` first"]
