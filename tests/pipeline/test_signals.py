"""SIGINT and SIGTERM stop the long commands promptly, keep what was done, and a re-run finishes the rest."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CLI, ROOT, SHARED_DATA

from pipeline import Pipeline

CUAD = SHARED_DATA / "cuad" / "contracts"


def _wait_for(check, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _stored(store: Path) -> int:
    if not Pipeline.is_store(store):
        return 0
    try:
        with Pipeline(store) as p:
            return len(p.documents())
    except Exception:  # noqa: BLE001 — still being created by the command under test
        return 0


@pytest.mark.parametrize(("sig", "code", "word"), [
    (signal.SIGINT, 130, "interrupted"),
    pytest.param(signal.SIGTERM, 143, "terminated", marks=pytest.mark.slow),  # the same path; eval's test sends it
])
def test_ingest_stops_promptly_and_a_rerun_finishes(tmp_path, sig, code, word):
    inputs = tmp_path / "contracts"
    inputs.mkdir()
    for f in sorted(CUAD.glob("*.txt"))[:12]:
        shutil.copy(f, inputs / f.name)
    store = tmp_path / "store"
    proc = subprocess.Popen([*CLI, "ingest", str(inputs), "--store", str(store), "--workers", "2", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        _wait_for(lambda: _stored(store) >= 1, 600, "the first stored contract")
        sent = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err[-2000:]
    assert f"sectionrag: {word}; what was stored is kept" in err
    assert stopped_in < 60  # one file's embedding at most, not the remaining files
    kept = _stored(store)
    assert 1 <= kept < 12
    again = subprocess.run([*CLI, "ingest", str(inputs), "--store", str(store), "--json"], capture_output=True,
                           text=True, cwd=ROOT, timeout=900)
    out = json.loads(again.stdout)
    assert again.returncode == 0 and out["skipped"] == kept and out["documents"] == 12 - kept
    assert _stored(store) == 12


def test_eval_stops_promptly_and_a_rerun_continues(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "eval.harness", "--suite", "cuad", "--limit", "6", "--llm", "extractive",
           "--systems", "sectionrag", "--scorers", "none", "--out", str(out), "--store-root", str(tmp_path / "stores"),
           "--no-progress", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    items = out / "items.jsonl"
    try:
        _wait_for(lambda: items.exists() and items.read_text().count("\n") >= 1, 900, "the first recorded answer")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        stopped_in = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    assert "eval: terminated; results so far are in" in err and stopped_in < 60
    recorded = items.read_text().count("\n")
    assert 1 <= recorded < 6
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert items.read_text().count("\n") == 6  # the re-run answered only what was missing
