"""The calculator of numeric answers on real FinanceBench statements: scale, signs, percentages, checks."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA

from graphs.calc import CalcError, check_operands, evaluate, format_value, numbers_in, parse_quantity, scale_of


@pytest.fixture(scope="module")
def evidence() -> dict[str, list[str]]:
    """FinanceBench's gold evidence pages, by question id."""
    out = {}
    with open(SHARED_DATA / "financebench" / "questions.jsonl") as fh:
        for line in fh:
            q = json.loads(line)
            out[q["financebench_id"]] = [e["evidence_text"] for e in q["evidence"]]
    return out


def test_adobe_operating_cash_flow_ratio_from_two_statements_in_thousands(evidence):
    balance, cash_flows = evidence["financebench_id_04735"]   # gold answer 0.66
    assert scale_of(balance) == scale_of(cash_flows) == 1e3
    calc = evaluate("[2] 1,469,502 / [1] 2,213,556", {1: scale_of(balance), 2: scale_of(cash_flows)})
    assert round(calc.value, 2) == 0.66 and calc.unit is None
    assert calc.shown() == "[2] 1,469,502 / [1] 2,213,556 = 0.66"
    assert check_operands(calc, {1: balance, 2: cash_flows}) == []
    # the right number cited to the wrong statement, and a number neither holds, are both caught
    swapped = evaluate("[1] 1,469,502 / [2] 2,213,556")
    assert check_operands(swapped, {1: balance, 2: cash_flows}) == [
        "[1] 1,469,502 is not a number of evidence [1]", "[2] 2,213,556 is not a number of evidence [2]"]
    assert check_operands(evaluate("[2] 1,469,503 / [1] 2,213,556"), {1: balance, 2: cash_flows}) == [
        "[2] 1,469,503 is not a number of evidence [2]"]
    assert check_operands(calc, {1: balance}) == ["[2] cites no evidence"]


def test_best_buy_cash_flows_in_millions_with_outflows_in_parentheses(evidence):
    (page,) = evidence["financebench_id_01275"]
    assert scale_of(page) == 1e6  # "$ in millions"
    held = numbers_in(page)
    assert 1824 in held and -962 in held and -1099 in held  # "(962)" is an outflow
    # the operating inflow less the investing outflow, written as the statement prints it
    calc = evaluate("[1] 1,824 + [1] (962)", {1: scale_of(page)})
    assert calc.value == 862e6 and calc.scale == 1e6
    assert calc.shown() == "[1] 1,824 + [1] (962) = 862 million"
    assert check_operands(calc, {1: page}) == []
    # subtracting the magnitude is the same figure, and 962 is accepted as the number the table holds
    assert evaluate("[1] 1,824 - [1] 962", {1: 1e6}).value == 862e6
    assert check_operands(evaluate("[1] 1,824 - [1] 962"), {1: page}) == []


def test_thousands_and_millions_meet_in_base_units():
    calc = evaluate("[1] 2,500 + [2] 1.2 billion + [3] $350 thousand", {1: 1e6})
    assert calc.value == 2_500e6 + 1.2e9 + 350e3
    assert calc.unit == "$" and calc.scale == 1e9
    assert calc.shown() == "[1] 2,500 + [2] 1.2 billion + [3] $350 thousand = $3.7 billion"
    assert evaluate("[1] $10,208.6 million - [2] $8,630.9 million").shown() == (
        "[1] $10,208.6 million - [2] $8,630.9 million = $1,577.7 million")


def test_percentages_and_growth():
    assert evaluate("[1] 24.6% − [2] 21.6%").shown() == "[1] 24.6% − [2] 21.6% = 3.00%"
    growth = evaluate("([1] 1,824 − [2] 3,252) / [2] 3,252 × 100", {1: 1e6, 2: 1e6})
    assert round(growth.value, 2) == -43.91 and growth.unit is None
    assert parse_quantity("(12.5)%").value == -0.125
    assert parse_quantity("−$3.2 bn").value == -3.2e9
    assert format_value(-0.1234, "%") == "-12.34%"


@pytest.mark.parametrize("expression, problem", [
    ("[1] 5 ; __import__('os')", "may use only cited numbers"),
    ("__import__('os').system('true')", "may use only cited numbers"),
    ("[1] 5 ** 99", "cannot evaluate"),
    ("[1] 5 / ([2] 3 - [3] 3)", "division by zero"),
    ("[1] 5 + (", "cannot read"),
    ("5 + 6", "no cited number"),
])
def test_anything_but_arithmetic_on_cited_numbers_is_refused(expression, problem):
    with pytest.raises(CalcError, match=problem):
        evaluate(expression)


def test_the_writers_own_result_is_recomputed_not_trusted():
    assert evaluate("[1] 1,204 - [2] 311 = 900").value == 893


def test_a_growth_rates_root_is_evaluated_and_a_huge_power_refused():
    calc = evaluate("([1] 65,984 / [2] 65,398) ** (1 / 2) - 1")
    assert round(calc.value * 100, 1) == 0.4 and "^" in calc.shown()
    with pytest.raises(CalcError):
        evaluate("[1] 10 ** 1000")
