"""Per-item metrics (small functions over plain inputs returning a float) and their aggregation.

Every per-item metric returns a float in [0, 1], or ``None`` when it is not defined for the item
(e.g. answer F1 on a question whose gold answer is "not in the document"); ``None`` items are left
out of that metric's mean. Aggregation (``mean_ci``, ``ratio_ci``) is separate: means with seeded
percentile-bootstrap 95% confidence intervals over items.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

Span = tuple[int, int]
BOOTSTRAP = 1000
BOOTSTRAP_SEED = 7

HIGHER_IS_BETTER = {
    "hallucination_rate": False, "latency_s": False,
}


# -- text normalisation ----------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_CITE = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")


def normalize(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces (citations dropped)."""
    text = _CITE.sub(" ", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between an answer and a gold answer."""
    p, g = normalize(prediction).split(), normalize(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


# -- spans -----------------------------------------------------------------------------------------
def merge(spans: Iterable[Span]) -> list[Span]:
    out: list[list[int]] = []
    for s, e in sorted(spans):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def covered(spans: Iterable[Span], by: Iterable[Span]) -> int:
    """Characters of ``spans`` that ``by`` covers."""
    a, b = merge(spans), merge(by)
    total = 0
    for s, e in a:
        for t, u in b:
            if u > s and t < e:
                total += min(e, u) - max(s, t)
    return total


def length(spans: Iterable[Span]) -> int:
    return sum(e - s for s, e in merge(spans))


def overlaps(a: Span, spans: Iterable[Span]) -> bool:
    return any(a[0] < e and s < a[1] for s, e in spans)


def span_f1(predicted: Sequence[Span], gold: Sequence[Span]) -> float:
    """Character-overlap F1 of predicted spans against gold spans (same document)."""
    inter = covered(gold, predicted)
    if not inter:
        return 0.0
    p, r = inter / length(predicted), inter / length(gold)
    return 2 * p * r / (p + r)


def coverage(gold: Sequence[Span], retrieved: Sequence[Span]) -> float | None:
    """Share of the gold evidence characters inside the retrieved text (None without gold)."""
    n = length(gold)
    return covered(gold, retrieved) / n if n else None


def hit(gold: Sequence[Span], retrieved: Sequence[Span]) -> float | None:
    """1.0 when any retrieved span touches any gold span (section / chunk recall@k), None without gold."""
    if not gold:
        return None
    return float(any(overlaps(r, gold) for r in retrieved))


def citation_precision(citations: Sequence[Span], gold: Sequence[Span]) -> float | None:
    """Share of the answer's citations that touch gold evidence (None without citations or gold)."""
    if not citations or not gold:
        return None
    return sum(overlaps(c, gold) for c in citations) / len(citations)


def citation_recall(citations: Sequence[Span], gold: Sequence[Span]) -> float | None:
    """Share of gold evidence spans that some citation touches (None without gold)."""
    if not gold:
        return None
    return sum(overlaps(g, citations) for g in gold) / len(gold)


# -- numbers (FinanceBench) -------------------------------------------------------------------------
_NUM = re.compile(r"(?<![\w.])[-(]?\$?\d[\d,]*(?:\.\d+)?\)?\s*(?:%|percent|billion|million|thousand|bn|mn|m|b|k)?\b",
                  re.IGNORECASE)
_SCALE = {"billion": 1e9, "bn": 1e9, "b": 1e9, "million": 1e6, "mn": 1e6, "m": 1e6, "thousand": 1e3, "k": 1e3}


def numbers(text: str, scaled: bool = True) -> list[float]:
    """Numbers written in ``text`` (``$1,577 million`` → 1577000000.0, ``(12)`` → -12, ``65.4%`` → 65.4); with
    ``scaled=False`` as written, before their scale word (``$4.62 billion`` → 4.62)."""
    out = []
    for m in _NUM.finditer(_CITE.sub(" ", text)):
        tok = m.group(0).strip().lower()
        unit = re.search(r"(%|percent|billion|million|thousand|bn|mn|m|b|k)$", tok)
        digits = re.search(r"\d[\d,]*(?:\.\d+)?", tok).group(0).replace(",", "")
        try:
            v = float(digits)
        except ValueError:
            continue
        if tok.startswith(("-", "(")) and (tok.endswith(")") or tok.startswith("-")):
            v = -v
        if scaled and unit and unit.group(1) in _SCALE:
            v *= _SCALE[unit.group(1)]
        out.append(v)
    return out


def _close(a: float, b: float, rel_tol: float) -> bool:
    if b == 0:
        return abs(a) < 1e-9
    return abs(a - b) <= rel_tol * abs(b)


def _significant(x: float) -> int:
    # the mantissa's digits: 4,600,000 has two (a "%g" rendering, "4.6e+06", would count the exponent's)
    return len(f"{abs(x):.5e}".split("e")[0].replace(".", "").rstrip("0")) or 1


def _is_year(x: float) -> bool:
    return x.is_integer() and 1900 <= x <= 2100


def numeric_match(prediction: str, gold: str, rel_tol: float = 0.01) -> float | None:
    """1.0 when a number in the answer equals a number of the gold answer within ``rel_tol`` (relative);
    None when the gold answer has no number other than years (it is not a numeric answer).

    Signs are ignored (filings write losses as ``(12)``). A different scale (thousands / millions /
    billions) is accepted only between numbers with at least three significant digits (``$1,577
    million`` = ``1,577,000,000``), so ``0.66`` does not match ``$660``; a gold percentage also
    matches the same fraction (``65.4%`` = ``0.654``). An answer showing a calculation is scored on its result.
    """
    core = [x for x in numbers(gold) if not _is_year(x)]
    if not core:
        return None
    # an answer that shows its calculation ("0.66, computed as 1,469,502 / 2,213,556") is scored on its result,
    # not on an operand that happens to equal the gold figure
    prediction = re.split(r",\s*computed as\b", prediction)[0]
    percent = "%" in gold or "percent" in gold.lower()
    # a gold answer without a scale word is written in the unit the question asks for ("$4.60" for "in USD
    # billions"): an answer giving that unit's figure with its word ("$4.62 billion") says the same
    found = [abs(v) for v in numbers(prediction)]
    if numbers(gold) == numbers(gold, scaled=False):
        found += [abs(v) for v in numbers(prediction, scaled=False)]
    for x in core:
        for y in found:
            if _close(y, abs(x), rel_tol) or (percent and _close(100 * y, abs(x), rel_tol)):
                return 1.0
            if _significant(x) >= 3 and _significant(y) >= 3:
                if any(_close(y * scale, abs(x), rel_tol) for scale in (1e3, 1e6, 1e9, 1e-3, 1e-6, 1e-9)):
                    return 1.0
    return 0.0


# -- dates and names (Synthea) ----------------------------------------------------------------------
_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"], 1)}
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_US = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_LONG = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2}),?\s+(\d{4})\b", re.IGNORECASE)


