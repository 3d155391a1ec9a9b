"""The claim verifier: does the cited text support the claim? Returns evidence, not a yes/no.

No NLI model ships offline, so support is built from checks a reader would make:

* numbers: every number in the claim (amounts, percentages, dates) must appear in the cited text;
* words: the share of the claim's content words found in the cited text;
* meaning: cosine similarity of the claim and the cited text (the sentence embedder);
* negation: a claim that negates what the cited text states plainly (or the reverse) is penalised.

``support = 0.5 * words + 0.5 * meaning``, capped at 0.2 when a number is missing and halved on a
negation mismatch. The threshold (``VerifyConfig.min_claim_support``) is a configuration value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from pipeline.text import content_words

Embed = Callable[[list[str]], np.ndarray]

_NUMBER = re.compile(r"(?<![\w.])[$€£]?\(?-?\d[\d,]*(?:\.\d+)?\)?%?")
_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|without|cannot|can't|won't|doesn't|isn't|aren't|wasn't)\b", re.IGNORECASE)


def numbers(text: str) -> set[str]:
    """Numbers as written, normalised: ``$1,234.50`` → ``1234.5``; ``(12)`` → ``12``; years stay."""
    out = set()
    for m in _NUMBER.findall(text):
        n = m.strip("$€£()%").replace(",", "")
        n = n.removeprefix("-")
        if "." in n:
            n = n.rstrip("0").rstrip(".")
        if n:
            out.add(n)
    return out


def support_score(claim: str, quote: str, cosine: float) -> tuple[float, tuple[str, ...]]:
    reasons = []
    words = content_words(claim)
    recall = len(words & content_words(quote)) / len(words) if words else 0.0
    score = 0.5 * recall + 0.5 * max(cosine, 0.0)
    missing = sorted(numbers(claim) - numbers(quote))
    if missing:
        score = min(score, 0.2)
        reasons.append(f"number{'s' if len(missing) > 1 else ''} {', '.join(missing)} not in the cited text")
    if bool(_NEGATION.search(claim)) != bool(_NEGATION.search(quote)):
        score *= 0.5
        reasons.append("negation differs from the cited text")
    if recall < 0.5:
        reasons.append(f"only {recall:.0%} of the claim's words are in the cited text")
    return float(score), tuple(reasons)


def verify_claims(claims: Sequence[str], quotes: Sequence[str], embed: Embed) -> list[tuple[float, tuple[str, ...]]]:
    """Support of each claim by its (joined) cited quotes."""
    if not claims:
        return []
    vecs = embed([*claims, *quotes])
    cvecs, qvecs = vecs[: len(claims)], vecs[len(claims):]
    return [support_score(c, q, float(cv @ qv)) for c, q, cv, qv in zip(claims, quotes, cvecs, qvecs)]
