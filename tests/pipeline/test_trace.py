"""The front door shows its work: ``ask(trace=True)``, ``stream``, and resuming a question that was killed.

Real sample store, real models; the resumed question's writer is a real OpenAI-compatible server on
loopback, first one that never answers (the question is killed while it waits), then one that does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
from conftest import ROOT, assert_citations_exact, loopback_server, send_chat_reply

from pipeline import Pipeline, PipelineConfig
from pipeline.api import CHECKPOINTS

QUESTION = "How can the outsourcing agreement be terminated?"
NODES = {"retrieve", "summarize", "synthesize", "verify", "quote", "finalize"}


@pytest.fixture(scope="module")
def extractive(sample_store):
    with Pipeline(sample_store, PipelineConfig().replace(synthesize={"llm": "extractive"})) as p:
        yield p


def test_trace_shows_the_evidence_the_claims_and_the_route(extractive):
    plain = extractive.ask(QUESTION)
    answer = extractive.ask(QUESTION, trace=True)
    assert plain.trace is None and answer.trace is not None
    assert (answer.text, answer.citations) == (plain.text, plain.citations)  # tracing changes nothing
    trace = answer.trace
    assert trace.route == ("retrieve", "summarize", "synthesize", "verify", "finalize")
    assert {name for name, _ in trace.timings} == set(trace.route) and all(s >= 0 for _, s in trace.timings)
    assert [ev.n for ev in trace.evidence] == list(range(1, len(trace.evidence) + 1))
    for ev in trace.evidence:  # evidence is exact stored text, inside a retrieved section
        assert extractive.document(ev.doc_id).text[ev.start:ev.end] == ev.text
        assert any(s.id == ev.section_id for s in answer.sections)
    assert trace.claims and all(c.supported == (c.support >= 0.5) for c in trace.claims)
    kept = [c for c in trace.claims if c.supported]
    assert answer.support == len(kept) / len(trace.claims)
    spans = {(ev.doc_id, ev.start, ev.end) for ev in trace.evidence}
    assert {(c.doc_id, c.start, c.end) for c in answer.citations} <= spans  # every citation was evidence given


def test_stream_yields_each_node_as_it_finishes(extractive):
    steps = list(extractive.stream(QUESTION))
    assert [s.node for s in steps] == ["retrieve", "summarize", "synthesize", "verify", "finalize"]
    assert [s.seconds for s in steps] == sorted(s.seconds for s in steps)
    assert "sections" in steps[0].update and "evidence" in steps[1].update and "claims" in steps[3].update
    streamed = steps[-1].update["answer"]
    asked = extractive.ask(QUESTION)
    assert (streamed.text, streamed.citations, streamed.abstained) == (asked.text, asked.citations, asked.abstained)


def test_the_graph_is_compiled_once_per_pipeline(extractive):
    extractive.ask(QUESTION)
    graph = extractive._graph(False)
    extractive.ask("Which allergies are recorded for the patient?")
    assert extractive._graph(False) is graph


class _Writer(BaseHTTPRequestHandler):
    """``hang``: takes the request and never answers; ``echo``: copies evidence [1] and cites it."""

    received = threading.Event()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["model"] == "hang":
            type(self).received.set()
            time.sleep(600)
            return
        first = re.search(r"^\[1\] (.+)$", body["messages"][3]["content"], re.M).group(1)  # the evidence prompt
        send_chat_reply(self, f"{first} [1]")

    def log_message(self, *args):
        pass


def _openai(url: str, model: str) -> PipelineConfig:
    return PipelineConfig().replace(synthesize={"llm": "openai", "openai_base_url": url, "openai_model": model,
                                                "timeout_s": 900.0})


def test_a_killed_question_resumes_from_its_last_finished_node(sample_store, tmp_path):
    thread = f"resume-{os.getpid()}"
    with loopback_server(_Writer) as url:
        code = ("import sys; from pipeline import Pipeline, PipelineConfig\n"
                f"cfg = PipelineConfig().replace(synthesize={{'llm': 'openai', 'openai_base_url': {url!r}, "
                "'openai_model': 'hang', 'timeout_s': 900.0})\n"
                f"Pipeline(sys.argv[1], cfg).ask({QUESTION!r}, thread_id={thread!r})\n")
        proc = subprocess.Popen([sys.executable, "-c", code, str(sample_store)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            assert _Writer.received.wait(600), "the question never reached the writer"
        finally:
            proc.kill()  # killed mid-question: retrieve and summarize are done, synthesize is not
            proc.wait(60)
        assert (sample_store / CHECKPOINTS).is_file()

        with Pipeline(sample_store, _openai(url, "echo")) as p:
            answer = p.ask(QUESTION, thread_id=thread, trace=True)
            assert answer.trace.route == ("synthesize", "verify", "finalize")  # retrieve and summarize not redone
            assert not answer.abstained and answer.citations and answer.trace.evidence
            assert all(isinstance(s.path, tuple) for s in answer.sections)  # records come back as they were saved
            assert_citations_exact(p, answer)
            fresh = p.ask(QUESTION, trace=True)  # without a thread: the whole flow, the same answer
            assert fresh.trace.route[0] == "retrieve"
            assert (fresh.text, fresh.citations) == (answer.text, answer.citations)
            # the finished thread asked again runs the question afresh, and another question starts over
            again = p.ask(QUESTION, thread_id=thread, trace=True)
            assert again.trace.route[0] == "retrieve" and again.text == answer.text
            other = p.ask("Which allergies are recorded for the patient?", thread_id=thread, trace=True)
            assert other.trace.route[0] == "retrieve"
