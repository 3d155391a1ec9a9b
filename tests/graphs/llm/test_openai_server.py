"""The ``openai`` writer against real OpenAI-compatible servers started on loopback by the test: llama-cpp-python's
server (the ``llama`` extra) serving the shipped SmolLM2 GGUF, and, where a GPU and vLLM are installed, ``vllm serve``
serving the same weights (de-quantized, as the transformers engine reads them). The same question asked through
the server and through the in-process writer gets a verified, exactly cited answer from both, several questions at
once (``ask_many``) reach the server as concurrent requests, and ``sectionrag bench writer --server`` measures its
batch throughput."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time

import httpx
import pytest
from conftest import assert_citations_exact

from graphs.llm.bench import DEFAULT_CONTRACTS, bench_writer
from graphs.llm.convert import converted_dir, default_gguf_path, load_float32
from pipeline import Pipeline, PipelineConfig

QUESTION = "What notice is required to terminate the agreement at the end of its term?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _command(engine: str, port: int) -> list[str]:
    if engine == "llama_cpp":
        if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
            pytest.skip("the llama extra (llama-cpp-python[server]) is not installed")
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(default_gguf_path()), "--model_alias",
                "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
                "--verbose", "False"]
    if importlib.util.find_spec("vllm") is None or not _gpu():
        pytest.skip("vllm serve needs the vllm package and a GPU")
    load_float32(default_gguf_path())  # the de-quantized weights and tokenizer, written to the cache on first load
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(converted_dir(default_gguf_path())),
            "--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "8192",
            "--gpu-memory-utilization", "0.5"]


@pytest.fixture(scope="module", params=["llama_cpp", "vllm"])
def server(request, tmp_path_factory):
    port = _free_port()
    command = _command(request.param, port)
    log = tmp_path_factory.mktemp(f"{request.param}-server") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(1200):
            if proc.poll() is not None:
                pytest.fail(f"the {request.param} server exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail(f"the {request.param} server did not start in 600 s: {log.read_text()[-2000:]}")
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


def test_bench_writer_measures_the_servers_batch_throughput(server):
    result = bench_writer(tokens="300", new_tokens=8, contracts=DEFAULT_CONTRACTS, server=server,
                          server_model="smollm2", concurrency="1,2", requests=2)
    rows = result["server"]
    assert [r["concurrency"] for r in rows] == [1, 2]
    for r in rows:
        assert r["requests"] == 2
        assert 200 <= r["prompt_tokens"] <= 2000  # the answer prompt: instructions, example and ~300 tokens of contract
        assert 2 <= r["generated_tokens"] <= 16
        assert r["generated_tok_s"] > 0 and r["latency_p50_s"] <= r["latency_p95_s"] <= r["wall_s"]
    with pytest.raises(ValueError, match="--server-model"):
        bench_writer(server=server, contracts=DEFAULT_CONTRACTS)
