"""The rows of a filing's financial tables, each value tied to its fiscal year, scale and exact offsets.

A computed answer ("What is the FY2017 operating cash flow ratio?") needs the right numbers before any arithmetic:
the row "Total current liabilities" of the balance sheet, in the column of fiscal 2017, in the table's scale
("In thousands"). Filings extracted to text write a table one cell per line — the row's label (often with dot
leaders), then its values, with "$" on lines of their own — under a header of column years::

    CONSOLIDATED BALANCE SHEETS
    (In thousands, except par value)
    November 27,
    2015
    November 28,
    2014
    ...
    Total current liabilities...........
    2,213,556
    2,494,435

``table_rows`` reads every such row of a document (a label and the values that follow it, or a label with its
values on the same line), the statement it belongs to (balance sheet, income statement, cash flow statement: from
the nearest title above it, forgotten at the next paragraph of prose), the declared scale and the column years of
the header above it. ``find`` picks the row for a concept and a fiscal year: a row of the statement the concept
belongs to first, then the earliest in the document.

>>> rows = table_rows("CONSOLIDATED BALANCE SHEETS\\n(In millions)\\n2021\\n2020\\nTotal assets\\n$\\n50,873\\n$\\n50,710\\n")
>>> r = rows[0]
>>> r.label, r.statement, r.scale, [(c.year, c.text) for c in r.cells]
('Total assets', 'balance', 1000000.0, [(2021, '50,873'), (2020, '50,710')])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from graphs.calc import SCALES, TABLE_SCALE, parse_quantity

_I = re.IGNORECASE
# one value cell: 1,234 / (1,234) / -12.5 / 12.5% / $ 1,234 / — (nil)
_CELL = re.compile(r"\$?\s*\(?\s*[-−–]?\s*\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*\)?\s*%?|[-−–—]+", _I)
_YEAR = re.compile(r"(?:fy\s?|fiscal\s+)?((?:19|20)\d{2})", _I)
_HEADER_WORDS = re.compile(r"(?:january|february|march|april|may|june|july|august|september|october|november|"
                           r"december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|fiscal|year|years|ended|"
                           r"ending|as|of|at|and|weeks?|months?|quarter|three|six|nine|twelve|\d{1,2},?|52|53|"
                           r"\d{1,2}-weeks?|period|for|the)\.?,?", _I)
_TITLES = (("balance", re.compile(r"balance sheets?|statements? of (?:consolidated )?financial (?:position|condition)", _I)),
           ("cashflow", re.compile(r"statements? of (?:consolidated )?cash flows?|cash flows? statements?", _I)),
           ("income", re.compile(r"statements? of (?:consolidated )?(?:operations|income|earnings)|income statements?|"
                                 r"statements? of comprehensive (?:income|loss)", _I)))
_PROSE_WORDS = 25
_LEADING_YEAR = re.compile(r"((?:19|20)\d\d)\s+(?=[A-Z])")
_QUARTER = re.compile(r"\b(?:three|six|nine|3|6|9) months\b|\b1[2-4]\s*weeks\b|\b2[5-7]\s*weeks\b|\b39\s*weeks\b|"
                      r"\bquarters? ended\b|\bfourth quarter\b", _I)
_WHOLE_YEAR = re.compile(r"\b(?:twelve|12) months\b|\b5[23]\s*weeks\b|\byears? ended\b|\bfiscal years?\b", _I)


@dataclass(frozen=True)
class Cell:
    text: str
    """As written ("2,213,556", "(311)", "—")."""
    start: int
    end: int
    year: int | None
    """The fiscal year of its column, when the header above the row names one year per value."""

    @property
    def number(self) -> float:
        """The written value with its sign ("(311)" → -311, "—" → 0), before the table's scale."""
        return parse_quantity(self.text).number if re.search(r"\d", self.text) else 0.0


