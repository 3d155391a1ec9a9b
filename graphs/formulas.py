"""Financial metrics a question names, computed from the rows of a filing's statements.

"What is the FY2017 operating cash flow ratio for Adobe?" names a metric with a standard definition (cash from
operations ÷ total current liabilities), a fiscal year and an answer form (a ratio, two decimals). ``plan`` reads
those from the question: the metric (``METRICS``, the definitions analysts use, or a single line item such as
"accounts payable" or "capital expenditure"), the fiscal years and how they combine (one year, the change or growth
between two, a compound annual growth rate, an average over a span), and the unit asked for (a percentage, USD
millions, a ratio) with its rounding. ``compute`` finds each operand's row and fiscal-year column
(``graphs.statements``), writes the calculation as an expression over cited numbers (``[1] 1,469,502 / [2]
2,213,556``) and evaluates it with ``graphs.calc`` — the same code that checks a writer's calculation — so the
verifier recomputes it from the cited rows.

>>> p = plan("What is the FY2017 operating cash flow ratio for Adobe? Round your answer to two decimal places.")
>>> p.metric.name, p.years, p.combine, p.unit, p.digits
('operating cash flow ratio', (2017,), 'value', 'ratio', 2)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from graphs.calc import CalcError, Calculation, evaluate
from graphs.statements import CONCEPTS, Row, find

_I = re.IGNORECASE


@dataclass(frozen=True)
class Metric:
    name: str
    asked: re.Pattern
    """How a question names it."""
    formula: str
    """Over concepts (``graphs.statements.CONCEPTS``) of the year asked: ``avg(x)`` is the average of x at the year
    and the year before, ``x@-1`` x at the year before; numbers are constants."""
    unit: str = "ratio"
    """``percent`` (a margin, a share of revenue), ``usd`` (an amount of money) or ``ratio``."""


def _m(name: str, asked: str, formula: str, unit: str = "ratio") -> Metric:
    return Metric(name, re.compile(asked, _I), formula, unit)


# the most specific first: "EBITDA less capex" before "EBITDA", "net working capital" before "working capital ratio"
METRICS: tuple[Metric, ...] = (
    _m("cash conversion cycle", r"\bcash conversion cycle\b|\bCCC\b",
       "365 * avg(inventory) / cogs + 365 * avg(receivables) / revenue - 365 * avg(accounts_payable) / cogs"),
    _m("days inventory outstanding", r"\bdays (?:of )?inventory (?:outstanding|on hand)\b|\bDIO\b", "365 * avg(inventory) / cogs"),
    _m("days sales outstanding", r"\bdays (?:of )?sales outstanding\b|\bDSO\b", "365 * avg(receivables) / revenue"),
    _m("days payable outstanding", r"\bdays (?:of )?payables? outstanding\b|\bDPO\b", "365 * avg(accounts_payable) / cogs"),
    _m("operating cash flow ratio", r"\boperating cash flow ratio\b", "cfo / current_liabilities"),
    _m("net working capital", r"\bnet working capital\b|\bworking capital\b(?! ratio)", "current_assets - current_liabilities", unit="usd"),
    _m("working capital ratio", r"\bworking capital ratio\b|\bcurrent ratio\b", "current_assets / current_liabilities"),
    _m("return on assets", r"\breturn on (?:total )?assets\b|\bROA\b", "net_income / avg(total_assets)"),
    _m("inventory turnover", r"\binventory turnover\b", "cogs / avg(inventory)"),
    _m("fixed asset turnover", r"\bfixed asset turnover\b", "revenue / avg(ppe)"),
    _m("total asset turnover", r"\b(?:total )?asset turnover\b", "revenue / avg(total_assets)"),
    _m("EBITDA less capex", r"\bEBITDA (?:less|minus) (?:capex|capital expenditures?)\b", "operating_income + dna - capex", unit="usd"),
    _m("EBITDA margin", r"\bEBITDA (?:%\s*)?margin\b", "(operating_income + dna) / revenue", unit="percent"),
    _m("EBITDA", r"\bEBITDA\b", "operating_income + dna", unit="usd"),
    _m("free cash flow", r"\bfree cash flows?\b|\bFCF\b", "cfo - capex", unit="usd"),
    _m("capex to revenue", r"\b(?:capex|capital expenditures?)\b.{0,20}\b(?:as a )?(?:%|percent(?:age)?) of (?:total )?revenues?\b",
       "capex / revenue", unit="percent"),
    _m("gross margin", r"\bgross (?:profit )?(?:%\s*)?margin\b", "(revenue - cogs) / revenue", unit="percent"),
    _m("operating margin", r"\boperating (?:income )?(?:%\s*)?margin\b|\boperating profit margin\b",
       "operating_income / revenue", unit="percent"),
    _m("net profit margin", r"\bnet (?:profit|income) (?:%\s*)?margin\b|\bnet margin\b", "net_income / revenue", unit="percent"),
    _m("cost of goods sold margin", r"\b(?:COGS|cost of goods sold) (?:%\s*)?margin\b", "cogs / revenue", unit="percent"),
)

# a single line item a question asks for ("how much total current assets", "capital expenditure amount")
ITEMS: tuple[tuple[str, re.Pattern], ...] = tuple((c, re.compile(p, _I)) for c, p in (
    ("cfo", r"\b(?:cash (?:flows? )?(?:from|provided by) operati(?:ng|ons)(?: activities)?|operating cash flows?)\b"),
    ("capex", r"\b(?:capital expenditures?|capex|purchases? of property)\b"),
    ("current_assets", r"\btotal current assets\b"),
    ("current_liabilities", r"\btotal current liabilities\b"),
    ("total_assets", r"\btotal assets\b"),
    ("accounts_payable", r"\baccounts payable\b"),
    ("receivables", r"\baccounts receivables?\b"),
    ("inventory", r"\binventor(?:y|ies)\b"),
    ("dna", r"\bdepreciation and amortization\b|\bD&A\b"),
    ("cogs", r"\bcost of (?:goods sold|sales|revenues?)\b|\bCOGS\b"),
    ("gross_profit", r"\bgross profit\b"),
    ("operating_income", r"\boperating income\b|\bincome from operations\b|\boperating profit\b"),
    ("net_income", r"\bnet (?:income|earnings|profit)\b"),
    ("ppe", r"\bproperty(?:,)? plant and equipment\b|\bPP&E\b"),
    ("revenue", r"\b(?:total )?(?:net )?revenues?\b|\bnet sales\b"),
))

_FY = re.compile(r"\b(?:FY|fiscal(?:\s+year)?)\s?'?((?:19|20)\d{2})\b|\b((?:19|20)\d{2})\b", _I)
# a definition the question spells out ("ROA is defined as: FY2017 net income / (average total assets between FY2016
# and FY2017)") restates the metric: its years and "average" are the metric's own, not what the question combines
_DEFINITION = re.compile(r"[^.?]*\b(?:is|are) defined as\b.*?(?:\.(?=\s|$)|$)|\bdefine\b.*?(?:\.(?=\s|$)|$)", _I)
_QUARTER = re.compile(r"\b(?:first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter\b|\bQ[1-4]\b|"
                      r"\b[1-4]Q\b|\b(?:three|3)[- ]months?\b|\b(?:thirteen|13)[- ]weeks?\b", _I)
_SPAN = re.compile(r"\bFY\s?((?:19|20)\d{2})\s*(?:-|–|to|through)\s*FY\s?((?:19|20)\d{2})\b", _I)


@dataclass(frozen=True)
class Plan:
    metric: Metric
    years: tuple[int, ...]
    """The fiscal years the question names, ascending (empty: the latest the filing reports)."""
    combine: str
    """``value`` (one year), ``change`` (relative change from the first year to the last), ``difference``,
    ``cagr`` (compound annual growth rate), ``average`` (the mean over every year of the span)."""
    unit: str
    """``percent``, ``ratio`` or ``usd`` (an amount of money)."""
    scale: float
    """For ``usd``: the scale asked for (1e6 for "in USD millions"); 0 for the table's own."""
    digits: int
    quarter: bool = False
    """The question asks for a quarter's figure ("the fourth quarter of fiscal 2022", "Q3 2023"): a statement's
    quarter columns ("13 Weeks Ended", "Three Months Ended") are read before its whole-year ones."""


