"""Computed numbers: arithmetic the writer states over numbers it cites, evaluated by code and checked.

A numeric answer is not trusted to a small model's arithmetic. The writer states the calculation as an
expression whose operands are cited numbers — ``[3] 1,469,502 / [5] 2,213,556`` — and this module parses it,
reads each operand with its sign, unit and scale (``(311)`` is −311, ``12.5%`` is 0.125, ``$3.2 billion`` is
3.2e9, a bare number in a table headed "(In thousands)" is thousands), evaluates it without ``eval`` (only
numbers, + − × ÷ and parentheses), and checks that every operand is a number the cited evidence holds.
The answer shows the calculation.

>>> calc = evaluate("[1] 1,469,502 / [2] 2,213,556", {1: 1e3, 2: 1e3})
>>> round(calc.value, 2), calc.shown()
(0.66, '[1] 1,469,502 / [2] 2,213,556 = 0.66')
>>> check_operands(calc, {1: "Net cash provided by operating activities ... 1,469,502", 2: "..."})
['[2] 2,213,556 is not a number of evidence [2]']
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

SCALES = {"thousand": 1e3, "thousands": 1e3, "k": 1e3, "million": 1e6, "millions": 1e6, "mn": 1e6, "m": 1e6,
          "mm": 1e6, "billion": 1e9, "billions": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12}
MINUS = "−–—"

# a number as filings write it: optional sign or parentheses, optional currency, digits with thousands
# separators, decimals, then an optional percent sign or scale word
_NUMBER = (r"(?P<open>\()?\s*(?P<sign>[-" + MINUS + r"])?\s*(?P<cur>\$|USD\s?|US\$)?\s*"
           r"(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)\s*(?P<close>\))?"
           r"(?:\s*(?P<pct>%|percent\b)|\s*(?P<scale>thousands?|millions?|billions?|trillion|bn|mn|mm|[kmb])\b)?")
NUMBER = re.compile(_NUMBER, re.IGNORECASE)
OPERAND = re.compile(r"\[(?P<n>\d+)\]\s*" + _NUMBER, re.IGNORECASE)
TABLE_SCALE = re.compile(r"(?:\(|\$|\bdollars|\bamounts|\bexpressed)\s*(?:are\s+)?in\s+(?P<word>thousands|millions|billions)\b"
                         r"|\bin\s+(?P<word2>thousands|millions|billions)(?:\s+of\s+(?:u\.?s\.?\s+)?dollars)?\s*(?:[,)\n]|$)"
                         r"|^\s*\(\s*(?P<word3>thousands|millions|billions)\b(?:\s+of\s+(?:u\.?s\.?\s+)?dollars)?\s*[,)]",
                         re.IGNORECASE | re.MULTILINE)


class CalcError(ValueError):
    """The expression cannot be read or evaluated (unknown token, division by zero, no cited operand)."""


@dataclass(frozen=True)
class Quantity:
    number: float
    """As written, sign applied, before scale (``(1,204.5)`` → -1204.5; ``12.5%`` → 12.5)."""
    scale: float
    """1, 1e3, 1e6, 1e9: from a scale word after the number, else the table's ("In millions")."""
    unit: str | None
    """``$``, ``%`` or None."""
    text: str

    @property
    def value(self) -> float:
        """In base units: dollars, or a fraction for a percentage."""
        return self.number / 100 if self.unit == "%" else self.number * self.scale


@dataclass(frozen=True)
class Operand:
    n: int
    """The evidence number the writer cited for it."""
    quantity: Quantity


@dataclass(frozen=True)
class Calculation:
    expression: str
    """As evaluated: the writer's expression with each operand replaced by its written number."""
    operands: tuple[Operand, ...]
    value: float
    """In base units (dollars; a ratio as a fraction)."""
    unit: str | None
    scale: float
    """The scale the result is shown in: the operands' largest for a sum or an amount of money, else 1."""

    def shown(self, digits: int = 2) -> str:
        return f"{self.expression} = {self.result(digits)}"

    def result(self, digits: int = 2) -> str:
        return format_value(self.value, self.unit, self.scale, digits)

    def plain(self) -> str:
        """The expression without its evidence numbers (an answer renumbers its citations)."""
        return re.sub(r"\[\d+\]\s*", "", self.expression)


def scale_of(context: str) -> float:
    """The scale a table or section declares ("(In thousands, except par value)" → 1e3), else 1; of several, the
    last (the one nearest the numbers that follow ``context``)."""
    found = list(TABLE_SCALE.finditer(context))
    if not found:
        return 1.0
    return SCALES[(found[-1].group("word") or found[-1].group("word2") or found[-1].group("word3")).lower()]


def parse_quantity(text: str, default_scale: float = 1.0) -> Quantity:
    m = NUMBER.fullmatch(text.strip())
    if not m:
        raise CalcError(f"{text!r} is not a number")
    return _quantity(m, default_scale)


