"""The ``openai`` judge: any OpenAI-compatible chat endpoint asked for a SUPPORTED/UNSUPPORTED verdict per claim.

Base URL, model and key come from the options or ``SECTIONRAG_JUDGE_BASE_URL``, ``SECTIONRAG_JUDGE_MODEL``
and ``SECTIONRAG_JUDGE_API_KEY``. httpx is imported on the first request.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence

from eval.judge.verdicts import JudgeError, JudgeResult, judge_result, split_claims

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
        return judge_result(claims, scores, self.threshold)

    def judge_many(self, items: Sequence[tuple[str, list[str] | None, Sequence[str]]]) -> list[JudgeResult]:
        return [self.judge(a, c, s) for a, c, s in items]
