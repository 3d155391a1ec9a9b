"""Question types on the real questions of every suite, and on questions users write."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import SHARED_DATA

from eval.datasets import load_contractnli, load_cuad, load_financebench, load_synthea
from graphs.qtype import TYPES, classify


def types_of(items) -> Counter:
    return Counter(classify(it.question) for it in items)


def test_cuad_asks_for_clauses_and_contractnli_for_verdicts():
    assert types_of(load_cuad(SHARED_DATA).items[:2000]) == Counter({"span": 2000})
    nli = load_contractnli(SHARED_DATA).items
    assert types_of(nli) == Counter({"yesno": len(nli)})


def test_synthea_lists_and_dates():
    by_kind: dict[str, Counter] = {}
    for it in load_synthea(SHARED_DATA).items:
        by_kind.setdefault(it.stratum, Counter())[classify(it.question)] += 1
    assert set(by_kind["medications"]) == set(by_kind["allergies"]) == {"list"}
    for kind in ("condition_onset", "medication_start", "procedure_date"):
        assert set(by_kind[kind]) == {"date"}, kind


def test_financebench_metric_questions_are_computed():
    items = load_financebench(SHARED_DATA).items
    metrics = types_of(it for it in items if it.stratum == "metrics-generated")
    assert metrics["number"] == sum(metrics.values())
    assert set(types_of(items)) <= set(TYPES) and types_of(items)["yesno"] >= 10


@pytest.mark.parametrize("question, kind", [
    ("What is the total amount of capital expenditures in FY2018 (in USD millions)?", "number"),
    ("How much did revenue grow between 2021 and 2022?", "number"),
    ("When primarily referencing the cash flow statement, what is the FY2019 capex? Round your answer.", "number"),
    ("Which allergies does the patient have?", "list"),
    ("List all termination rights.", "list"),
    ("Who are the parties to the agreement?", "list"),
    ("What is the expiration date of the agreement?", "date"),
    ("When did the patient first have a colonoscopy?", "date"),
    ("Highlight the parts of this contract related to governing law.", "span"),
    ("Which clause covers assignment?", "span"),
    ("Does the agreement state that all Confidential Information shall be expressly identified?", "yesno"),
    ("Receiving Party may share Confidential Information with its employees.", "yesno"),
    ("As of Q2 2023, is the company spinning off any large business segment?", "yesno"),
    ("How can the outsourcing agreement be terminated?", "open"),
    ("What industry does the company primarily operate in?", "open"),
])
def test_questions_users_write(question, kind):
    assert classify(question) == kind
