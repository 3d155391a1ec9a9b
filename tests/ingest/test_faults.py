"""Fault injection: the ingest job's writer process, its parser workers, deletes and ``ask`` killed with SIGKILL at
random (seeded) moments, round after round. After every kill the store and the FAISS index agree, every stored file
is whole and nothing is stored twice; at the end a re-run completes and the store equals a clean one.

The default suite kills twice; ``-m slow`` 20 times."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from conftest import CLI, ROOT
from test_job import _contract_inputs, _ingest_cmd, _store_state

from pipeline import Pipeline


def _workers(job: subprocess.Popen) -> list[psutil.Process]:
    try:
        children = psutil.Process(job.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if "spawn_main" in " ".join(c.cmdline()) and "resource_tracker" not in " ".join(c.cmdline())]


def _consistent(store: Path) -> dict:
    """The store's state, after checking what must hold whatever moment a kill came at."""
    state = _store_state(store)
    assert state["files"] == state["documents"]  # a file is stored wholly or not at all
    assert state["duplicate_passages"] == 0
    with Pipeline(store) as p:
        assert p._open_index().size == state["passages"]  # a stale FAISS file is rebuilt from the store
    return state


def _round(rng: random.Random, inputs: Path, store: Path, files: list[Path]) -> str:
    """One kill: of the ingest job's writer, of a worker then the writer, of a delete, or of ``ask``."""
    what = rng.choice(["writer", "worker", "delete", "ask"])
    if what == "delete" and Pipeline.is_store(store):
        with Pipeline(store) as p:
            docs = p.documents()
        cmd = [*CLI, "delete", *rng.sample(docs, k=min(len(docs), 2)), "--store", str(store)] if docs else None
    elif what == "ask" and Pipeline.is_store(store):
        cmd = [*CLI, "ask", "How can the agreement be terminated?", "--store", str(store), "--llm", "extractive"]
    else:
        what = what if what in ("writer", "worker") else "writer"
        cmd = _ingest_cmd(inputs, store, 2)
    if cmd is None:
        return "nothing to delete"
    job = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + rng.uniform(2.0, 12.0)  # start-up (model loading) included: kills land anywhere
        while time.monotonic() < end and job.poll() is None:
            time.sleep(0.05)
        if job.poll() is not None:
            return f"{what}: finished before the kill"
        if what == "worker" and (workers := _workers(job)):
            rng.choice(workers).kill()
            time.sleep(rng.uniform(0.0, 2.0))
        job.kill()
        return f"{what}: killed"
    finally:
        job.wait()
        for w in _workers(job):
            w.kill()


def _kill_loop(tmp_path: Path, kills: int, seed: int) -> list[str]:
    """Rounds until ``kills`` of them killed a process mid-work (a round whose process finished first is not one)."""
    rng = random.Random(seed)
    inputs, files = _contract_inputs(tmp_path, 6)
    store = tmp_path / "store"
    log: list[str] = []
    while sum(entry.endswith("killed") for entry in log) < kills and len(log) < 3 * kills:
        log.append(_round(rng, inputs, store, files))
        if Pipeline.is_store(store):
            _consistent(store)
    out = subprocess.run(_ingest_cmd(inputs, store, 2), cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    final = _consistent(store)
    clean = tmp_path / "clean"
    subprocess.run(_ingest_cmd(inputs, clean, 2), cwd=ROOT, capture_output=True, check=True, timeout=900)
    assert final == _store_state(clean) and final["files"] == len(files)
    with Pipeline(store) as p:  # and it answers
        assert p.ask("How can the agreement be terminated?").citations
    return log


def test_kills_at_random_moments_lose_and_duplicate_nothing(tmp_path):
    log = _kill_loop(tmp_path, kills=2, seed=7)
    assert sum(entry.endswith("killed") for entry in log) == 2, log


@pytest.mark.slow
def test_twenty_kills(tmp_path):
    log = _kill_loop(tmp_path, kills=20, seed=2026)
    print("\n".join(log))
    assert sum(entry.endswith("killed") for entry in log) == 20, log
