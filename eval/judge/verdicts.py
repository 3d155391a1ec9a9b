"""What both judges give back: per-claim verdicts on one answer, and how an answer becomes claims."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

_MARKER = re.compile(r"\s*\[\d+(?:\s*[,–-]\s*\d+)*\]")


class JudgeError(RuntimeError):
    """The judge could not give verdicts (an endpoint that does not answer, unreadable weights)."""


@dataclass(frozen=True)
class JudgeResult:
    """Verdicts on one answer, one entry per claim in ``claims``' order.

    ``hallucination_rate`` is the share of claims judged unsupported; an answer with no claims (an
    abstention, or text with no words) has rate 0.0 — nothing was asserted, so nothing is unsupported.
    """

    claims: list[str]
    unsupported: list[bool]
    scores: list[float]
    """Probability that each claim is unsupported by the sources (0–1)."""
    hallucination_rate: float


class Judge(Protocol):
    name: str

    def judge(self, answer_text: str, claims: list[str] | None, sources: Sequence[str]) -> JudgeResult: ...


def split_claims(answer_text: str) -> list[str]:
    """An answer → its claims: sentences without citation markers such as ``[1]`` or ``[2, 3]``."""
    from eval.judge.features import split_sentences

    claims = []
    for sentence in split_sentences(answer_text):
        claim = re.sub(r"\s+([.,;:!?])", r"\1", _MARKER.sub("", sentence)).strip()
        if re.search(r"[A-Za-z0-9]{2}", claim):
            claims.append(claim)
    return claims


def judge_result(claims: list[str], scores: Sequence[float], threshold: float) -> JudgeResult:
    """Scores → verdicts: a claim whose score reaches ``threshold`` is unsupported."""
    unsupported = [bool(s >= threshold) for s in scores]
    rate = sum(unsupported) / len(claims) if claims else 0.0
    return JudgeResult(list(claims), unsupported, [float(s) for s in scores], float(rate))