def dates(text: str) -> set[str]:
    """ISO dates mentioned in ``text`` (``2001-02-03``, ``2/3/2001``, ``February 3, 2001``)."""
    out = {f"{y}-{m}-{d}" for y, m, d in _ISO.findall(text)}
    out |= {f"{y}-{int(m):02d}-{int(d):02d}" for m, d, y in _US.findall(text)}
    out |= {f"{y}-{_MONTHS[mo.lower()]:02d}-{int(d):02d}" for mo, d, y in _LONG.findall(text)}
    return out


def date_match(prediction: str, gold_date: str) -> float:
    return float(gold_date in dates(prediction))


def _name_key(name: str) -> list[str]:
    name = re.sub(r"\([^)]*\)", " ", name)  # "(disorder)", "(procedure)" qualifiers
    return normalize(name).split()[:3]


def name_recall(prediction: str, gold_names: Sequence[str]) -> float | None:
    """Share of gold names the answer mentions (a name counts when its first three words all appear)."""
    if not gold_names:
        return None
    words = set(normalize(prediction).split())
    found = sum(all(w in words for w in _name_key(n)) for n in gold_names if _name_key(n))
    return found / len(gold_names)


# -- aggregation -----------------------------------------------------------------------------------
def _finite(values: Iterable[float | None]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)


def mean_ci(values: Iterable[float | None], n_boot: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> dict:
    """``{"mean", "lo", "hi", "n"}``: the mean of defined values and a 95% percentile-bootstrap interval."""
    x = _finite(values)
    if len(x) == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": float(x.mean()), "lo": float(lo), "hi": float(hi), "n": int(len(x))}


def ratio_ci(numerators: Sequence[float], denominators: Sequence[float], n_boot: int = BOOTSTRAP,
             seed: int = BOOTSTRAP_SEED) -> dict:
    """Sum(num) / sum(den) over items (e.g. unsupported claims / claims) with items resampled."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if den.sum() == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0, "claims": 0}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(den), size=(n_boot, len(den)))
    boots = num[idx].sum(axis=1) / np.maximum(den[idx].sum(axis=1), 1e-12)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"mean": float(num.sum() / den.sum()), "lo": float(lo), "hi": float(hi), "n": int(len(den)),
            "claims": int(den.sum())}


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> dict:
    """Precision and recall of a binary decision (e.g. abstained vs should abstain), with counts."""
    tp = sum(p and a for p, a in zip(predicted, actual))
    fp = sum(p and not a for p, a in zip(predicted, actual))
    fn = sum(a and not p for p, a in zip(predicted, actual))
    return {"precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "tp": tp, "fp": fp, "fn": fn, "n": len(actual)}


def percentiles(values: Iterable[float], qs: Sequence[float] = (50, 95)) -> dict:
    x = _finite(values)
    if len(x) == 0:
        return {f"p{int(q)}": None for q in qs}
    return {f"p{int(q)}": float(np.percentile(x, q)) for q in qs}
