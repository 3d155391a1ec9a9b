"""The harness's own check of a computed claim ("0.66, computed as (1,469,502 / 2,213,556)"), independent of the
system's calculator: a text judge cannot verify arithmetic, so the harness checks it.

A computed claim is supported when every operand is a number written in the text the system had and evaluating the
shown calculation gives the stated result, up to the scale the result is stated in (a calculation over a table in
thousands stated in millions: ``$381.60 million, computed as 381,603``) or as a percentage. Only numbers, + − × ÷ ^
and parentheses are evaluated (Python's ``ast``, no ``eval``).

>>> check_computed("0.66", "(1,469,502 / 2,213,556)", ["Net cash 1,469,502", "Total current liabilities 2,213,556"])
(True, [])
>>> check_computed("0.70", "(1,469,502 / 2,213,556)", ["1,469,502 2,213,556"])[1]
['recomputed 0.664, not 0.70']
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Sequence

# the result may write thousands separators ("$5,818.00 million"); a comma before a space ends it
COMPUTED = re.compile(r"(?P<result>(?:[^\s,;]|,(?=\d))(?:[^,;]|,(?=\d))*?),\s*computed as\s+(?P<expression>[^\[]+?)"
                      r"\s*(?P<marks>(?:\[\d+\])+)")
_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (abs(b) > 1 or a < 0):
            raise ValueError("only roots are evaluated")
        return _OPS[type(node.op)](a, b)
    raise ValueError("not arithmetic")


def _stated(result: str) -> float | None:
    m = re.search(r"-?\$?\s*(\d[\d,]*(?:\.\d+)?)", result)
    if not m:
        return None
    v = float(m.group(1).replace(",", ""))
    return -v if result.strip().startswith("-") else v


def check_computed(result: str, expression: str, sources: Sequence[str]) -> tuple[bool, list[str]]:
    """(supported, reasons) for the claim "RESULT, computed as EXPRESSION" against the texts ``sources``."""
    reasons = []
    written = {n.replace(",", "") for s in sources for n in _NUMBER.findall(s)}
    for n in _NUMBER.findall(expression):
        plain = n.replace(",", "")
        if "," in n or len(plain.split(".")[0]) > 3 or "." in plain and len(plain) > 4:  # an operand, not a constant
            if plain not in written:
                reasons.append(f"{n} is not written in the sources")
    source = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace("−", "-")
    source = _NUMBER.sub(lambda m: m.group(0).replace(",", ""), source)
    stated = _stated(result)
    try:
        value = _value(ast.parse(source.strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError):
        return False, [*reasons, f"cannot evaluate {expression!r}"]
    if stated is None or not math.isfinite(value):
        return False, [*reasons, f"no stated result in {result!r}"]
    digits = len(result.split(".")[1].rstrip("%").split()[0]) if "." in result else 0
    tolerance = max(0.5 * 10 ** -digits, 1e-9)
    candidates = [value * 100] if "%" in result else [value * 10 ** (3 * k) for k in range(-3, 4)]
    if not any(abs(abs(c) - abs(stated)) <= tolerance * 1.0001 for c in candidates):
        reasons.append(f"recomputed {value:.3g}, not {result.strip()}")
    return not reasons, reasons
