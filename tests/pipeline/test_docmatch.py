"""Questions that name a company, year, form or patient are scoped to those documents."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA

from ingest.metadata import filing_metadata
from pipeline.docmatch import DocProfile, match_documents, question_quarter, question_years

DOCS = SHARED_DATA / "financebench" / "docs"
NAMES = ["ADOBE_2015_10K", "ADOBE_2016_10K", "ADOBE_2017_10K", "BESTBUY_2017_10K", "BESTBUY_2023_10K",
         "AMCOR_2023Q2_10Q", "AMCOR_2023_10K", "GENERALMILLS_2019_10K", "JOHNSON_JOHNSON_2022Q4_EARNINGS"]


@pytest.fixture(scope="module")
def profiles():
    if not DOCS.exists():
        pytest.skip("needs ../shared/data (FinanceBench)")
    return [DocProfile.from_metadata(n, "filing", "", filing_metadata((DOCS / f"{n}.txt").read_text()))
            for n in NAMES]


def test_years_in_questions():
    assert question_years("What was FY2015 revenue versus FY16 and fiscal 2017?") == {"2015", "2016", "2017"}
    assert question_years("Revenue of $2015.3 million grew 2019%") == set()
    assert question_years("margins from FY2015 through FY2017") == {"2015", "2016", "2017"}


ADOBE = ["ADOBE_2015_10K", "ADOBE_2016_10K", "ADOBE_2017_10K"]
AMCOR = ["AMCOR_2023Q2_10Q", "AMCOR_2023_10K"]


@pytest.mark.parametrize("question, scope, boosted", [
    ("What is the FY2016 operating cash flow ratio for Adobe?", ADOBE, ["ADOBE_2016_10K"]),
    ("Does Adobe have an improving operating margin profile as of FY2015 through FY2017?", ADOBE, ADOBE),
    ("What are Best Buy's total current liabilities in FY2023?", ["BESTBUY_2017_10K", "BESTBUY_2023_10K"],
     ["BESTBUY_2023_10K"]),
    ("What was Amcor's net income in its 10-Q?", AMCOR, ["AMCOR_2023Q2_10Q"]),
    ("How did General Mills' gross margin change?", ["GENERALMILLS_2019_10K"], []),
    ("What drove Johnson & Johnson's 2022 sales decline?", ["JOHNSON_JOHNSON_2022Q4_EARNINGS"],
     ["JOHNSON_JOHNSON_2022Q4_EARNINGS"]),
])
def test_questions_naming_company_and_period_pick_those_filings(profiles, question, scope, boosted):
    focus = match_documents(question, profiles)
    assert focus.doc_ids == scope                      # the company's documents only
    assert sorted(d for d, b in focus.boosts.items() if b > 1) == boosted   # its named year / form first
    assert focus.reason.startswith("names ")


def test_questions_naming_nothing_are_not_restricted(profiles):
    assert match_documents("What is the target leverage ratio in 2015?", profiles).doc_ids is None
    target = [DocProfile("t", (("target",),), ("2015",), "10-K")]
    assert match_documents("what is the target price?", target).doc_ids is None   # not a proper noun here
    assert match_documents("What is Target's revenue?", target).doc_ids == ["t"]


def test_patient_named_in_a_question_scopes_retrieval(sample_pipeline):
    retriever = sample_pipeline._retriever(sample_pipeline._open_store(), sample_pipeline._open_index())
    found = retriever.retrieve("Which medications has Augustus Neville been prescribed?")
    assert {s.doc_id for s in found.sections} == {"synthea-patient-cbc86e51"}
    assert "augustus" in found.scope
    everywhere = retriever.retrieve("Which medications have been prescribed?")
    assert everywhere.scope == ""


def test_a_named_period_ranks_that_filing_first_and_the_rest_below(profiles):
    focus = match_documents("What is the FY2016 operating cash flow ratio for Adobe?", profiles)
    assert focus.tiers == {"ADOBE_2016_10K": 0, "ADOBE_2015_10K": 8, "ADOBE_2017_10K": 8}
    assert "ranked below every section of that period: ADOBE_2015_10K, ADOBE_2017_10K" in focus.reason
    assert not focus.notice
    # a span: the filing of its latest year first (its comparatives hold the earlier years), the others of it next
    focus = match_documents("Adobe's operating margin from FY2015 through FY2016?", profiles)
    assert focus.tiers == {"ADOBE_2016_10K": 0, "ADOBE_2015_10K": 4, "ADOBE_2017_10K": 8}


def test_a_forecast_for_a_year_is_read_in_the_year_before(profiles):
    focus = match_documents("Is growth in Johnson & Johnson's adjusted EPS expected to accelerate in FY2023?", profiles)
    assert focus.doc_ids == ["JOHNSON_JOHNSON_2022Q4_EARNINGS"] and not focus.notice
    assert focus.tiers == {"JOHNSON_JOHNSON_2022Q4_EARNINGS": 0}
    assert "forward-looking" in focus.reason


def test_a_year_no_stored_filing_covers_is_said(profiles):
    focus = match_documents("What was Adobe's revenue in FY2019?", profiles)
    assert focus.doc_ids == ADOBE and not focus.tiers
    assert focus.notice.startswith("No stored filing of adobe systems is for fiscal 2019 (stored: fiscal 2015, 2016, 2017)")


def test_a_named_quarter_ranks_that_quarters_report_first(profiles):
    assert question_quarter("restructuring liability as of Q2 of FY2023") == "2"
    assert question_quarter("results for the fourth quarter of fiscal 2022") == "4"
    assert question_quarter("What was FY2022 revenue?") == ""
    focus = match_documents("What is the nature of AMCOR's restructuring liability as of Q2 of FY2023 close?", profiles)
    assert focus.tiers == {"AMCOR_2023Q2_10Q": 0, "AMCOR_2023_10K": 2}
    assert "quarter 2" in focus.reason
    focus = match_documents("What was Amcor's FY2023 net income in its 10-K?", profiles)
    assert focus.tiers == {"AMCOR_2023_10K": 0, "AMCOR_2023Q2_10Q": 1}


def test_a_question_naming_no_period_asks_about_the_latest_filing(profiles):
    focus = match_documents("Are Best Buy's gross margins historically consistent?", profiles)
    assert focus.tiers == {"BESTBUY_2023_10K": 0, "BESTBUY_2017_10K": 8}
    assert "no period named: the latest, fiscal 2023, first" in focus.reason
    # one filing, or documents that are not filings (no form): nothing to order
    assert match_documents("How did General Mills' gross margin change?", profiles).tiers == {}
    contracts = [DocProfile("a", (("acme",),), ("2019",)), DocProfile("b", (("acme",),), ("2021",))]
    assert match_documents("What does Acme's agreement say about notice?", contracts).tiers == {}
