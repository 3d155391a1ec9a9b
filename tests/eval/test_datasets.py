"""Dataset loaders on the real development data (skipped where ../shared/data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.datasets import align_spans, hypothesis_question, load_suite, sample_items

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not here")


def test_cuad_gold_spans_index_the_contract_text():
    suite = load_suite("cuad", DATA)
    assert len(suite.items) == 16810
    answerable = [it for it in suite.items if not it.impossible][:50]
    for it in answerable:
        text = suite.source_text(it.doc_id)
        assert [text[s:e] for s, e in it.spans] == list(it.answers)


def test_limit_sample_is_seeded_spread_over_documents_and_balanced():
    suite = load_suite("cuad", DATA)
    a, b = sample_items(suite.items, 20), sample_items(suite.items, 20)
    assert a == b and len(a) == 20
    assert len({it.doc_id for it in a}) == 20  # one item per contract
    assert sum(it.impossible for it in a) == 10
    assert sample_items(suite.items, 20, seed=1) != a
    assert [it.id for it in sample_items(suite.items, None)] == [it.id for it in suite.items]


def test_financebench_pages_and_contractnli_labels():
    fb = load_suite("financebench", DATA)
    assert len(fb.items) == 67 and all(it.pages and min(it.pages) >= 1 for it in fb.items)
    nli = load_suite("contractnli", DATA)
    assert {it.label for it in nli.items} == {"Entailment", "Contradiction", "NotMentioned"}
    assert all(it.impossible == (it.label == "NotMentioned") for it in nli.items)
    it = next(i for i in nli.items if i.spans)
    assert nli.source_text(it.doc_id)[it.spans[0][0]:it.spans[0][1]].strip()
    assert hypothesis_question("Receiving Party shall not X.") == "Does the agreement state that receiving Party shall not X?"


def test_synthea_questions_come_from_fhir_resources():
    suite = load_suite("synthea", DATA)
    kinds = {it.label for it in suite.items}
    assert {"medications", "allergies", "condition_onset", "medication_start", "procedure_date"} <= kinds
    assert len({it.doc_id for it in suite.items}) == 10
    onset = next(it for it in suite.items if it.label == "condition_onset")
    assert len(onset.answers) == 1 and len(onset.answers[0]) == 10 and onset.answers[0][4] == "-"


def test_align_spans_follows_line_ending_changes():
    source = "A\r\nB clause here.\r\nC"
    stored = source.replace("\r\n", "\n")
    s = source.index("clause")
    (t, u), = align_spans(source, stored, [(s, s + 6)])
    assert stored[t:u] == "clause"
    assert align_spans(source, stored, [(0, 0)]) == []