@dataclass(frozen=True)
class Row:
    label: str
    """The row's label without dot leaders, "$" or footnote marks."""
    start: int
    """Where the label starts in the document text; the row ends at its last value."""
    end: int
    cells: tuple[Cell, ...]
    statement: str | None
    """``balance``, ``income``, ``cashflow`` or None (a table outside the three statements, or unknown)."""
    scale: float
    """The table's declared scale (1e3 for "(In thousands)"), 1 when none was declared."""
    period: str = ""
    """``quarter`` when its header says the columns are quarters or part of a year ("Three Months Ended", "13 Weeks
    Ended"), ``year`` for a whole year ("52 Weeks Ended", "Years Ended"), "" when it does not say."""

    def cell(self, year: int) -> Cell | None:
        return next((c for c in self.cells if c.year == year), None)


def _lines(text: str):
    """(offset, line) of every line; a form feed (a PDF's page break) ends a line as a newline does."""
    for m in re.finditer(r"[^\n\f]*", text):
        yield m.start(), m.group(0)


def _year_line(s: str) -> list[int] | None:
    """The years a header line names ("2015", "November 27, 2015", "Fiscal 2021 2020"), None if it is not one."""
    years = [int(m.group(1)) for m in _YEAR.finditer(s)]
    rest = _HEADER_WORDS.sub(" ", _YEAR.sub(" ", s))
    if not years or re.sub(r"[\s,.:()\-—–]", "", rest) or re.search(r"\d,\d{3}", s):
        return None
    return years


def _stripped(m: re.Match) -> tuple[int, int]:
    """A cell's span without the spaces its pattern took in on either side."""
    text = m.group(0)
    return m.start() + len(text) - len(text.lstrip()), m.end() - len(text) + len(text.rstrip())


def _cells(s: str) -> list[tuple[int, int]] | None:
    """Offsets of the value cells a line holds when the whole line is values (and "$"), else None."""
    if not s.strip() or not re.search(r"[\d—–−-]", s):
        return None
    out, at = [], 0
    for m in _CELL.finditer(s):
        if s[at:m.start()].strip(" $"):
            return None
        out.append(_stripped(m))
        at = m.end()
    if s[at:].strip(" $"):
        return None
    return out or None


def _trailing(line: str) -> int | None:
    """Where the values at the end of a line start ("Total assets  50,873  50,710"), None if it ends in none."""
    cells = list(_CELL.finditer(line))
    at, start = len(line.rstrip()), None
    for m in reversed(cells):
        cell = m.group(0).strip(" $\t")
        if line[m.end():at].strip(" $\t") or not cell or cell.endswith(")") != cell.startswith("("):
            break  # text between values, or a bracket the value does not open ("… December 29, 2018)")
        begin = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
        if begin > 0 and not line[begin - 1].isspace() and line[begin] not in "$(":
            break  # a number inside a word or a label ("Note 7")
        start, at = begin, begin
    return start


def _label(s: str) -> str:
    s = re.sub(r"\.{2,}.*$", "", s)  # dot leaders and whatever follows them ("$")
    s = re.sub(r"\s*\(\d\)\s*|\s*\$\s*$", " ", s)
    return " ".join(s.replace("\u00a0", " ").split()).strip(" :")


def _is_title(s: str, m: re.Match) -> bool:
    """A statement's title line: the title, perhaps after the company's name in capitals or "Consolidated", and
    before at most a scale or a date ("(In thousands)", "— December 31, 2018 and 2017"), not a sentence naming it."""
    before, after = s[:m.start()], s[m.end():]
    before_ok = not before.strip() or before.isupper() or re.fullmatch(r"\s*(?:the\s+)?(?:condensed\s+)?"
                                                                      r"(?:consolidated\s+)?(?:condensed\s+)?", before, _I)
    return bool(before_ok) and len(re.findall(r"[A-Za-z]+", after)) <= 6 and not re.search(r"\b(?:see|refer)\b", s, _I)


