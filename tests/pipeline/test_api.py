"""The public API end to end on the real sample documents with the real models."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_INPUTS, assert_citations_exact

from pipeline import Pipeline
from pipeline.store import StoreError

QUESTIONS = [
    ("How can the outsourcing agreement be terminated?", "BNLFINANCIALCORP-outsourcing-agreement"),
    ("What were Ulta Beauty's net sales in the fourth quarter of fiscal 2022?", "ULTABEAUTY_2023Q4_EARNINGS"),
    ("Which allergies are recorded for the patient?", "synthea-patient-cbc86e51"),
]


def test_sections_cover_their_text_and_pages(sample_pipeline):
    for doc_id in sample_pipeline.documents():
        doc = sample_pipeline.document(doc_id)
        sections = sample_pipeline.sections(doc_id)
        assert sections, doc_id
        for s in sections:
            assert doc.text[s.start:s.end] == s.text
            assert s.tokens > 0 and s.path
            assert set(s.pages) <= set(range(1, doc.pages + 1))
        assert [s.start for s in sections] == sorted(s.start for s in sections)


@pytest.mark.parametrize(("question", "doc_id"), QUESTIONS)
def test_retrieve_ranks_the_right_document_first(sample_pipeline, question, doc_id):
    found = sample_pipeline.retrieve(question, top_sections=2)
    assert found[0].doc_id == doc_id
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    for f in found:
        assert f.end > f.start and f.pages


@pytest.mark.parametrize(("question", "doc_id"), QUESTIONS)
def test_extractive_answers_cite_exact_spans(sample_pipeline, question, doc_id):
    answer = sample_pipeline.ask(question, llm="extractive")
    assert not answer.abstained and answer.citations
    assert answer.citations[0].doc_id == doc_id
    assert answer.support == 1.0
    assert_citations_exact(sample_pipeline, answer)
    # a typed answer (the allergy list) is made by its component, the others by the writer
    writer = "typed" if answer.value is not None else "synthesize"
    assert {"retrieve", writer, "verify", "total"} <= dict(answer.timings).keys()


def test_local_llm_answers_with_exact_citations_or_abstains(sample_pipeline):
    alone = []
    for question, _ in QUESTIONS:
        answer = sample_pipeline.ask(question)  # the embedded default: the shipped SmolLM2
        assert_citations_exact(sample_pipeline, answer)
        assert answer.abstained == (not answer.citations)
        if not answer.abstained:
            assert 0 < answer.support <= 1
        alone.append(answer)
    # the same questions in one batch: the writer's calls for all three written together (float32)
    together = sample_pipeline.ask_many([q for q, _ in QUESTIONS], batch=3)
    assert [(a.text, a.citations, a.abstained) for a in together] == [(a.text, a.citations, a.abstained) for a in alone]
    assert all("total" in dict(a.timings) for a in together)


def test_ask_many_refuses_bad_arguments(sample_pipeline):
    with pytest.raises(ValueError, match="list of questions"):
        sample_pipeline.ask_many("one question")
    with pytest.raises(ValueError, match="batch"):
        sample_pipeline.ask_many(["a question"], batch=0)
    with pytest.raises(ValueError, match="empty"):
        sample_pipeline.ask_many(["a question", "  "])
    assert sample_pipeline.ask_many([], llm="extractive") == []


def test_doc_restriction_only_cites_that_document(sample_pipeline):
    answer = sample_pipeline.ask("What were the net sales?", ["BNLFINANCIALCORP-outsourcing-agreement"], llm="extractive")
    assert all(s.doc_id == "BNLFINANCIALCORP-outsourcing-agreement" for s in answer.sections)
    assert all(c.doc_id == "BNLFINANCIALCORP-outsourcing-agreement" for c in answer.citations)


def test_unrelated_question_abstains(sample_pipeline):
    answer = sample_pipeline.ask("zqxv blorft wibble?", llm="extractive")
    assert answer.abstained and not answer.citations and answer.support == 0.0


def test_bad_arguments(sample_pipeline, tmp_path):
    with pytest.raises(ValueError, match="question is empty"):
        sample_pipeline.ask("   ")
    with pytest.raises(ValueError, match="no document 'nope'"):
        sample_pipeline.ask("What is the term?", ["nope"])
    with pytest.raises(ValueError, match="top_sections"):
        sample_pipeline.ask("What is the term?", top_sections=0)
    with pytest.raises(StoreError, match="no sectionrag store"):
        Pipeline(tmp_path / "missing").ask("What is the term?")


def test_reingest_is_a_no_op(sample_store):
    with Pipeline(sample_store) as p:
        before = p._open_store().counts()
        report = p.ingest(SAMPLE_INPUTS)
        assert report.skipped == 3 and report.documents == 0
        assert p._open_store().counts() == before


def test_the_digest_reads_in_bfloat16_when_configured(sample_store):
    import torch

    from pipeline import Pipeline
    from pipeline.config import PipelineConfig

    question, doc_id = QUESTIONS[0]
    config = PipelineConfig().replace(summarize={"dtype": "bfloat16"}, synthesize={"llm": "extractive"})
    with Pipeline(sample_store, config) as p:
        answer = p.ask(question)
        assert p._readers._reader.encoder.model.embeddings.norm.weight.dtype == torch.bfloat16
        assert p.reading()["tokens"] > 0  # the encoder read the sections
        assert not answer.abstained and answer.citations[0].doc_id == doc_id
        assert_citations_exact(p, answer)
