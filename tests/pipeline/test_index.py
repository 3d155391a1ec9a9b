"""The passage index: incremental updates equal a fresh rebuild, for every index kind; saves are atomic."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import faiss
import numpy as np
import pytest
from conftest import ROOT, SAMPLES

from pipeline import Pipeline
from pipeline.config import PipelineConfig
from pipeline.index import INDEX_NAME, PassageIndex
from pipeline.store import SectionStore

CONTRACT = SAMPLES / "contracts" / "BNLFINANCIALCORP-outsourcing-agreement.txt"
PATIENT = SAMPLES / "ehr" / "synthea-patient-cbc86e51.json"
QUERIES = ["How can the agreement be terminated?", "Which medications were prescribed?",
           "limitation of liability for consequential damages", "immunization vaccine administered"]


def _results(pipe: Pipeline, index: PassageIndex) -> list[tuple[list[int], list[float]]]:
    out = []
    for q in QUERIES:
        ids, scores = index.search(pipe.embedder.encode([q])[0], 20)
        out.append((ids.tolist(), np.round(scores, 5).tolist()))
    return out


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_add_replace_delete_equal_a_fresh_rebuild(tmp_path, kind):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CONTRACT, src / "contract.txt")
    shutil.copy(PATIENT, src / "patient.json")
    cfg = PipelineConfig().replace(index={"index_kind": kind})
    store_dir = tmp_path / "store"
    with Pipeline(store_dir, cfg) as pipe:
        pipe.ingest([src])                                         # add two documents
        text = CONTRACT.read_text()
        (src / "contract.txt").write_text(text.replace("Oklahoma", "Nebraska"))
        pipe.ingest([src / "contract.txt"])                        # replace one
        assert pipe.delete(["patient"]) > 0                        # delete the other
        (src / "second.txt").write_text(text[: len(text) // 2])
        pipe.ingest([src / "second.txt"])                          # add another
        live = pipe._open_index()
        assert live.kind == kind
        store = SectionStore(store_dir)
        assert live.size == store.counts()["passages"]
        fresh = PassageIndex.rebuild(store, pipe.embedder.dim, cfg.index)
        assert _results(pipe, live) == _results(pipe, fresh)
    with Pipeline(store_dir, cfg) as reopened:                     # and what was saved on disk
        assert _results(reopened, reopened._open_index()) == _results(reopened, fresh)
        assert sorted(reopened.documents()) == ["contract", "second"]


def test_deleted_document_is_gone_from_search_and_can_come_back(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CONTRACT, src / "contract.txt")
    with Pipeline(tmp_path / "store") as pipe:
        pipe.ingest([src])
        assert pipe.retrieve("termination of the agreement")
        pipe.delete(["contract"])
        assert pipe.documents() == []
        assert pipe.retrieve("termination of the agreement") == []
        report = pipe.ingest([src])                                # not skipped as unchanged
        assert report.documents == 1 and report.skipped == 0
        with pytest.raises(ValueError, match="no document 'nope'"):
            pipe.delete(["nope"])


_SAVER = """
import sys
from pipeline.index import PassageIndex
from pipeline.store import SectionStore
store = SectionStore(sys.argv[1])
index = PassageIndex.open(store, 384)
print("ready", flush=True)
while True:
    index.save()
"""


def test_index_file_survives_a_process_killed_mid_write(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CONTRACT, src / "contract.txt")
    store_dir = tmp_path / "store"
    with Pipeline(store_dir) as pipe:
        pipe.ingest([src])
        expected = _results(pipe, pipe._open_index())
    rng = np.random.default_rng(0)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(store_dir)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.01, 0.2)))                  # somewhere inside a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        faiss.read_index(str(store_dir / INDEX_NAME))              # never a torn file
        with Pipeline(store_dir) as pipe:
            assert _results(pipe, pipe._open_index()) == expected


def test_index_kind_auto_switches_to_ivf_past_the_threshold(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CONTRACT, src / "contract.txt")
    cfg = PipelineConfig().replace(index={"ivf_threshold": 10})
    with Pipeline(tmp_path / "store", cfg) as pipe:
        pipe.ingest([src])
        index = pipe._open_index()
        assert index.size > 10 and index.kind == "ivf"
        flat = PassageIndex.rebuild(SectionStore(tmp_path / "store"), 384, cfg.index.__class__(index_kind="flat"))
        # few cells and nprobe ≥ cells: the IVF search visits every cell, so it is exact
        assert _results(pipe, index) == _results(pipe, flat)


@pytest.mark.gpu
@pytest.mark.skipif(not (hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0),
                    reason="needs faiss-gpu (the gpu extra) and a CUDA device")
@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_gpu_search_returns_what_the_cpu_returns(tmp_path, kind):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(CONTRACT, src / "contract.txt")
    shutil.copy(PATIENT, src / "patient.json")
    with Pipeline(tmp_path / "store", PipelineConfig().replace(index={"index_kind": kind, "gpu": "auto"})) as pipe:
        pipe.ingest([src])
        on_gpu = pipe._open_index()
        assert on_gpu._gpu() is not None
        cpu = PassageIndex(on_gpu.store, on_gpu.dim, on_gpu.index, kind,
                           PipelineConfig().replace(index={"index_kind": kind, "gpu": "off"}).index)
        for q in QUERIES:
            vec = pipe.embedder.encode([q])[0]
            g_ids, g_scores = on_gpu.search(vec, 20)
            c_ids, c_scores = cpu.search(vec, 20)
            assert g_ids.tolist() == c_ids.tolist()
            np.testing.assert_allclose(g_scores, c_scores, atol=1e-4)
