"""Per-item metrics and their aggregation, on hand-made cases whose answers are known."""

from __future__ import annotations

import pytest

from eval import metrics
from eval.scoring import nli_label


def test_token_f1_is_squad_f1():
    assert metrics.token_f1("The term is five years [1].", "term is five years") == 1.0
    assert metrics.token_f1("five years", "the term is five years") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert metrics.token_f1("nothing alike", "term") == 0.0


def test_spans_overlap_coverage_and_citations():
    gold = [(100, 200), (300, 350)]
    assert metrics.coverage(gold, [(150, 320)]) == pytest.approx((50 + 20) / 150)
    assert metrics.coverage([], [(0, 10)]) is None
    assert metrics.hit(gold, [(0, 99)]) == 0.0 and metrics.hit(gold, [(0, 101)]) == 1.0
    assert metrics.span_f1([(100, 200)], [(100, 200)]) == 1.0
    assert metrics.span_f1([(0, 100)], [(100, 200)]) == 0.0
    assert metrics.citation_precision([(0, 10), (120, 130)], gold) == 0.5
    assert metrics.citation_recall([(120, 130)], gold) == 0.5
    assert metrics.covered([(0, 10), (5, 20)], [(0, 100)]) == 20  # overlapping spans counted once


@pytest.mark.parametrize(("pred", "gold", "want"), [
    ("The ratio was 0.66 [1].", "0.66", 1.0),
    ("It rose to 65.40%.", "65.4%", 1.0),
    ("Revenue was $1,577 million", "$1577.00", 1.0),         # scale: millions written out
    ("Capex was 1.58 billion", "$1,577 million", 1.0),       # within 1%... 1.58 vs 1.577 is 0.19%
    ("The ratio was 0.70", "0.66", 0.0),
    ("Amcor improved margins", "No. gross margins declined", None),
    ("In 2022 the ratio was 0.69", "from 0.67 times to 0.69 times between FY 2023 and FY 2022", 1.0),
    ("Revenue was $660 million", "0.66", 0.0),                # no rescaling of short numbers
    ("a ratio of 0.654", "65.4%", 1.0),
    ("Net sales of $3.2 Billion in fiscal 2023", "Wages increased in FY2023.", None),  # years only: not numeric
    ("0.66, computed as 1,469,502 / 2,213,556 [1][2]", "0.66", 1.0),
    ("1.00, computed as 2,213,556 / 2,213,556 [1]", "2,213,556", 0.0),  # an operand is not the answer
    ("$4.62 billion, computed as 4,625 [1]", "$4.60", 1.0),   # the gold figure is in the unit the question asks
    ("$4.62 billion", "$4.60 million", 0.0),                   # but a gold scale word is kept
])
def test_numeric_match(pred, gold, want):
    assert metrics.numeric_match(pred, gold) == want


def test_dates_and_names():
    assert metrics.date_match("Onset was on 2001-02-03 [2].", "2001-02-03") == 1.0
    assert metrics.date_match("first seen February 3, 2001", "2001-02-03") == 1.0
    assert metrics.date_match("on 2/3/2001", "2001-02-03") == 1.0
    assert metrics.date_match("in 2001", "2001-02-03") == 0.0
    gold = ["lisinopril 10 MG Oral Tablet", "Hydrochlorothiazide 25 MG Oral Tablet"]
    assert metrics.name_recall("She takes lisinopril 10 mg daily.", gold) == 0.5
    assert metrics.name_recall("Allergic to Aspirin", ["Aspirin (substance)"]) == 1.0


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    values = [1.0, 0.0, 1.0, 1.0, None, 0.0, 1.0]
    a, b = metrics.mean_ci(values), metrics.mean_ci(values)
    assert a == b and a["n"] == 6 and a["lo"] <= a["mean"] <= a["hi"]
    assert metrics.mean_ci([None, None]) == {"mean": None, "lo": None, "hi": None, "n": 0}
    r = metrics.ratio_ci([1, 0, 2], [2, 0, 4])  # 3 unsupported of 6 claims; the claimless answer is left out
    assert r["mean"] == 0.5 and r["n"] == 2 and r["claims"] == 6


def test_abstention_precision_recall():
    pr = metrics.precision_recall([True, True, False, False], [True, False, True, False])
    assert pr["precision"] == 0.5 and pr["recall"] == 0.5 and pr["tp"] == 1


def test_nli_label_from_answer():
    h = "Receiving Party shall not reverse engineer any objects."
    assert nli_label("", True, h) == "NotMentioned"
    assert nli_label("The recipient shall not reverse engineer the samples [1].", False, h) == "Entailment"
    assert nli_label("The recipient may reverse engineer the samples [1].", False, h) == "Contradiction"
