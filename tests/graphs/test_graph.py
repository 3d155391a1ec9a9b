"""The answer flow against a real OpenAI-compatible HTTP server on loopback.

The server stands in for a deployment's LLM endpoint (vLLM, llama.cpp server, …): it answers chat
completions by rule from the prompt it receives, so each test knows what the writer said.
"""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import assert_citations_exact, loopback_server, send_chat_reply

from graphs.llm import LLMError
from pipeline.config import PipelineConfig


class _Handler(BaseHTTPRequestHandler):
    calls: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(body)
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.end_headers()
            return
        prompt = body["messages"][-1]["content"] if body["model"] != "echo" else body["messages"][3]["content"]
        match body["model"]:
            case "echo":  # copies evidence [1] and cites it
                first = re.search(r"^\[1\] (.+)$", prompt, re.M).group(1)
                content = f"{first} [1]"
            case "fabricate":  # an unsupported number, every time
                content = "The agreement lasts 99 years and costs $123,456 [1]."
            case "error":
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b"boom")
                return
        send_chat_reply(self, content)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    with loopback_server(_Handler) as url:
        yield url


def _pipeline(store, base_url, model, **verify):
    from pipeline import Pipeline

    cfg = PipelineConfig().replace(synthesize={"llm": "openai", "openai_base_url": base_url, "openai_model": model},
                                   verify=verify)
    return Pipeline(store, cfg)


QUESTION = "How can the outsourcing agreement be terminated?"


def test_supported_answer_is_kept_with_exact_citation(sample_store, server):
    with _pipeline(sample_store, server, "echo") as p:
        answer = p.ask(QUESTION)
        assert not answer.abstained and answer.support == 1.0
        assert len(answer.citations) == 1
        assert_citations_exact(p, answer)


def test_fabricated_claim_is_rewritten_once_then_replaced_by_quotes(sample_store, server):
    _Handler.calls.clear()
    with _pipeline(sample_store, server, "fabricate", max_revisions=1) as p:
        answer = p.ask(QUESTION)
    assert len(_Handler.calls) == 2  # the draft and one bounded revision, no more
    assert "These sentences are not supported" in _Handler.calls[1]["messages"][-1]["content"]
    assert "99 years" not in answer.text and "123,456" not in answer.text
    assert not answer.abstained and answer.citations  # verbatim evidence instead


def test_fabricated_claim_abstains_when_configured(sample_store, server):
    _Handler.calls.clear()
    with _pipeline(sample_store, server, "fabricate", max_revisions=2, fallback="abstain") as p:
        answer = p.ask(QUESTION)
    assert len(_Handler.calls) == 3
    assert answer.abstained and answer.citations == () and answer.support == 0.0


def test_endpoint_errors_are_one_clear_error(sample_store, server):
    with _pipeline(sample_store, server, "error") as p, pytest.raises(LLMError, match="HTTP 500"):
        p.ask(QUESTION)
    with _pipeline(sample_store, "http://127.0.0.1:9/v1", "echo") as p, pytest.raises(LLMError, match="did not answer"):
        p.ask(QUESTION)


_trained = pytest.mark.skipif(not __import__("pipeline").trained_reader_available(),
                              reason="no trained reader weights in data/reader")


def _trained_pipeline(store, base_url, **summarize):
    from pipeline import Pipeline

    cfg = PipelineConfig().replace(synthesize={"llm": "openai", "openai_base_url": base_url, "openai_model": "echo"},
                                   summarize={"scorer": "trained", **summarize})
    return Pipeline(store, cfg)


@_trained
def test_trained_reader_hands_the_writer_exact_units_in_document_order_within_budget(sample_store, server):
    with _trained_pipeline(sample_store, server, evidence_tokens=300, min_unit_score=0.0) as p:
        answer = p.ask(QUESTION, trace=True)
        evidence = answer.trace.evidence
        assert evidence and [e.n for e in evidence] == list(range(1, len(evidence) + 1))
        for e in evidence:
            assert p.document(e.doc_id).text[e.start:e.end] == e.text
        assert sum(-(-len(e.text) // 4) for e in evidence) <= 300 or len(evidence) == 1
        read = [s.section.id for s in sorted(answer.sections, key=lambda s: -s.score)]
        order = [(read.index(e.section_id), e.start) for e in evidence]
        assert order == sorted(order)  # the sections in the order read, then where each unit stands
        assert_citations_exact(p, answer)


@_trained
def test_trained_reader_abstains_without_calling_the_writer_when_no_unit_clears_the_threshold(sample_store, server):
    _Handler.calls.clear()
    with _trained_pipeline(sample_store, server, min_unit_score=1.0) as p:
        answer = p.ask(QUESTION, trace=True)
    assert answer.abstained and answer.trace.evidence == () and _Handler.calls == []
