"""`sectionrag ask` on a store built from 20 real CUAD contracts: every citation is the stored text."""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest
from conftest import CLI, ROOT, SHARED_DATA


def test_ask_on_twenty_cuad_contracts(tmp_path):
    folder = SHARED_DATA / "cuad" / "contracts"
    if not folder.is_dir():
        pytest.skip(f"shared CUAD data not found at {folder}")
    contracts = sorted(folder.glob("*.txt"))[20:40]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in contracts:
        (inputs / f.name).symlink_to(f)
    store = tmp_path / "store"
    run = lambda *a: subprocess.run([*CLI, *a], cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)  # noqa: E731
    ingest = run("ingest", str(inputs), "--store", str(store), "--workers", "2", "--json")
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    assert json.loads(ingest.stdout)["documents"] == 20
    texts = dict(sqlite3.connect(store / "sections.sqlite").execute("SELECT id, text FROM documents"))
    answered = 0
    for question in ("What law governs the agreement?", "Under what conditions can the agreement be terminated?"):
        out = run("ask", question, "--store", str(store), "--json")  # the default local writer
        assert out.returncode == 0, out.stderr[-2000:]
        answer = json.loads(out.stdout)
        for c in answer["citations"]:
            assert texts[c["doc_id"]][c["start"]:c["end"]] == c["quote"]
        answered += not answer["abstained"]
    assert answered >= 1
