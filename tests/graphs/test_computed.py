"""Numeric answers computed by code: the writer's calculation checked against the stored filing."""

from __future__ import annotations

import pytest

from graphs.nodes import check_calculation
from pipeline.store import SectionStore
from pipeline.types import Evidence

FILING_ROWS = ("Net sales\t$ 10,208,580", "Cost of sales\t6,164,070")


@pytest.fixture(scope="module")
def income_statement(sample_store):
    """Two rows of the sample filing's income statement (stated "In thousands") as numbered evidence."""
    store = SectionStore(sample_store)
    rows = []
    for section in store.sections():
        for prefix in FILING_ROWS:
            at = section.text.find(prefix)
            if at >= 0 and "In thousands" in section.text[:at] and len(rows) < len(FILING_ROWS):
                end = section.text.index("\n", at)
                rows.append(Evidence(n=len(rows) + 1, doc_id=section.doc_id, section_id=section.id,
                                     start=section.start + at, end=section.start + end, text=section.text[at:end]))
    assert [r.text.split("\t")[0] for r in rows] == ["Net sales", "Cost of sales"]
    yield store, rows
    store.close()


def test_a_calculation_over_cited_rows_is_computed_and_cited(income_statement):
    store, rows = income_statement
    check = check_calculation("CALC: [1] 10,208,580 - [2] 6,164,070", rows, store)
    assert check.supported and check.support == 1.0 and check.reasons == ()
    # the statement's "(In thousands …)" heading scales the rows: 4,044,510 thousand dollars
    assert check.claim == "4,044,510 thousand, computed as 10,208,580 - 6,164,070"
    assert check.evidence == (1, 2)
    for citation, row in zip(check.citations, rows):
        assert store.document_text(row.doc_id)[citation.start:citation.end] == citation.quote == row.text


def test_a_number_the_evidence_does_not_hold_fails_the_check(income_statement):
    store, rows = income_statement
    check = check_calculation("CALC: [1] 10,208,580 - [2] 6,164,000", rows, store)
    assert not check.supported and check.reasons == ("[2] 6,164,000 is not a number of evidence [2]",)
    swapped = check_calculation("CALC: [2] 10,208,580 - [1] 6,164,070", rows, store)
    assert not swapped.supported and len(swapped.reasons) == 2


def test_a_reply_that_is_no_calculation_fails_the_check(income_statement):
    store, rows = income_statement
    check = check_calculation("Gross profit was about four billion dollars.", rows, store)
    assert not check.supported and "may use only cited numbers" in check.reasons[0]
    assert not check_calculation("CALC: [1] 10,208,580 - os.system('x')", rows, store).supported
    assert "no cited number" in check_calculation("CALC:", rows, store).reasons[0]


def test_a_number_written_in_the_evidence_is_answered_as_it_stands(income_statement):
    store, rows = income_statement
    check = check_calculation("CALC: [1] 10,208,580", rows, store)
    assert check.supported and check.claim == "10,208,580 thousand"


@pytest.mark.slow
def test_the_qwen_writer_returns_no_number_the_evidence_does_not_back(sample_store):
    """The real 1.5B writer on the sample filing. Whether it finds the right figure is the harness's measure;
    what the code guarantees is that a calculation is shown only when every operand is a number of the quote it
    cites (a refused one is rewritten once, then the answer quotes the evidence), and a number stated outright is
    in its quote."""
    from graphs.calc import numbers_in
    from pipeline import Pipeline
    from pipeline.config import PipelineConfig

    config = PipelineConfig().replace(synthesize={"llm": "local", "local_model": "qwen2.5-1.5b",
                                                  "local_dtype": "bfloat16", "computed_numbers": True})
    with Pipeline(sample_store, config=config) as p:
        answer = p.ask("What were Ulta Beauty's net sales in fiscal 2022?", trace=True)
        assert "synthesize" in answer.trace.route and not answer.abstained
        for claim in (c for c in answer.trace.claims if c.supported):
            quoted = {round(abs(x), 6) for c in claim.citations for x in numbers_in(c.quote)}
            stated = claim.claim.split(", computed as ")[-1] if "computed as" in claim.claim else claim.claim
            assert {round(abs(x), 6) for x in numbers_in(stated)} <= quoted, claim
        for c in answer.citations:
            assert p.document(c.doc_id).text[c.start:c.end] == c.quote
        assert answer.kind == "number"
        if answer.value is not None:  # a computed result leads the answer that shows its calculation
            assert answer.text.startswith(answer.value)
