"""The batch job: bad files recorded and skipped over, unchanged files skipped, kill-and-resume, dead workers."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import CLI, ROOT, SAMPLES, SHARED_DATA

from pipeline import Pipeline
from pipeline.config import PipelineConfig
from pipeline.index import PassageIndex

CONTRACT = SAMPLES / "contracts" / "BNLFINANCIALCORP-outsourcing-agreement.txt"


def _bad_files(folder: Path) -> dict[str, str]:
    """Each kind of bad file, and a word its one-line reason must contain."""
    from pypdf import PdfWriter

    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 64)
    (folder / "latin.txt").write_bytes(b"Section 1. Term. " * 10 + b"\x81\x8d\x8f\x90")
    (folder / "notes.xyz").write_text("Section 1. Term.")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%garbage")
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    with open(folder / "encrypted.pdf", "wb") as fh:
        writer.write(fh)
    (folder / "broken.json").write_text('{"resourceType": "Bundle", "entry": [')
    (folder / "huge.txt").write_text("Section 1. Term. " * 80_000)  # ~1.4 MB, over the test's 1 MB limit
    return {"empty.txt": "empty", "binary.txt": "binary", "latin.txt": "UTF-8", "notes.xyz": "unsupported",
            "corrupt.pdf": "corrupt", "encrypted.pdf": "encrypted", "broken.json": "JSON", "huge.txt": "limit"}


def test_bad_files_are_recorded_and_the_job_goes_on(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    expected = _bad_files(inputs)
    shutil.copy(CONTRACT, inputs / "good.txt")
    cfg = PipelineConfig().replace(ingest={"max_file_mb": 1.0})
    with Pipeline(tmp_path / "store", cfg) as p:
        report = p.ingest([inputs])
        assert report.documents == 1 and p.documents() == ["good"]
        reasons = {Path(f.path).name: f.error for f in report.failed}
        assert reasons.keys() == expected.keys()
        for name, word in expected.items():
            assert word.lower() in reasons[name].lower(), (name, reasons[name])
            assert "\n" not in reasons[name]
        # bad files are not recorded as done: fixing one and re-running picks it up
        (inputs / "empty.txt").write_text("ARTICLE 1. DEFINITIONS\nTerms used here have these meanings.\n")
        again = p.ingest([inputs])
        assert again.documents == 1 and again.skipped == 1 and "empty" in p.documents()


def test_changed_file_replaces_its_document(tmp_path):
    doc = tmp_path / "contract.txt"
    shutil.copy(CONTRACT, doc)
    with Pipeline(tmp_path / "store") as p:
        p.ingest([doc])
        first = p._open_store().counts()
        doc.write_text(CONTRACT.read_text().replace("VIP", "ACME"))
        report = p.ingest([doc])
        assert report.documents == 1 and report.skipped == 0
        assert p._open_store().counts()["documents"] == first["documents"] == 1
        assert "ACME" in p.document("contract").text
        assert p._open_index().size == p._open_store().counts()["passages"]


def _contract_inputs(tmp_path: Path, n: int) -> tuple[Path, list[Path]]:
    """A folder holding copies of the first ``n`` CUAD contracts."""
    folder = SHARED_DATA / "cuad" / "contracts"
    if not folder.is_dir():
        pytest.skip(f"shared CUAD data not found at {folder}")
    files = sorted(folder.glob("*.txt"))[:n]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in files:
        shutil.copy(f, inputs / f.name)
    return inputs, files


def _store_state(store: Path) -> dict:
    conn = sqlite3.connect(store / "sections.sqlite")
    q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    state = {"files": q("SELECT count(*) FROM files"), "documents": q("SELECT count(*) FROM documents"),
             "passages": q("SELECT count(*) FROM passages"),
             "duplicate_passages": q("SELECT count(*) - count(DISTINCT id) FROM passages"),
             "sections": q("SELECT count(*) FROM sections")}
    conn.close()
    return state


def _stored_files(store: Path) -> int:
    try:
        conn = sqlite3.connect(store / "sections.sqlite", timeout=1)
        n = conn.execute("SELECT count(*) FROM files").fetchone()[0]
        conn.close()
        return n
    except sqlite3.Error:
        return 0


def _ingest_cmd(inputs: Path, store: Path, workers: int) -> list[str]:
    return [*CLI, "ingest", str(inputs), "--store", str(store), "--workers", str(workers), "--json"]


def test_kill_the_job_and_resume(tmp_path):
    inputs, files = _contract_inputs(tmp_path, 8)
    store = tmp_path / "store"
    job = subprocess.Popen(_ingest_cmd(inputs, store, 1), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while _stored_files(store) < 2 and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.poll() is None, "the job finished before it could be killed; use more files"
    job.send_signal(signal.SIGKILL)
    job.wait()
    partial = _store_state(store)
    assert 2 <= partial["files"] < len(files)

    out = subprocess.run(_ingest_cmd(inputs, store, 1), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["skipped"] == partial["files"]
    assert report["documents"] == len(files) - partial["files"]
    final = _store_state(store)
    assert final["files"] == final["documents"] == len(files)
    assert final["duplicate_passages"] == 0

    clean = tmp_path / "clean"
    subprocess.run(_ingest_cmd(inputs, clean, 1), cwd=ROOT, capture_output=True, check=True, timeout=900)
    assert _store_state(clean) == final
    with Pipeline(store) as p:  # the FAISS file, stale after the kill, is rebuilt from the store
        assert p._open_index().size == final["passages"]
        assert PassageIndex.open(p._open_store(), p.embedder.dim).size == final["passages"]


def test_a_killed_worker_costs_nothing(tmp_path):
    inputs, files = _contract_inputs(tmp_path, 6)
    store = tmp_path / "store"
    job = subprocess.Popen(_ingest_cmd(inputs, store, 2), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    parent = psutil.Process(job.pid)
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and job.poll() is None and time.monotonic() < deadline:
        workers = [c for c in parent.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())
                   and "resource_tracker" not in " ".join(c.cmdline())]
        if workers and _stored_files(store) >= 1:
            killed = workers[0]
            killed.kill()
        time.sleep(0.1)
    stdout, stderr = job.communicate(timeout=900)
    assert killed is not None, "no worker process was seen to kill"
    assert job.returncode == 0, stderr[-2000:]
    report = json.loads(stdout)
    assert report["failed"] == []
    final = _store_state(store)
    assert final["files"] == final["documents"] == len(files) and final["duplicate_passages"] == 0
