"""The judge's head: gradient-boosted depth-3 trees over the claim features, evaluated in numpy.

Trees because the evidence interacts (a high cosine means little when a number is missing; a long
claim with many unmatched words is riskier than a short one), and a linear head measured worse on
FaithBench (see ``data/judge/README.md``). Fitting uses scikit-learn's
``GradientBoostingClassifier`` (the ``dev`` extra); the fitted trees are exported to plain arrays, so
loading and scoring need only numpy and the shipped JSON.

>>> head = BoostedTreesHead.fit(x, y, names=FEATURE_NAMES, sample_weight=w)   # x: [N, F], y: [N] bool
>>> p = head.predict(x)                                                      # [N] P(claim unsupported)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

PARAMS = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8}


@dataclass(frozen=True)
class BoostedTreesHead:
    names: tuple[str, ...]
    """Feature names in column order; loading checks them against the featurizer's."""
    init: float
    """The log-odds every claim starts from (the weighted class prior)."""
    learning_rate: float
    trees: tuple[dict, ...] = field(repr=False)
    """Each tree as arrays: ``feature``, ``threshold``, ``left``, ``right`` (−1 at leaves), ``value``."""
    threshold: float = 0.5
    """A claim whose probability of being unsupported reaches this is judged unsupported."""

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, names: Sequence[str], sample_weight: np.ndarray | None = None,
            seed: int = 0, **params) -> BoostedTreesHead:
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y, dtype=bool)
        if x.ndim != 2 or x.shape[1] != len(names) or len(y) != len(x):
            raise ValueError(f"fit: x must be [N, {len(names)}] and y [N], got {x.shape} and {y.shape}")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        w = w * len(y) / w.sum()
        if y.all() or not y.any():  # one class: a constant head (only happens on tiny samples)
            return cls(tuple(names), 30.0 if y.all() else -30.0, 0.0, ())
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(**{**PARAMS, **params}, random_state=seed).fit(x, y, sample_weight=w)
        trees = []
        for est in model.estimators_[:, 0]:
            t = est.tree_
            trees.append({"feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                          "left": t.children_left.tolist(), "right": t.children_right.tolist(),
                          "value": t.value[:, 0, 0].tolist()})
        head = cls(tuple(names), 0.0, float(model.learning_rate), tuple(trees))
        # The prior's log-odds, read off the model itself so the export cannot drift from it.
        init = float(model.decision_function(x[:1])[0] - head._raw(x[:1])[0])
        head = cls(tuple(names), init, float(model.learning_rate), tuple(trees))
        if not np.allclose(head.predict(x), model.predict_proba(x)[:, 1], atol=1e-6):
            raise RuntimeError("the exported trees do not reproduce scikit-learn's predictions")
        return head

    def _raw(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).astype(np.float64)  # trees compare float32 features, as scikit-learn does
        raw = np.full(len(x), self.init)
        rows = np.arange(len(x))
        for t in self.trees:
            feature, threshold = np.asarray(t["feature"]), np.asarray(t["threshold"])
            left, right, value = np.asarray(t["left"]), np.asarray(t["right"]), np.asarray(t["value"])
            node = np.zeros(len(x), dtype=np.int64)
            while True:
                inner = left[node] >= 0
                if not inner.any():
                    break
                go_left = x[rows, np.maximum(feature[node], 0)] <= threshold[node]
                node = np.where(inner, np.where(go_left, left[node], right[node]), node)
            raw += self.learning_rate * value[node]
        return raw

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[N, F] features → [N] probability that each claim is unsupported."""
        x = np.asarray(x)
        if len(x) == 0:
            return np.zeros(0)
        return 1.0 / (1.0 + np.exp(-np.clip(self._raw(x), -30, 30)))

    def with_threshold(self, threshold: float) -> BoostedTreesHead:
        return BoostedTreesHead(self.names, self.init, self.learning_rate, self.trees, float(threshold))

    def save(self, path: Path, **provenance) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"provenance": provenance, **asdict(self)}, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path: Path, names: Sequence[str] | None = None) -> BoostedTreesHead:
        try:
            data = json.loads(Path(path).read_text())
            data.pop("provenance", None)
            head = cls(tuple(data["names"]), float(data["init"]), float(data["learning_rate"]), tuple(data["trees"]),
                       float(data["threshold"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(f"the judge's weights at {path} could not be read ({exc}); "
                               "retrain them with `python -m eval.judge.calibrate --train`") from None
        if names is not None and tuple(names) != head.names:
            raise RuntimeError(f"the judge's weights at {path} were trained on other features; "
                               "retrain them with `python -m eval.judge.calibrate --train`")
        return head
