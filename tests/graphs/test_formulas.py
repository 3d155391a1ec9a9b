"""Financial metrics read from questions and computed from statement rows: the metric, the fiscal years and how
they combine, the unit asked for, and the arithmetic (an average inside a ratio, a growth rate's root)."""

from __future__ import annotations

import pytest

from graphs.formulas import compute, plan, shown
from graphs.statements import table_rows


@pytest.mark.parametrize(("question", "want"), [
    ("What is the FY2017 operating cash flow ratio for the company? Round your answer to two decimal places.",
     ("operating cash flow ratio", (2017,), "value", "ratio", 2)),
    ("What is the FY2018 - FY2020 3 year average of capex as a % of revenue? Answer in units of percents and round "
     "to one decimal place.", ("capex to revenue", (2018, 2019, 2020), "average", "percent", 1)),
    ("What is the 2 year total revenue CAGR from FY2020 to FY2022 (in units of percents)?",
     ("revenue", (2020, 2021, 2022), "cagr", "percent", 1)),
    ("What is the year-over-year change in operating income from FY2015 to FY2016 (in units of percents)?",
     ("operating income", (2015, 2016), "change", "percent", 1)),
    # a definition spelled out in the question restates the metric: its years and "average" are the metric's own
    ("What is the FY2019 inventory turnover ratio? Inventory turnover ratio is defined as: (FY2019 COGS) / "
     "(average inventory between FY2018 and FY2019).", ("inventory turnover", (2019,), "value", "ratio", 2)),
    ("How much did the company generate in cash flow from operating activities in FY2020? Answer in USD millions.",
     ("cfo", (2020,), "value", "usd", 2)),
])
def test_plan_reads_metric_years_combination_and_unit(question, want):
    p = plan(question)
    assert (p.metric.name, p.years, p.combine, p.unit, p.digits) == want


def test_a_question_naming_no_metric_or_asking_which_or_why_has_no_plan():
    assert plan("Who signed the agreement on behalf of the licensee?") is None
    assert plan("Which of the business segments had the lowest net revenue in 2021 Q1?") is None
    assert plan("What drove the increase in the merchandise inventories balance at the end of FY2023?") is None


STATEMENTS = """CONSOLIDATED BALANCE SHEETS
(In millions)
2019  2018
Inventories  2,721  2,667
Total current assets  8,097  7,568
Total current liabilities  7,875  7,503
CONSOLIDATED STATEMENTS OF INCOME
(In millions)
Years Ended
2019  2018  2017
Net sales  24,977  26,268  26,076
Cost of products sold  16,830  17,347  17,043
Operating income  3,070  (10,205)  6,773
CONSOLIDATED STATEMENTS OF CASH FLOWS
(In millions)
2019  2018  2017
Depreciation and amortization  994  983  1,036
Capital expenditures  (768)  (826)  (1,217)
"""


def test_compute_averages_inside_a_ratio_and_cites_each_row_once():
    rows = table_rows(STATEMENTS)
    p = plan("What is the FY2019 inventory turnover ratio? Inventory turnover ratio is defined as: (FY2019 COGS) / "
             "(average inventory between FY2018 and FY2019). Round your answer to two decimal places.")
    done = compute(p, rows)
    assert done.expression == "([1] 16,830 / (([2] 2,721 + [2] 2,667) / 2))"
    assert done.value == "6.25" and [r.label for r in done.rows] == ["Cost of products sold", "Inventories"]


def test_compute_growth_cagr_amounts_and_missing_operands():
    rows = table_rows(STATEMENTS)
    cagr = compute(plan("What is the revenue CAGR from FY2017 to FY2019 (in units of percents)?"), rows)
    assert cagr.value == f"{((24977 / 26076) ** 0.5 - 1) * 100:.1f}%" and "^" in cagr.calculation.plain()
    ebitda = compute(plan("What is the FY2019 EBITDA less capex? Answer in USD millions."), rows)
    assert ebitda.value == "$3,296.00 million"  # 3,070 + 994 - 768: capital spent, however the statement signs it
    assert compute(plan("What is the FY2017 working capital ratio?"), rows) is None  # no 2017 balance sheet column
    assert shown(-0.125, plan("What is the change in revenue from FY2018 to FY2019 in percent?")) == "-12.5%"


def test_a_named_quarter_is_planned_and_a_companys_year_names_are_moved_to_the_statements():
    from graphs.typed import in_statement_years

    assert plan("What were net sales in the fourth quarter of fiscal 2022?").quarter
    assert plan("Q3 2023 operating income?").quarter and plan("net income for the three months ended June 30, 2023").quarter
    assert not plan("What were net sales in fiscal 2022?").quarter
    ulta = {"fiscal_year": "2023", "fiscal_year_named": "2022"}
    assert in_statement_years(plan("net sales in fiscal 2022"), ulta).years == (2023,)
    assert in_statement_years(plan("FY2023 net sales"), ulta).years == (2023,)  # already the calendar's name
    assert in_statement_years(plan("net sales growth from fiscal 2021 to fiscal 2022"), ulta).years == (2022, 2023)
    assert in_statement_years(plan("net sales in fiscal 2022"), {"fiscal_year": "2022"}).years == (2022,)