# a question that names a line item but asks which one, or why, asks for no value of it ("Which segment had the
# lowest net revenue?", "What drove the increase in inventories?")
_NOT_A_VALUE = re.compile(r"\bwhich\b(?! (?:is|are) defined)|^\s*why\b|\bwhat (?:drove|drives|caused|causes|explains?)\b|"
                          r"\bdriv(?:en|ers?)\b|\breasons?\b|\bexplain\b|\bdescribe\b", _I)


def plan(question: str) -> Plan | None:
    """What ``question`` asks to compute, or None when it names no metric or line item this module knows, or asks
    which one or why rather than how much."""
    q = " ".join(question.split())
    if _NOT_A_VALUE.search(_DEFINITION.sub(" ", q)):
        return None
    metric = next((m for m in METRICS if m.asked.search(q)), None)
    if metric is None:
        item = min(((m.start(), c) for c, p in ITEMS if (m := p.search(q))), default=None)
        if item is None:
            return None
        metric = Metric(item[1].replace("_", " "), re.compile(""), item[1], unit="usd")
    asked = _DEFINITION.sub(" ", q)
    years = sorted({int(a or b) for a, b in _FY.findall(asked)})
    if (span := _SPAN.search(asked)) is not None:
        years = list(range(int(span.group(1)), int(span.group(2)) + 1))
    combine = "value"
    if re.search(r"\bCAGR\b|compound annual growth", asked, _I) and len(years) >= 2:
        combine = "cagr"
    elif re.search(r"\baverage\b", asked, _I) and len(years) >= 2:
        combine = "average"
        years = list(range(years[0], years[-1] + 1))
    elif re.search(r"\b(?:change|growth|grow|increase|decrease|decline)\b", asked, _I) and len(years) >= 2:
        combine = "change" if re.search(r"%|percent|\brate\b|growth", asked, _I) else "difference"
    if combine == "value" and years:
        years = [years[-1]]
    usd = re.search(r"\b(?:in|of)\s+(?:usd|us\$|\$|dollars)\s*(thousands|millions|billions)?\b|"
                    r"\b(?:usd|\$)\s*(thousands|millions|billions)\b", q, _I)
    if (metric.unit == "percent" or combine in ("change", "cagr")
            or re.search(r"\bin (?:units of )?percent|\(?as a %|% of\b", q, _I)):
        unit, scale = "percent", 0.0
    elif usd or metric.unit == "usd":
        word = ((usd.group(1) or usd.group(2)) if usd else "") or ""
        unit, scale = "usd", {"thousands": 1e3, "millions": 1e6, "billions": 1e9}.get(word.lower(), 0.0)
    else:
        unit, scale = "ratio", 0.0
    m = re.search(r"\b(zero|one|two|three|\d) decimal", q, _I)
    if m:
        digits = int(m.group(1)) if m.group(1).isdigit() else ("zero", "one", "two", "three").index(m.group(1).lower())
    else:
        digits = 1 if unit == "percent" else 2
    return Plan(metric, tuple(years), combine, unit, scale, digits, quarter=bool(_QUARTER.search(asked)))


