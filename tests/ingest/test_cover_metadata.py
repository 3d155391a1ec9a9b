"""Whose filing it is, which form, which fiscal year: read from the cover page the way the form defines it, on real
FinanceBench filings (text and PDF) whose covers trip simple rules, and on hand-made covers. Each value says where
it was read, and the place holds it."""

from __future__ import annotations

import re

import pytest
from conftest import SHARED_DATA

from ingest.metadata import filing_metadata, read_filing
from pipeline import Pipeline

FB = SHARED_DATA / "financebench"
pytestmark = pytest.mark.skipif(not (FB / "docs").is_dir(), reason="FinanceBench is not beside the checkout")


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    return Pipeline(tmp_path_factory.mktemp("unused"))


def _meta(reader, name: str) -> tuple[dict[str, str], str]:
    doc = reader.read(FB / name)[0]
    return dict(doc.metadata), doc.text


@pytest.mark.parametrize("name, company, form, year, period_end", [
    # the registrant's name is missing above its label; "Delaware" (the state's label beside it) must not be taken
    ("docs/COCACOLA_2017_10K.txt", "The Coca-Cola Company", "10-K", "2017", "2017-12-31"),
    # small capitals extracted apart
    ("docs/MGMRESORTS_2018_10K.txt", "MGM RESORTS INTERNATIONAL", "10-K", "2018", "2018-12-31"),
    # a PDF extracted one word per line: the name joined back, the state below it not taken
    ("pdfs/BLOCK_2016_10K.pdf", "SQUARE, INC.", "10-K", "2016", "2016-12-31"),
    ("pdfs/BLOCK_2020_10K.pdf", "SQUARE, INC.", "10-K", "2020", "2020-12-31"),
    # the date of report printed just above the name
    ("docs/JOHNSON_JOHNSON_2023_8K_dated-2023-08-30.txt", "Johnson & Johnson", "8-K", "2023", "2023-08-30"),
    ("docs/AMCOR_2022_8K_dated-2022-07-01.txt", "AMCOR PLC", "8-K", "2022", "2022-07-01"),
    # a quarter belongs to the fiscal year it falls in: six months ended December 31, 2022 is fiscal 2023
    ("docs/AMCOR_2023Q2_10Q.txt", "AMCOR PLC", "10-Q", "2023", "2022-12-31"),
    ("pdfs/Pfizer_2023Q2_10Q.pdf", "PFIZER INC.", "10-Q", "2023", "2023-07-02"),
    # an earnings release: the year its fiscal year ends (the company calls it fiscal 2022)
    ("docs/ULTABEAUTY_2023Q4_EARNINGS.txt", "Ulta Beauty, Inc.", "earnings", "2023", "2023-01-28"),
])
def test_real_covers_are_read_as_the_form_defines_them(reader, name, company, form, year, period_end):
    meta, text = _meta(reader, name)
    assert (meta["company"], meta["form"], meta["fiscal_year"], meta["period_end"]) == (company, form, year, period_end)
    for field in ("company", "form", "fiscal_year", "period_end"):
        where = re.search(r"\[(\d+):(\d+)\]$", meta[f"{field}_from"])
        assert where, meta[f"{field}_from"]
        span = re.sub(r"\s+", " ", text[int(where[1]):int(where[2])])
        if field == "company" or form != "earnings" and field == "form":
            assert re.sub(r"\s+", "", meta[field]).lower()[:6] in re.sub(r"\s+", "", span).lower()
        if field == "form" and form == "earnings":
            assert "results" in span.lower()
        assert 0.0 < float(meta[f"{field}_confidence"]) <= 1.0


def test_a_neighbouring_label_is_never_the_company():
    cover = ("UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-K\n"
             "For the fiscal year ended March 31, 2024\nCommission File Number 001-12345\n"
             "State of Incorporation: Delaware\n(Exact name of registrant as specified in its charter)\n"
             "Delaware\n(State or other jurisdiction of incorporation)\n")
    body = "Acme Widget Corporation makes widgets. " * 2 + "Acme Widget Corporation sells them. "
    read = read_filing(cover + body)
    assert "Delaware" not in read["company"].value
    assert read["company"].value == "Acme Widget Corporation"
    assert read["company"].confidence < 0.5  # the cover gave nothing sure: the name the filing uses most
    assert read["fiscal_year"].value == "2024"
    # the label first and the name below it, as multi-registrant covers set it
    below = ("FORM 10-K\nFor the fiscal year ended June 30, 2023\n(Exact name of registrant as specified in its "
             "charter)\nGlobex Holdings, Inc.\n1-23456\nNevada\n(State or other jurisdiction)\n")
    assert filing_metadata(below)["company"] == "Globex Holdings, Inc."


def test_sections_json_shows_each_documents_metadata_and_where_it_was_read(sample_store):
    import json
    import subprocess
    import sys

    from conftest import ROOT

    doc = "ULTABEAUTY_2023Q4_EARNINGS"
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "sections", "--store", str(sample_store), "--doc", doc,
                          "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    docs = json.loads(out.stdout)["documents"]
    assert [d["id"] for d in docs] == [doc]
    assert docs[0]["metadata"]["company"] == "Ulta Beauty, Inc."
    assert docs[0]["metadata"]["fiscal_year"] == "2023"
    assert docs[0]["metadata_read_from"]["company"]["from"].startswith("the name before its ticker (ULTA)")
    assert 0.5 <= docs[0]["metadata_read_from"]["company"]["confidence"] <= 1.0


def test_the_companys_own_name_for_a_january_year_is_kept_beside_it(reader, sample_pipeline):
    meta, text = _meta(reader, "docs/ULTABEAUTY_2023Q4_EARNINGS.txt")
    # Ulta's "fiscal 2022" ended January 28, 2023: both names find the release
    assert (meta["fiscal_year"], meta["fiscal_year_named"]) == ("2023", "2022")
    where = re.search(r"\[(\d+):(\d+)\]$", meta["fiscal_year_named_from"])
    assert text[int(where[1]):int(where[2])] == "Fiscal 2022"
    # Best Buy names its year ended January 28, 2023 "fiscal 2023": nothing to add
    assert "fiscal_year_named" not in _meta(reader, "docs/BESTBUY_2023_10K.txt")[0]
    answer = sample_pipeline.ask("What were Ulta Beauty's net sales in the fourth quarter of fiscal 2022?", trace=True)
    assert not answer.text.startswith("No stored filing")
    assert "fiscal year 2022" in answer.trace.scope
