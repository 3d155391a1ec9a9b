"""The hallucination judge: which claims of an answer does the retrieved text not support?

Independent of the pipeline's own verifier (``graphs/verifier.py``), so the system does not grade
itself. Two kinds:

* ``local`` (default): per-claim alignment features against the sources (``eval/judge_features.py``)
  scored by boosted trees trained on human labels, plus precise checks (a number absent from the
  sources, a flipped negation, a swapped name) that move a claim above the threshold from FaithBench and ContractNLI
  (``eval/judge_head.py``, weights in ``data/judge/head.json``, retrained by
  ``python -m eval.calibrate_judge --train``). Its held-out agreement with the human labels is what
  ``python -m eval.calibrate_judge`` reports.
* ``openai``: any OpenAI-compatible chat endpoint asked for a SUPPORTED/UNSUPPORTED verdict per claim.
  Base URL, model and key come from the options or ``SECTIONRAG_JUDGE_BASE_URL``,
  ``SECTIONRAG_JUDGE_MODEL`` and ``SECTIONRAG_JUDGE_API_KEY``.

Nothing is loaded at import time; the local judge loads MiniLM and its weights on first use.

>>> judge = make_judge()                       # or make_judge("openai", base_url=..., model=...)
>>> r = judge.judge("The fee is $7 [1].", None, ["The fee is $5 per month."])
>>> r.claims, r.unsupported, r.hallucination_rate   # (['The fee is $7.'], [True], 1.0)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

KINDS = ("local", "openai")
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "judge" / "head.json"
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


def split_claims(answer_text: str) -> list[str]:
    """An answer → its claims: sentences without citation markers such as ``[1]`` or ``[2, 3]``."""
    from eval.judge_features import split_sentences

    claims = []
    for sentence in split_sentences(answer_text):
        claim = re.sub(r"\s+([.,;:!?])", r"\1", _MARKER.sub("", sentence)).strip()
        if re.search(r"[A-Za-z0-9]{2}", claim):
            claims.append(claim)
    return claims


def _result(claims: list[str], scores: Sequence[float], threshold: float) -> JudgeResult:
    unsupported = [bool(s >= threshold) for s in scores]
    rate = sum(unsupported) / len(claims) if claims else 0.0
    return JudgeResult(list(claims), unsupported, [float(s) for s in scores], float(rate))


class Judge(Protocol):
    name: str

    def judge(self, answer_text: str, claims: list[str] | None, sources: Sequence[str]) -> JudgeResult: ...


class LocalJudge:
    """Alignment features + a trained tree head; no network, MiniLM on the CPU.

    ``weights``: a head JSON (default ``data/judge/head.json``); ``threshold`` overrides its cut;
    ``embedder``: an ``encoders.embedder.Embedder`` to share an already loaded MiniLM.
    """

    name = "local"

    def __init__(self, weights: str | Path | None = None, threshold: float | None = None,
                 embedder=None) -> None:
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"judge threshold must be between 0 and 1, got {threshold}")
        self.weights = Path(weights) if weights else DEFAULT_WEIGHTS
        self._threshold = threshold
        self._embedder = embedder
        self._head = None
        self._featurizer = None

    def warm_up(self) -> None:
        if self._head is None:
            from eval.judge_features import FEATURE_NAMES, ClaimFeaturizer
            from eval.judge_head import BoostedTreesHead

            try:
                self._head = BoostedTreesHead.load(self.weights, FEATURE_NAMES)
            except RuntimeError as exc:
                raise JudgeError(str(exc)) from None
            self._featurizer = ClaimFeaturizer(self._embedder)

    @property
    def threshold(self) -> float:
        self.warm_up()
        return self._threshold if self._threshold is not None else self._head.threshold

    def judge(self, answer_text: str, claims: list[str] | None = None, sources: Sequence[str] = ()) -> JudgeResult:
        return self.judge_many([(answer_text, claims, sources)])[0]

    def judge_many(self, items: Sequence[tuple[str, list[str] | None, Sequence[str]]]) -> list[JudgeResult]:
        """Many answers at once: every claim and source sentence is embedded in one batch."""
        from eval.judge_features import apply_checks

        self.warm_up()
        claim_lists = [list(c) if c is not None else split_claims(a) for a, c, _ in items]
        x, checks = self._featurizer.features_and_checks([(c, list(s)) for c, (_, _, s) in zip(claim_lists, items)])
        scores = apply_checks(self._head.predict(x), checks) if len(x) else np.zeros(0)
        out, at = [], 0
        for claims in claim_lists:
            out.append(_result(claims, scores[at:at + len(claims)], self.threshold))
            at += len(claims)
        return out


_SYSTEM = ("You are a strict fact-checker. A claim is SUPPORTED only if the source text states or directly "
           "implies it; a claim that adds, changes or contradicts any detail (numbers, names, dates, negation, "
           "scope) is UNSUPPORTED. Judge only against the source text, not your own knowledge.")


def _prompt(claims: Sequence[str], sources: Sequence[str], max_source_chars: int) -> str:
    text = "\n\n".join(f"[{i}] {s}" for i, s in enumerate(sources, 1))[:max_source_chars]
    listed = "\n".join(f"{i}. {c}" for i, c in enumerate(claims, 1))
    return (f"SOURCE TEXT:\n{text}\n\nCLAIMS:\n{listed}\n\n"
            'Reply with JSON only, one verdict per claim, in this form: {"verdicts": [{"claim": 1, '
            '"verdict": "SUPPORTED"}, {"claim": 2, "verdict": "UNSUPPORTED"}]}')


def parse_verdicts(content: str, n: int) -> list[float | None]:
    """A reply → per-claim score (1.0 unsupported, 0.0 supported, ``None`` where no verdict was given)."""
    out: list[float | None] = [None] * n
    match = re.search(r"\{.*\}|\[.*\]", content, re.S)
    try:
        data = json.loads(match.group()) if match else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        data = data.get("verdicts", data.get("claims"))
    if isinstance(data, list):
        for pos, item in enumerate(data):
            if isinstance(item, str):
                item = {"claim": pos + 1, "verdict": item}
            if not isinstance(item, dict):
                continue
            verdict = str(item.get("verdict", item.get("label", ""))).upper()
            try:
                index = int(item.get("claim", pos + 1)) - 1
            except (TypeError, ValueError):
                index = pos
            if 0 <= index < n and verdict in ("SUPPORTED", "UNSUPPORTED"):
                out[index] = 1.0 if verdict == "UNSUPPORTED" else 0.0
        return out
    # No JSON: fall back to "1. SUPPORTED" lines.
    for m in re.finditer(r"(?m)^\s*(\d+)[.):]?\s*\W*(UNSUPPORTED|SUPPORTED)\b", content.upper()):
        index = int(m.group(1)) - 1
        if 0 <= index < n:
            out[index] = 1.0 if m.group(2) == "UNSUPPORTED" else 0.0
    return out


class OpenAIJudge:
    """Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, hosted APIs) as the judge.

    A claim the reply gives no verdict for counts as unsupported (score 1.0): the judge does not
    vouch for what it was not shown to check.
    """

    name = "openai"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, max_claims_per_request: int = 20, max_source_chars: int = 24_000) -> None:
        self.base_url = (base_url or os.environ.get("SECTIONRAG_JUDGE_BASE_URL") or "").rstrip("/")
        self.model = model or os.environ.get("SECTIONRAG_JUDGE_MODEL") or ""
        self.api_key = api_key if api_key is not None else os.environ.get("SECTIONRAG_JUDGE_API_KEY")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("the openai judge needs an http(s) base URL: pass base_url= or set SECTIONRAG_JUDGE_BASE_URL")
        if not self.model:
            raise ValueError("the openai judge needs a model name: pass model= or set SECTIONRAG_JUDGE_MODEL")
        if max_claims_per_request < 1:
            raise ValueError("max_claims_per_request must be at least 1")
        self.timeout_s = timeout_s
        self.max_claims_per_request = max_claims_per_request
        self.max_source_chars = max_source_chars
        self.threshold = 0.5

    def _ask(self, claims: Sequence[str], sources: Sequence[str]) -> list[float | None]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "temperature": 0.0, "max_tokens": 64 + 24 * len(claims),
                "messages": [{"role": "system", "content": _SYSTEM},
                             {"role": "user", "content": _prompt(claims, sources, self.max_source_chars)}]}
        try:
            resp = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise JudgeError(f"the judge at {self.base_url} did not answer: {exc}") from None
        if resp.status_code != 200:
            raise JudgeError(f"the judge at {self.base_url} returned HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            content = resp.json()["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError, ValueError):
            raise JudgeError(f"the judge at {self.base_url} sent a response that is not a chat completion") from None
        return parse_verdicts(content, len(claims))

    def judge(self, answer_text: str, claims: list[str] | None = None, sources: Sequence[str] = ()) -> JudgeResult:
        claims = list(claims) if claims is not None else split_claims(answer_text)
        scores: list[float] = []
        step = self.max_claims_per_request
        for at in range(0, len(claims), step):
            verdicts = self._ask(claims[at:at + step], sources)
            scores.extend(1.0 if v is None else v for v in verdicts)
        return _result(claims, scores, self.threshold)

    def judge_many(self, items: Sequence[tuple[str, list[str] | None, Sequence[str]]]) -> list[JudgeResult]:
        return [self.judge(a, c, s) for a, c, s in items]


def make_judge(kind: str = "local", **opts) -> LocalJudge | OpenAIJudge:
    """The judge of ``kind`` (``local`` or ``openai``); ``opts`` go to its constructor."""
    match kind:
        case "local":
            return LocalJudge(**opts)
        case "openai":
            return OpenAIJudge(**opts)
    raise ValueError(f"unknown judge kind {kind!r}; use one of {', '.join(KINDS)}")
