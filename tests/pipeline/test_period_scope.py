"""Two real filings of one company (Johnson & Johnson's fiscal 2022 earnings release and a 2023 8-K): a question
naming a period gets that period's filing ranked wholly above the other, the trace says which filter and ranking
were applied, and a question naming a year no stored filing covers says so in its answer."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA, assert_citations_exact

from pipeline import Pipeline, PipelineConfig

DOCS = SHARED_DATA / "financebench" / "docs"
EARNINGS, EIGHT_K = "JOHNSON_JOHNSON_2022Q4_EARNINGS", "JOHNSON_JOHNSON_2023_8K_dated-2023-08-30"


@pytest.fixture(scope="module")
def jnj(tmp_path_factory):
    if not DOCS.is_dir():
        pytest.skip("FinanceBench is not beside the checkout (../shared/data)")
    cfg = PipelineConfig().replace(synthesize={"llm": "extractive"})
    with Pipeline(tmp_path_factory.mktemp("jnj"), cfg) as p:
        report = p.ingest([DOCS / f"{EARNINGS}.txt", DOCS / f"{EIGHT_K}.txt"])
        assert report.documents == 2 and not report.failed
        assert dict(p.document(EARNINGS).metadata)["fiscal_year"] == "2022"
        assert dict(p.document(EIGHT_K).metadata)["fiscal_year"] == "2023"
        yield p


def test_the_named_periods_filing_ranks_above_every_section_of_another_period(jnj):
    found = jnj.retrieve("What were Johnson & Johnson's worldwide sales in fiscal 2023?", top_sections=10)
    docs = [s.doc_id for s in found]
    assert EIGHT_K in docs and EARNINGS in docs
    first_other = docs.index(EARNINGS)
    assert set(docs[:first_other]) == {EIGHT_K} and set(docs[first_other:]) == {EARNINGS}
    answer = jnj.ask("What were Johnson & Johnson's worldwide sales in fiscal 2022?", trace=True)
    assert answer.trace.scope.startswith("names johnson johnson; fiscal year 2022")
    assert f"ranked below every section of that period: {EIGHT_K}" in answer.trace.scope
    assert answer.sections[0].doc_id == EARNINGS
    assert not answer.text.startswith("No stored filing")
    assert_citations_exact(jnj, answer)


def test_a_year_no_stored_filing_covers_is_said_in_the_answer(jnj):
    answer = jnj.ask("What were Johnson & Johnson's worldwide sales in fiscal 2019?", trace=True)
    assert answer.text.startswith("No stored filing of johnson johnson is for fiscal 2019 (stored: fiscal 2022, 2023)")
    assert "no filing of fiscal 2019" in answer.trace.scope
    assert_citations_exact(jnj, answer)