def _quantity(m: re.Match, default_scale: float) -> Quantity:
    number = float(m.group("digits").replace(",", ""))
    negative = bool(m.group("sign")) or (bool(m.group("open")) and bool(m.group("close")))
    unit = "%" if m.group("pct") else ("$" if m.group("cur") else None)
    word = (m.group("scale") or "").lower()
    scale = SCALES[word] if word else default_scale
    text = re.sub(r"^\[\d+\]\s*", "", m.group(0)).strip()
    return Quantity(-number if negative else number, 1.0 if unit == "%" else scale, unit, text)


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def evaluate(expression: str, scales: Mapping[int, float] | None = None) -> Calculation:
    """Evaluates the writer's ``expression``: cited operands (``[n] number``) and plain constants (``× 100``)
    joined by + − × ÷ and parentheses. ``scales`` gives each evidence number's table scale (``scale_of``) for
    operands written without a scale word."""
    scales = scales or {}
    expression = expression.split("=")[0]  # the writer's own result, if it wrote one, is recomputed
    operands: list[Operand] = []
    parts: list[str] = []
    shown: list[str] = []
    at = 0
    for m in OPERAND.finditer(expression):
        parts.append(_plain(expression[at:m.start()]))
        shown.append(expression[at:m.start()])
        q = _quantity(m, scales.get(int(m.group("n")), 1.0))
        # a lone bracket ("[1] (5 + [2] 6)") groups: it is no accounting minus (_quantity read it as none) and stays
        before = "(" if m.group("open") and not m.group("close") else ""
        after = ")" if m.group("close") and not m.group("open") else ""
        if before or after:
            q = replace(q, text=q.text.strip("() "))
        operands.append(Operand(int(m.group("n")), q))
        parts.append(f"{before}_v{len(operands) - 1}{after}")
        shown.append(f"{before}[{m.group('n')}] {q.text}{after}")
        at = m.end()
    parts.append(_plain(expression[at:]))
    shown.append(expression[at:])
    if not operands:
        raise CalcError(f"no cited number in {expression!r}: write operands as [n] NUMBER")
    source = "".join(parts)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise CalcError(f"cannot read the calculation {expression!r}") from None
    values = {f"_v{i}": (op.quantity.value, op.quantity.unit) for i, op in enumerate(operands)}
    value, unit = _eval(tree.body, values, expression)
    if not math.isfinite(value):
        raise CalcError(f"{expression!r} has no finite value")
    scale_set = {op.quantity.scale for op in operands if op.quantity.unit != "%"}
    common = max(scale_set, default=1.0)
    scale = common if unit == "$" or (unit is None and _additive(tree.body)) else 1.0
    text = " ".join(" ".join(p.strip() for p in shown).replace("**", "^").replace("*", "×").split())
    text = text.replace("( ", "(").replace(" )", ")")
    return Calculation(text, tuple(operands), value, unit, scale)


def _plain(text: str) -> str:
    """The operators and constants between operands, in Python's spelling; anything else is an error."""
    out = text
    for a, b in (("×", "*"), ("x", "*"), ("X", "*"), ("÷", "/"), *((m, "-") for m in MINUS), (",", "")):
        out = out.replace(a, b)
    if not re.fullmatch(r"[\s\d.+\-*/()]*", out):
        raise CalcError(f"the calculation may use only cited numbers, constants, + − × ÷ and parentheses: {text.strip()!r}")
    return out


def _additive(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, (ast.Add, ast.Sub)) and _additive(node.left) and _additive(node.right)
    if isinstance(node, ast.UnaryOp):
        return _additive(node.operand)
    return True


def _eval(node: ast.AST, values: dict[str, tuple[float, str | None]], expression: str) -> tuple[float, str | None]:
    """Numbers with a unit: + and − keep a shared unit; $ ÷ $ is a ratio; a constant keeps the other's unit."""
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value), None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v, u = _eval(node.operand, values, expression)
        return (-v if isinstance(node.op, ast.USub) else v), u
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        (a, ua), (b, ub) = _eval(node.left, values, expression), _eval(node.right, values, expression)
        if isinstance(node.op, ast.Div) and b == 0:
            raise CalcError(f"division by zero in {expression!r}")
        if isinstance(node.op, ast.Pow) and (abs(b) > 1 or a < 0):  # a growth rate's root, nothing bigger
            raise CalcError(f"cannot evaluate {expression!r}: a power must be a root (exponent between -1 and 1)")
        v = _OPS[type(node.op)](a, b)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return v, ua or ub
        if isinstance(node.op, ast.Div) and ua == ub:
            return v, None
        return v, ua if ua == "$" or ub is None else ub if ub == "$" or ua is None else None
    raise CalcError(f"cannot evaluate {expression!r}")


def format_value(value: float, unit: str | None, scale: float = 1.0, digits: int = 2) -> str:
    """``1234.5, "$", 1e6`` → "$1,234.50 million"; ``0.125, "%"`` → "12.50%"; ratios with ``digits`` decimals."""
    if unit == "%":
        return f"{value * 100:,.{digits}f}%"
    word = {1e3: " thousand", 1e6: " million", 1e9: " billion"}.get(scale, "")
    number = value / scale if word else value
    sign = "-" if number < 0 else ""
    body = f"{abs(number):,.{digits}f}".rstrip("0").rstrip(".") if word or unit == "$" else f"{abs(number):,.{digits}f}"
    return f"{sign}{'$' if unit == '$' else ''}{body}{word}"


def numbers_in(text: str) -> list[float]:
    """Every number of ``text`` as written (sign and parentheses applied, scale and percent not)."""
    return [_quantity(m, 1.0).number for m in NUMBER.finditer(text)]


def check_operands(calc: Calculation, evidence: Mapping[int, str]) -> list[str]:
    """Problems with the operands: each must be a number its cited evidence holds (by magnitude: a table
    writes an outflow as ``(311)`` where the writer may subtract 311). Empty when every operand checks."""
    problems = []
    for op in calc.operands:
        text = evidence.get(op.n)
        if text is None:
            problems.append(f"[{op.n}] cites no evidence")
            continue
        held = {round(abs(x), 6) for x in numbers_in(text)}
        if round(abs(op.quantity.number), 6) not in held:
            problems.append(f"[{op.n}] {op.quantity.text} is not a number of evidence [{op.n}]")
    return problems
