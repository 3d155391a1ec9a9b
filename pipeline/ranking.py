"""Ranking measures shared by training and evaluation: average precision and precision at a recall.

Pure functions over scores and relevance flags; no project imports, so every layer may use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def average_precision(scores: Sequence[float], relevant: Sequence[bool]) -> float | None:
    """Average precision of ``scores`` ranking the ``relevant`` items first (None when none is relevant)."""
    n_rel = sum(bool(r) for r in relevant)
    if not n_rel:
        return None
    hits, total = 0, 0.0
    for rank, i in enumerate(np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"), 1):
        if relevant[i]:
            hits += 1
            total += hits / rank
    return total / n_rel


def precision_at_recall(scores: Sequence[float], relevant: Sequence[bool], recall: float = 0.8,
                        total_relevant: int | None = None) -> float | None:
    """Precision at the first rank where ``recall`` of the relevant items is reached (None when none is
    relevant; 0.0 when the ranking never reaches it, e.g. when ``total_relevant`` counts items not ranked)."""
    n_rel = total_relevant if total_relevant is not None else sum(bool(r) for r in relevant)
    need = math.ceil(recall * n_rel)
    if need == 0:
        return None
    hits = 0
    for rank, i in enumerate(np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"), 1):
        hits += bool(relevant[i])
        if hits >= need:
            return hits / rank
    return 0.0


def area_under_pr(scores: Sequence[float], relevant: Sequence[bool], total_relevant: int | None = None) -> float | None:
    """Area under the precision-recall curve of a pooled ranking (step interpolation: average precision over
    every relevant item, those never ranked counting zero when ``total_relevant`` says there are more)."""
    ap = average_precision(scores, relevant)
    if ap is None:
        return None
    ranked = sum(bool(r) for r in relevant)
    return ap * ranked / (total_relevant or ranked)