def _column_years(header: Sequence[int], cells: Sequence[tuple[int, int, str]]) -> list[int | None]:
    """The fiscal year of each value: the header's years in order when they are as many as the values, or as many
    as the values that are not percentages (a share-of-sales column beside each year's amount)."""
    if len(header) == len(cells):
        return list(header)
    years: list[int | None] = [None] * len(cells)
    amounts = [i for i, c in enumerate(cells) if not c[2].endswith("%")]
    if len(amounts) == len(header):
        for i, y in zip(amounts, header):
            years[i] = y
    return years


class _Tables:
    """What the lines read so far say about the table under way: its statement, scale, period and column years."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.statement: str | None = None
        self.scale = 1.0
        self.period = ""
        self.header: list[int] = []
        self.pending: list[int] = []
        """Years of header lines since the last row: the next row's header."""
        self.label: tuple[int, str] | None = None
        self.cells: list[tuple[int, int, str]] = []

    def close(self) -> None:
        """The row under way (a label and its values) is complete."""
        if self.label is not None and self.cells:
            if self.pending:
                self.header, self.pending = self.pending, []
            years = _column_years(self.header, self.cells)
            self.rows.append(Row(label=_label(self.label[1]), start=self.label[0], end=self.cells[-1][1],
                                 statement=self.statement, scale=self.scale, period=self.period,
                                 cells=tuple(Cell(t, a, b, y) for (a, b, t), y in zip(self.cells, years))))
        self.label, self.cells = None, []

    def context(self, s: str) -> bool:
        """Reads a line that is no value line for what it says of the tables (a paragraph ends them; a title, a scale
        or a period starts or qualifies one); False for a paragraph, which holds no row."""
        words = len(s.split())
        if words >= _PROSE_WORDS:
            self.statement, self.header, self.pending, self.scale, self.period = None, [], [], 1.0, ""
            return False
        if words <= 10 and (_QUARTER.search(s) or _WHOLE_YEAR.search(s)):
            self.period = "quarter" if _QUARTER.search(s) else "year"
        if words <= 14 and (m := TABLE_SCALE.search(s)):
            self.scale = SCALES[(m.group("word") or m.group("word2") or m.group("word3")).lower()]
        if words <= 14 and not re.search(r"\d,\d{3}", s):
            for kind, title in _TITLES:
                if (m := title.search(s)) and _is_title(s, m):
                    self.statement, self.header, self.pending, self.period = kind, [], [], ""
                    break
        return True


def table_rows(text: str) -> list[Row]:
    """Every row of the document's tables, in document order (see the module's docstring)."""
    t = _Tables()
    for at, line in _lines(text):
        s = line.strip()
        if not s or s == "$":
            continue
        if (years := _year_line(s)) is not None and not t.cells:
            t.pending = [*t.pending, *years] if t.label is None or _year_line(t.label[1]) is None else years
            t.label = None
            continue
        if t.pending and (m := _LEADING_YEAR.match(s)) and not t.cells and not re.search(r"\d", s[m.end():]):
            t.pending = [*t.pending, int(m.group(1))]  # a header's last year glued to the heading under it
            s = s[m.end():]                              # ("2018 ASSETS Current assets:", read from a PDF)
            line = line[:len(line) - len(line.lstrip())] + " " * m.end() + line.lstrip()[m.end():]
        if (found := _cells(line)) is not None and t.label is not None:
            t.cells.extend((at + a, at + b, line[a:b]) for a, b in found)
            continue
        t.close()
        if not t.context(s) or not re.search(r"[A-Za-z]{2}", s):
            continue
        indent = at + len(line) - len(line.lstrip())
        if (end := _trailing(line)) is not None and re.search(r"[A-Za-z]{2}", line[:end]):
            tail = line[end:].split()
            if len(tail) >= 2 and all(re.fullmatch(r"(?:19|20)\d\d", w) for w in tail) and len(set(tail)) == len(tail):
                t.pending = [int(w) for w in tail]  # a header with its column years ("(Dollars in millions)  2019  2018")
                continue
            t.label = (indent, line[:end])  # a row on one line: its label, then its values
            t.cells = [(at + a, at + b, line[a:b]) for c in _CELL.finditer(line, end) if c.group(0).strip(" $")
                       for a, b in [_stripped(c)]]
            t.close()
            continue
        t.label = (indent, s)
    t.close()
    return t.rows