@dataclass(frozen=True)
class Computed:
    value: str
    """The answer as asked for ("0.66", "65.4%", "$5,818 million")."""
    calculation: Calculation
    expression: str
    """Over cited numbers, as ``graphs.calc.evaluate`` reads it: ``[1] 1,469,502 / [2] 2,213,556``."""
    rows: tuple[Row, ...]
    """The rows cited, ``[n]`` = ``rows[n - 1]``."""


_TERM = re.compile(r"avg\((\w+)\)|(\b[a-z_]+\b)(?:@(-\d+))?")


def _expand(formula: str, year: int) -> list[tuple[str, int] | str]:
    """The formula at ``year`` as pieces: operator text, or (concept, year) operands."""
    out: list[tuple[str, int] | str] = []
    at = 0
    for m in _TERM.finditer(formula):
        out.append(formula[at:m.start()])
        if m.group(1):
            out += ["((", (m.group(1), year), " + ", (m.group(1), year - 1), ") / 2)"]
        else:
            out.append((m.group(2), year + int(m.group(3) or 0)))
        at = m.end()
    out.append(formula[at:])
    return out


def _combined(p: Plan, latest: int) -> list[tuple[str, int] | str]:
    years = p.years or (latest,)
    single = p.metric.formula in CONCEPTS  # a line item: no brackets, which a filing would read as a negative
    one = {y: _expand(p.metric.formula, y) if single else ["(", *_expand(p.metric.formula, y), ")"] for y in years}
    if p.combine == "value":
        return one[years[-1]]
    a, b = years[0], years[-1]
    if p.combine in ("change", "difference"):
        body = ["(", *one[b], " - ", *one[a], ")"]
        return [*body, " / ", *one[a]] if p.combine == "change" else body
    if p.combine == "cagr":
        return ["(", *one[b], " / ", *one[a], f") ** (1 / {b - a}) - 1"]
    parts: list[tuple[str, int] | str] = ["("]
    for i, y in enumerate(years):
        parts += ([" + "] if i else []) + one[y]
    return [*parts, f") / {len(years)}"]


def compute(p: Plan, rows: Sequence[Row]) -> Computed | None:
    """The planned metric computed from ``rows``; None when an operand's row or year column is not found."""
    latest = max((c.year for r in rows if r.statement for c in r.cells if c.year), default=None)
    if latest is None:
        return None
    pieces = _combined(p, latest)
    cited: list[Row] = []
    text = []
    for piece in pieces:
        if isinstance(piece, str):
            text.append(piece)
            continue
        name, year = piece
        concept = CONCEPTS.get(name)
        row = find(rows, concept, year, quarter=p.quarter) if concept else None
        if row is None:
            return None
        if row not in cited:
            cited.append(row)
        cell = row.cell(year)
        written = cell.text.replace("$", "").strip()
        if concept.outflow or name == "cogs":  # an amount spent, however the statement signs it
            written = written.strip("()−–- ")
        text.append(f"[{cited.index(row) + 1}] {written}")
    expression = " ".join("".join(text).split())
    try:
        calc = evaluate(expression, {i + 1: r.scale for i, r in enumerate(cited)})
    except CalcError:
        return None
    return Computed(shown(calc.value, p), calc, expression, tuple(cited))


def shown(value: float, p: Plan) -> str:
    """The computed value in the unit and rounding the question asks for."""
    if p.unit == "percent":
        return f"{value * 100:.{p.digits}f}%"
    if p.unit == "usd":
        scale = p.scale or 1e6
        word = {1e3: " thousand", 1e6: " million", 1e9: " billion"}.get(scale, "")
        sign = "-" if value < 0 else ""
        return f"{sign}${abs(value) / scale:,.{p.digits}f}{word}"
    return f"{value:.{p.digits}f}"
