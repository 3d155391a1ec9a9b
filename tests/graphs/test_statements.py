"""Reading a filing's statement tables on real filings: a 10-K extracted to text (one cell per line, dot leaders,
"$" on its own line) and an earnings release read from its PDF (tab-separated cells, a share-of-sales column beside
each year, a quarter's statement before the year's)."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATA

from graphs.statements import CONCEPTS, find, table_rows

ADOBE_2015 = SHARED_DATA / "financebench" / "docs" / "ADOBE_2015_10K.txt"


@pytest.fixture(scope="module")
def adobe():
    text = ADOBE_2015.read_text(encoding="utf-8", errors="replace")
    return text, table_rows(text)


def test_a_10k_balance_sheet_and_cash_flow_rows_carry_year_scale_and_statement(adobe):
    text, rows = adobe
    liabilities = find(rows, CONCEPTS["current_liabilities"], 2015)
    assert liabilities.statement == "balance" and liabilities.scale == 1e3
    assert liabilities.cell(2015).text == "2,213,556" and liabilities.cell(2014).text == "2,494,435"
    # the cash flow statement's row, not the MD&A's summary of it in millions
    cfo = find(rows, CONCEPTS["cfo"], 2015)
    assert cfo.statement == "cashflow" and cfo.cell(2015).text == "1,469,502" and cfo.scale == 1e3
    capex = find(rows, CONCEPTS["capex"], 2015)
    assert capex.cell(2015).number < 0  # an outflow, as the statement writes it
    assert find(rows, CONCEPTS["inventory"], 2015) is None  # Adobe reports no inventory


def test_every_cell_is_the_text_at_its_offsets(adobe):
    text, rows = adobe
    assert len(rows) > 500
    for r in rows:
        assert 0 <= r.start < r.end <= len(text)
        for c in r.cells:
            assert text[c.start:c.end] == c.text and r.start < c.start and c.end <= r.end


def test_an_earnings_release_pdf_prefers_the_years_statement_to_the_quarters(sample_pipeline):
    doc = next(d for d in sample_pipeline.documents() if "ULTA" in d.upper())
    rows = table_rows(sample_pipeline.document(doc).text)
    cogs = find(rows, CONCEPTS["cogs"], 2023)
    # the release shows the fourth quarter's income statement (13 weeks: 2,014,270) before the year's (52 weeks)
    assert cogs.cell(2023).text == "6,164,070" and cogs.period == "year" and cogs.scale == 1e3
    sales = find(rows, CONCEPTS["revenue"], 2023)
    assert [c.year for c in sales.cells] == [2023, None, 2022, None]  # "100.0%" columns have no year
    assert find(rows, CONCEPTS["current_liabilities"], 2023).cell(2023).text == "1,681,775"


def test_hand_made_tables_one_row_per_line_and_one_cell_per_line():
    one_line = ("CONSOLIDATED STATEMENTS OF OPERATIONS\n(in millions)\nYears Ended December 31,\n2021  2020\n"
                "Net sales  $ 1,204.5  $ 1,100.0\nCost of sales  (311)  (290)\n")
    rows = table_rows(one_line)
    assert [(r.label, r.statement, r.period, [(c.year, c.text) for c in r.cells]) for r in rows] == [
        ("Net sales", "income", "year", [(2021, "$ 1,204.5"), (2020, "$ 1,100.0")]),
        ("Cost of sales", "income", "year", [(2021, "(311)"), (2020, "(290)")]),
    ]
    assert rows[1].cells[0].number == -311 and rows[0].scale == 1e6
    prose = "This paragraph describes the results of the year in many words, " * 3
    rows = table_rows(one_line + prose + "\nNet sales  9  8\n")
    assert rows[-1].statement is None and rows[-1].cells[0].year is None  # the paragraph ended the statement


def test_header_years_as_a_pdf_reader_writes_them():
    # the years on the scale line, and the last year glued to the heading under it
    nike = "CONSOLIDATED BALANCE SHEETS\nMAY 31,\n(Dollars in millions)\t2019\t2018\nASSETS\nInventories\t5,622\t5,261\n"
    general_mills = ("Consolidated Balance Sheets\n(In Millions, Except Par Value)\nMay 26,\n2019\tMay 27,\n"
                     "2018 ASSETS Current assets:\nInventories\t1,559.3\t1,642.2\n")
    for text in (nike, general_mills):
        (row,) = table_rows(text)
        assert row.statement == "balance" and row.scale == 1e6 and [c.year for c in row.cells] == [2019, 2018]
    # a label that ends in a date is no header: the rows under it keep the table's years
    kraft = ("Consolidated Balance Sheets\n(in millions)\nDecember 28, 2019 December 29, 2018\n"
             "Trade receivables (net of allowances of $33 at December 28, 2019 and $24 at December 29, 2018)\n"
             "1,973\n2,129\nInventories\n2,721\n2,667\n")
    assert [[c.year for c in r.cells] for r in table_rows(kraft)] == [[2019, 2018], [2019, 2018]]
