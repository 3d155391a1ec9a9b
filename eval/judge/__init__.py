"""The hallucination judge: which claims of an answer does the retrieved text not support?

Independent of the pipeline's own verifier (``graphs/verifier.py``), so the system does not grade
itself. Two kinds:

* ``local`` (default, ``local.py``): per-claim alignment features against the sources (``features.py``)
  scored by boosted trees trained on human labels, plus precise checks (a number absent from the
  sources, a flipped negation, a swapped name) that move a claim above the threshold from FaithBench and
  ContractNLI (``head.py``, weights in ``data/judge/head.json``, retrained by
  ``python -m eval.judge.calibrate --train``). Its held-out agreement with the human labels is what
  ``python -m eval.judge.calibrate`` reports (the labelled data: ``data.py``).
* ``openai`` (``openai.py``): any OpenAI-compatible chat endpoint asked for a SUPPORTED/UNSUPPORTED verdict
  per claim. Base URL, model and key come from the options or ``SECTIONRAG_JUDGE_BASE_URL``,
  ``SECTIONRAG_JUDGE_MODEL`` and ``SECTIONRAG_JUDGE_API_KEY``.

Nothing is loaded at import time; the local judge loads MiniLM and its weights on first use.

>>> judge = make_judge()                       # or make_judge("openai", base_url=..., model=...)
>>> r = judge.judge("The fee is $7 [1].", None, ["The fee is $5 per month."])
>>> r.claims, r.unsupported, r.hallucination_rate   # (['The fee is $7.'], [True], 1.0)
"""

from __future__ import annotations

from eval.judge.local import DEFAULT_WEIGHTS, LocalJudge
from eval.judge.openai import OpenAIJudge, parse_verdicts
from eval.judge.verdicts import Judge, JudgeError, JudgeResult, split_claims

KINDS = ("local", "openai")

__all__ = ["DEFAULT_WEIGHTS", "KINDS", "Judge", "JudgeError", "JudgeResult", "LocalJudge", "OpenAIJudge",
           "make_judge", "parse_verdicts", "split_claims"]


def make_judge(kind: str = "local", **opts) -> LocalJudge | OpenAIJudge:
    """The judge of ``kind`` (``local`` or ``openai``); ``opts`` go to its constructor."""
    match kind:
        case "local":
            return LocalJudge(**opts)
        case "openai":
            return OpenAIJudge(**opts)
    raise ValueError(f"unknown judge kind {kind!r}; use one of {', '.join(KINDS)}")
