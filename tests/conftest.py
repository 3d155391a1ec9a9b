"""Shared fixtures: the real sample documents, real models, and a store built from them once per session."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Any attempt to reach a model hub must fail loudly in tests.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_INPUTS = [SAMPLES / "contracts", SAMPLES / "filings", SAMPLES / "ehr"]
CLI = [sys.executable, "-m", "pipeline.cli"]


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory) -> Path:
    """A store holding the three sample documents (contract, filing PDF, FHIR patient)."""
    from pipeline import Pipeline

    folder = tmp_path_factory.mktemp("sample-store")
    with Pipeline(folder) as p:
        report = p.ingest(SAMPLE_INPUTS)
    assert report.documents == 3 and not report.failed
    return folder


@pytest.fixture(scope="session")
def sample_pipeline(sample_store):
    from pipeline import Pipeline

    with Pipeline(sample_store) as p:
        yield p


def assert_citations_exact(pipeline, answer) -> None:
    """The product's core promise: every quote is the stored text at its offsets."""
    for c in answer.citations:
        text = pipeline.document(c.doc_id).text
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start:c.end] == c.quote
        section = next(s for s in pipeline.sections(c.doc_id) if s.id == c.section_id)
        assert section.start <= c.start and c.end <= section.end


def send_chat_reply(handler: BaseHTTPRequestHandler, content: str) -> None:
    """Answers an OpenAI-compatible chat-completions request with one assistant message."""
    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 running ``handler``; yields its ``/v1`` base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
