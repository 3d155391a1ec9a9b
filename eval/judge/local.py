"""The ``local`` judge: alignment features + a trained tree head; no network, MiniLM on the CPU.

Each claim is aligned to its sources (``features.py``), the head (``head.py``, weights in
``data/judge/head.json``) gives the probability that it is unsupported, and a claim failing a precise
check (a number absent from the sources, a flipped negation, a swapped name) is moved above the middle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.judge.verdicts import JudgeError, JudgeResult, judge_result, split_claims

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "judge" / "head.json"


class LocalJudge:
    """Alignment features + a trained tree head; no network, MiniLM on the CPU.

    ``weights``: a head JSON (default ``data/judge/head.json``); ``threshold`` overrides its cut;
    ``embedder``: a ``pipeline.Embedder`` to share an already loaded MiniLM.
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
            from eval.judge.features import FEATURE_NAMES, ClaimFeaturizer
            from eval.judge.head import BoostedTreesHead

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
        from eval.judge.features import apply_checks

        self.warm_up()
        claim_lists = [list(c) if c is not None else split_claims(a) for a, c, _ in items]
        x, checks = self._featurizer.features_and_checks([(c, list(s)) for c, (_, _, s) in zip(claim_lists, items)])
        scores = apply_checks(self._head.predict(x), checks) if len(x) else np.zeros(0)
        out, at = [], 0
        for claims in claim_lists:
            out.append(judge_result(claims, scores[at:at + len(claims)], self.threshold))
            at += len(claims)
        return out
