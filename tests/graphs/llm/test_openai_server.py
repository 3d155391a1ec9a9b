"""The ``openai`` writer against a real OpenAI-compatible server: llama-cpp-python's server (the ``llama`` extra)
serving the shipped SmolLM2 GGUF, started on loopback by the test. The same question asked through the server
and through the in-process writer gets a verified, exactly cited answer from both, and several questions at
once (``ask_many``) reach the server as concurrent requests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest
from conftest import assert_citations_exact

from graphs.llm.convert import default_gguf_path
from pipeline import Pipeline, PipelineConfig

pytest.importorskip("llama_cpp.server", reason="the llama extra (llama-cpp-python[server]) is not installed")

QUESTION = "What notice is required to terminate the agreement at the end of its term?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()),
                                 "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
                                 "--n_ctx", "4096", "--n_threads", "2", "--verbose", "False"],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"llama-cpp-python's server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"llama-cpp-python's server did not start in 120 s: {log.read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_openai_writer_answers_through_a_real_server(server, sample_store):
    models = httpx.get(f"{server}/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["smollm2"]
    cfg = PipelineConfig().replace(synthesize={"llm": "openai", "openai_base_url": server, "openai_model": "smollm2",
                                               "max_new_tokens": 64}, answers={"typed": ()})
    with Pipeline(sample_store, cfg) as p:
        doc = next(d for d in p.documents() if "agreement" in d)
        answer = p.ask(QUESTION, [doc], trace=True)
        assert answer.trace.route[:3] == ("retrieve", "summarize", "synthesize")
        assert answer.text and (answer.abstained or answer.citations)
        assert_citations_exact(p, answer)
        # the server's reply to the writer's prompt is what the graph verified
        draft = p.draft(QUESTION, answer.trace.evidence)
        assert draft.text
        several = p.ask_many([QUESTION, "How long is the initial term of the agreement?"], [doc], batch=2)
        assert len(several) == 2
        for a in several:
            assert_citations_exact(p, a)