# -- concepts ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Concept:
    name: str
    label: re.Pattern
    """Matches the start of a row's label (lower-cased)."""
    statement: str
    """The statement the concept's row belongs to."""
    outflow: bool = False
    """Written as a negative in a cash flow statement ("(311)") but meant as an amount spent."""


def _c(name: str, pattern: str, statement: str, outflow: bool = False) -> Concept:
    return Concept(name, re.compile(pattern, _I), statement, outflow)


CONCEPTS: dict[str, Concept] = {c.name: c for c in (
    _c("revenue", r"^(?:total\s+)?(?:net\s+)?(?:operating\s+)?(?:revenues?|sales)(?:,?\s*net)?$|^total net (?:revenues?|sales)$|"
                  r"^net sales and (?:operating )?revenues?$|^total revenues? net of interest expense", "income"),
    _c("cogs", r"^(?:total\s+)?cost of (?:goods sold|sales|revenues?|products sold|merchandise sold)\b(?!.*\bper\b)", "income"),
    _c("gross_profit", r"^gross (?:profit|margin)$", "income"),
    _c("operating_income", r"^(?:total\s+)?(?:operating (?:income|profit)|income from operations|"
                           r"(?:operating )?income \(loss\) from operations|operating income \(loss\)|"
                           r"operating \(loss\) income|earnings from operations)$", "income"),
    _c("net_income", r"^net (?:income|earnings)(?: \(loss\))?(?: attributable to (?!non).*)?$|^net \(loss\) income$", "income"),
    _c("current_assets", r"^total current assets$", "balance"),
    _c("current_liabilities", r"^total current liabilities$", "balance"),
    _c("total_assets", r"^total assets$", "balance"),
    _c("inventory", r"^(?:merchandise\s+)?inventor(?:y|ies)(?:,\s*net)?$", "balance"),
    _c("receivables", r"^(?:trade\s+|accounts\s+|notes\s+and\s+accounts\s+|trade\s+accounts\s+)?receivables?\b|"
                      r"^accounts and notes receivable|^receivables?, net", "balance"),
    _c("accounts_payable", r"^(?:trade\s+)?accounts payable$|^trade payables$|^accounts payable\b", "balance"),
    _c("ppe", r"^(?:total\s+)?property(?:,)? (?:plant )?(?:and|&) equipment(?:, net| net)?$", "balance"),
    _c("cfo", r"^net cash (?:provided by|from|generated (?:by|from)|provided by \(used (?:in|for)\)|"
              r"\(used in\) provided by|provided from) operati(?:ng|ons)(?: activities)?$|"
              r"^cash (?:provided by|generated by|from) operati(?:ng|ons)(?: activities)?$", "cashflow"),
    _c("capex", r"^(?:purchases? of|payments for|additions to|acquisitions? of|investments? in) "
                r"(?:property|premises)(?:,)? (?:plant(?:,)? )?(?:and|&) equipment|^capital expenditures|"
                r"^capital spending|^expenditures for property", "cashflow", outflow=True),
    _c("dna", r"^depreciation(?:,\s*depletion)? and amortization(?: expense)?$|^depreciation and amortization\b", "cashflow"),
)}


def find(rows: Sequence[Row], concept: Concept, year: int, quarter: bool = False) -> Row | None:
    """The row that holds ``concept``'s value for fiscal ``year``: of the rows whose label matches and that have a
    column for ``year``, one in the concept's own statement first, then one whose columns are whole years (not a
    quarter's) — a quarter's when ``quarter`` — then the earliest."""
    found = [r for r in rows if concept.label.search(r.label.lower()) and r.cell(year) is not None]
    if not found:
        return None
    return min(found, key=lambda r: (r.statement != concept.statement, r.statement is None,
                                     r.period != "quarter" if quarter else r.period == "quarter"))
