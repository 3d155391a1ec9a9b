"""Runs the fuzz harness ``fuzz_ingest.py``: a short atheris run (when atheris is installed) and the same
``one_input`` under hypothesis' byte strategy (always); ``slow``: a long atheris run.

A crash leaves its input in the test's temporary folder (``crash-…``); replay it with
``python tests/ingest/fuzz_ingest.py PATH``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_ingest import DOC_KINDS, READERS, SIZES, TARGETS, one_input, write_seeds
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

HARNESS = Path(__file__).resolve().parent / "fuzz_ingest.py"
HAS_ATHERIS = importlib.util.find_spec("atheris") is not None


def _fuzz(tmp_path: Path, runs: int, timeout: int) -> None:
    seeds, corpus = tmp_path / "seeds", tmp_path / "corpus"
    write_seeds(seeds)
    corpus.mkdir()
    # libFuzzer's memory guard reads the peak RSS, which a child inherits from the process it was forked from (this
    # test's, with models loaded): the fuzzer's own 2 GB is allowed on top of what it starts with
    import psutil

    rss_limit = int(psutil.Process().memory_info().rss / 2**20) + 2048
    proc = subprocess.run(
        [sys.executable, str(HARNESS), f"-atheris_runs={runs}", "-max_len=8192", "-seed=1", f"-rss_limit_mb={rss_limit}",
         f"-artifact_prefix={tmp_path}/", str(corpus), str(seeds)],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    log = proc.stderr[-6000:]
    assert proc.returncode == 0, f"the fuzzer found a crash (inputs in {tmp_path}):\n{log}"
    assert f"Done {runs} " in proc.stderr or f"Done {runs + 1} " in proc.stderr, log


@pytest.mark.skipif(not HAS_ATHERIS, reason="atheris is not installed (pip install -e .[fuzz])")
def test_atheris_short(tmp_path):
    _fuzz(tmp_path, runs=400, timeout=240)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_ATHERIS, reason="atheris is not installed (pip install -e .[fuzz])")
def test_atheris_long(tmp_path):
    _fuzz(tmp_path, runs=20_000, timeout=1800)


def _bytes(max_examples: int):
    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(target=st.integers(0, TARGETS - 1), size=st.integers(0, len(SIZES) - 1), payload=st.binary(max_size=3000))
    @example(target=len(READERS) + DOC_KINDS.index("filing"), size=len(SIZES) - 1, payload=b"PART I\x0cItem 1\x0cItem 10")
    def test(target: int, size: int, payload: bytes) -> None:
        """The harness' own input, from hypothesis: any bytes through any reader or sectionizer."""
        one_input(bytes([target, size]) + payload)

    return test


test_harness_bytes = _bytes(60)
test_harness_bytes_long = pytest.mark.slow(_bytes(2000))

