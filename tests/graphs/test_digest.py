"""The summarize stage: the writer's evidence is a digest of the best sections, read whole."""

from __future__ import annotations

import pytest
from conftest import assert_citations_exact

from pipeline import Pipeline
from pipeline.config import PipelineConfig

QUESTION = "How can the outsourcing agreement be terminated?"


def _final_state(p: Pipeline, config: PipelineConfig, question: str = QUESTION) -> dict:
    """What the graph ended with, as the public trace shows it (the pipeline's reader counts what it read)."""
    q = p if config == p.config else p.with_config(config)
    answer = q.ask(question, trace=True)
    return {"evidence": list(answer.trace.evidence), "sections": list(answer.sections), "answer": answer,
            "timings": dict(answer.timings), "read": q.reading()}


@pytest.fixture(scope="module")
def pipeline(sample_store):
    # the digest is what is examined: every question goes through it (no typed answers)
    with Pipeline(sample_store, PipelineConfig().replace(synthesize={"llm": "extractive"}, answers={"typed": ()})) as p:
        yield p


def test_the_digest_draws_on_every_sentence_of_the_best_sections(pipeline):
    cfg = pipeline.config
    state = _final_state(pipeline, cfg)
    digest = state["evidence"]
    best = sorted(state["sections"], key=lambda s: -s.score)[:cfg.summarize.max_sections]
    assert 6 < len(digest) <= cfg.summarize.digest_sentences  # more than the passage path's six sentences
    assert sum(len(ev.text) for ev in digest[1:]) <= cfg.summarize.digest_chars
    assert [ev.n for ev in digest] == list(range(1, len(digest) + 1))
    assert [ev.score for ev in digest] == sorted((ev.score for ev in digest), reverse=True)
    for ev in digest:
        section = next(s.section for s in best if s.section.id == ev.section_id)
        assert section.start <= ev.start < ev.end <= section.end
        assert pipeline.document(ev.doc_id).text[ev.start:ev.end] == ev.text
    assert "summarize" in state["timings"]
    assert state["read"]["tokens"] >= sum(s.tokens for s in best) * 0.5  # the encoder read them whole
    answer = state["answer"]
    assert not answer.abstained and "terminat" in answer.text.lower()
    assert_citations_exact(pipeline, answer)


def test_switched_off_the_evidence_comes_from_the_best_passages(pipeline):
    cfg = pipeline.config.replace(summarize={"enabled": False})
    state = _final_state(pipeline, cfg)
    assert 0 < len(state["evidence"]) <= cfg.retrieve.evidence_sentences
    assert "summarize" not in state["timings"]
    assert not state["answer"].abstained
    assert_citations_exact(pipeline, state["answer"])


def test_without_the_encoder_weight_the_encoder_is_not_loaded(sample_store):
    cfg = PipelineConfig().replace(synthesize={"llm": "extractive"}, summarize={"encoder_weight": 0.0})
    with Pipeline(sample_store, cfg) as p:
        answer = p.ask(QUESTION)
        assert p.reading()["tokens"] == 0 and not answer.abstained
        assert_citations_exact(p, answer)


def test_unrelated_question_still_abstains_with_the_digest(pipeline):
    answer = pipeline.ask("What is the boiling point of liquid nitrogen on Neptune?")
    assert answer.abstained and not answer.citations


def test_summarize_config_is_validated_and_loads_from_toml(tmp_path):
    with pytest.raises(ValueError, match="encoder_weight"):
        PipelineConfig().replace(summarize={"encoder_weight": 1.5})
    with pytest.raises(ValueError, match="unknown impl"):
        PipelineConfig().replace(summarize={"impl": "cuda-magic"})
    path = tmp_path / "cfg.toml"
    path.write_text("[summarize]\nenabled = false\ndigest_sentences = 8\n")
    cfg = PipelineConfig.from_toml(path)
    assert not cfg.summarize.enabled and cfg.summarize.digest_sentences == 8


def test_evidence_sentences_are_whole_sentences_of_their_section(pipeline):
    """Both paths quote whole sentences: never a piece cut where a 256-token passage window begins or ends."""
    from pipeline.text import sentence_spans

    for enabled in (True, False):
        cfg = pipeline.config.replace(summarize={"enabled": enabled})
        for question in (QUESTION, "What were Ulta Beauty's net sales in the fourth quarter of fiscal 2022?",
                         "Which allergies are recorded for the patient?"):
            state = _final_state(pipeline, cfg, question)
            assert state["evidence"]
            for ev in state["evidence"]:
                sec = next(s.section for s in state["sections"] if s.section.id == ev.section_id)
                text = pipeline.document(ev.doc_id).text
                assert (ev.start, ev.end) in sentence_spans(text, sec.start, sec.end, max_chars=600), (enabled, ev.text)
