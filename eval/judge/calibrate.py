"""How well does the hallucination judge agree with humans? FaithBench and ContractNLI, held out.

For the ``local`` judge every number is cross-validated: items are split into folds by source
document (FaithBench: the source text, which ten LLMs summarised; ContractNLI: the NDA) and by claim
text (ContractNLI's 17 hypotheses recur in every NDA, and a head that has seen one can learn its base
rate without reading the source: measured, a head given only claim-side features reaches ContractNLI
AUROC 0.74 when just documents are held out). Each item is scored by a head fitted on items sharing
neither its document nor its claim (FaithBench sentences and ContractNLI hypotheses together, each
dataset and class weighted equally), then the judge's precise checks are applied as in use
(``features.apply_checks``). Nothing is ever evaluated on what it was trained on. The
threshold is 0.5, not tuned: class-balanced training puts the balanced cut there. The shipped head
(``--train``) is the same fit on all the data.

Labels: an item is positive when humans found it unsupported (a hallucinated FaithBench summary, a
ContractNLI hypothesis that is not entailed). A summary's judge score is its worst claim's score and
it is flagged when any claim is judged unsupported — the rule behind the harness's hallucination rate.
Confidence intervals are a seeded bootstrap over source documents (items from one source move together).

``judge_kind="verifier"`` scores the pipeline's own verifier (``graphs/verifier.py``) the same way
for comparison: each claim against its three best-aligned source sentences as if they were its
citations, unsupported when support < ``VerifyConfig.min_claim_support``.

    python -m eval.judge.calibrate --data ../shared/data --json
    python -m eval.judge.calibrate --data ../shared/data --train        # rewrites data/judge/head.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from eval.judge.data import JudgeExample, load_contractnli, load_faithbench

DATASETS = ("faithbench", "contractnli")
CHANCE = 0.5
BOOTSTRAP = 1000
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
"""The shared data folder beside the checkout (``../shared/data``): the default ``--data``."""


# ---------------------------------------------------------------- metrics

def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN when only one class is present."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    pos, neg = labels.sum(), (~labels).sum()
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def balanced_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean of the recall on each class; NaN when only one class is present."""
    pred, labels = np.asarray(pred, dtype=bool), np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(0.5 * (pred[labels].mean() + (~pred[~labels]).mean()))


def bootstrap_ci(metric: Callable[[np.ndarray], float], groups: Sequence[str], seed: int,
                 n: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile interval of ``metric(indices)`` over resamples of whole groups."""
    names = sorted(set(groups))
    members = {g: [] for g in names}
    for i, g in enumerate(groups):
        members[g].append(i)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        picked = rng.integers(0, len(names), len(names))
        idx = np.concatenate([members[names[k]] for k in picked])
        v = metric(idx)
        if not np.isnan(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


# ---------------------------------------------------------------- data and features

def load_examples(data_dir: Path, limit: int | None, seed: int, datasets: Sequence[str] = DATASETS) -> list[JudgeExample]:
    loaders = {"faithbench": load_faithbench, "contractnli": load_contractnli}
    out = []
    for name in datasets:
        if name not in loaders:
            raise ValueError(f"unknown dataset {name!r}; use {', '.join(DATASETS)}")
        out.extend(loaders[name](Path(data_dir), limit=limit, seed=seed))
    return out


def featurize(examples: Sequence[JudgeExample], featurizer=None) -> tuple[list[np.ndarray], list[list[str]]]:
    """One [claims, F] feature array and one list of failed precise checks per example, embedded in one batch."""
    from eval.judge.features import ClaimFeaturizer

    featurizer = featurizer or ClaimFeaturizer()
    x, checks = featurizer.features_and_checks([(e.claims, e.sources) for e in examples])
    feats, failed, at = [], [], 0
    for e in examples:
        feats.append(x[at:at + len(e.claims)])
        failed.append(checks[at:at + len(e.claims)])
        at += len(e.claims)
    return feats, failed


def group_folds(groups: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Fold id per item; whole groups go to one fold, shuffled with ``seed``."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(names)
    fold_of = {g: i % k for i, g in enumerate(names)}
    return np.array([fold_of[g] for g in groups])


def _training_rows(examples: Sequence[JudgeExample], feats: Sequence[np.ndarray], idx: Sequence[int]):
    xs, ys, ds = [], [], []
    for i in idx:
        xs.append(feats[i])
        ys.extend(examples[i].claim_unsupported)
        ds.extend([examples[i].dataset] * len(examples[i].claims))
    x, y, ds = np.vstack(xs), np.array(ys, dtype=bool), np.array(ds)
    w = np.zeros(len(y))
    for d in sorted(set(ds)):  # each dataset and, within it, each class carries the same total weight
        for cls in (False, True):
            m = (ds == d) & (y == cls)
            if m.any():
                w[m] = 1.0 / m.sum()
    return x, y, w


def fit_head(examples: Sequence[JudgeExample], feats: Sequence[np.ndarray], idx: Sequence[int], seed: int):
    """The tree head fitted on the claims of ``examples[idx]``; threshold 0.5 (see the module docstring)."""
    from eval.judge.features import FEATURE_NAMES
    from eval.judge.head import BoostedTreesHead

    x, y, w = _training_rows(examples, feats, idx)
    return BoostedTreesHead.fit(x, y, FEATURE_NAMES, w, seed=seed)


def cross_validated_scores(examples: Sequence[JudgeExample], feats: Sequence[np.ndarray], folds: int, seed: int,
                           hold_out_claims: bool = True) -> tuple[list[np.ndarray], np.ndarray]:
    """Held-out per-claim scores and threshold for every example.

    Items get a fold for their source document and one for their claim text; the cell (a, b) is
    scored by a head fitted only on items whose document is not in fold a and whose claim is not in
    fold b, so a held-out item's document and claim are both unseen. With ``hold_out_claims=False``
    only documents are held out.
    """
    doc_fold = group_folds([e.group for e in examples], folds, seed)
    claim_fold = group_folds([e.claim_group for e in examples], folds, seed + 1)
    # FaithBench's claims are unique per summary: its claim fold is its document fold.
    claim_fold = np.where([e.claim_group == e.group for e in examples], doc_fold, claim_fold)
    if not hold_out_claims:
        claim_fold = doc_fold
    scores: list[np.ndarray] = [np.zeros(0)] * len(examples)
    thresholds = np.zeros(len(examples))
    for a in range(folds):
        for b in range(folds):
            held = np.flatnonzero((doc_fold == a) & (claim_fold == b))
            if not len(held):
                continue
            train = np.flatnonzero((doc_fold != a) & (claim_fold != b))
            head = fit_head(examples, feats, train, seed)
            for i in held:
                scores[i] = head.predict(feats[i])
                thresholds[i] = head.threshold
    return scores, thresholds


# ---------------------------------------------------------------- scoring other judges the same way

def _verifier_scores(examples: Sequence[JudgeExample], featurizer) -> tuple[list[np.ndarray], float]:
    from eval.judge.features import split_sentences
    from pipeline import verify_claims
    from pipeline.config import VerifyConfig

    claims, quotes = [], []
    for e in examples:
        sents = [s for src in e.sources for s in split_sentences(src)] or [""]
        sims = featurizer.embed(list(e.claims)) @ featurizer.embed(sents).T
        for i, c in enumerate(e.claims):
            claims.append(c)
            quotes.append(" ".join(sents[j] for j in sorted(np.argsort(-sims[i])[:3])))
    support = verify_claims(claims, quotes, featurizer.embed)
    flat = np.array([1.0 - s for s, _ in support])
    out, at = [], 0
    for e in examples:
        out.append(flat[at:at + len(e.claims)])
        at += len(e.claims)
    return out, 1.0 - VerifyConfig().min_claim_support


def _judge_scores(examples: Sequence[JudgeExample], judge) -> tuple[list[np.ndarray], float]:
    results = judge.judge_many([("", list(e.claims), list(e.sources)) for e in examples])
    return [np.array(r.scores) for r in results], judge.threshold


# ---------------------------------------------------------------- report

def _metrics(scores: list[np.ndarray], thresholds: np.ndarray, examples: Sequence[JudgeExample], seed: int,
             claim_level: bool) -> dict:
    labels = np.array([e.unsupported for e in examples])
    item_score = np.array([s.max() if len(s) else 0.0 for s in scores])
    item_pred = np.array([bool((s >= t).any()) for s, t in zip(scores, thresholds)])
    groups = [e.group for e in examples]
    out = _summary(item_score, item_pred, labels, groups, seed)
    out["rate_mean"] = float(np.mean([(s >= t).mean() if len(s) else 0.0 for s, t in zip(scores, thresholds)]))
    if claim_level:
        cl = np.concatenate([np.array(e.claim_unsupported) for e in examples])
        cs = np.concatenate(scores)
        cp = np.concatenate([s >= t for s, t in zip(scores, thresholds)])
        cg = [e.group for e in examples for _ in e.claims]
        out["claims"] = _summary(cs, cp, cl, cg, seed)
    return out


def _summary(score: np.ndarray, pred: np.ndarray, labels: np.ndarray, groups: Sequence[str], seed: int) -> dict:
    bacc = balanced_accuracy(pred, labels)
    auc = auroc(score, labels)
    bacc_ci = bootstrap_ci(lambda i: balanced_accuracy(pred[i], labels[i]), groups, seed)
    auc_ci = bootstrap_ci(lambda i: auroc(score[i], labels[i]), groups, seed)
    return {
        "n": int(len(labels)), "positives": int(labels.sum()), "groups": len(set(groups)),
        "balanced_accuracy": bacc, "balanced_accuracy_ci95": list(bacc_ci),
        "auroc": auc, "auroc_ci95": list(auc_ci),
        "chance": CHANCE,
        "balanced_accuracy_margin": bacc_ci[0] - CHANCE, "auroc_margin": auc_ci[0] - CHANCE,
    }


def _agreement(a: list[np.ndarray], ta: np.ndarray, b: list[np.ndarray], tb: float) -> dict:
    """How the judge and the pipeline's verifier agree, claim by claim (Cohen's kappa, Spearman rho)."""
    sa, sb = np.concatenate(a), np.concatenate(b)
    pa = np.concatenate([s >= t for s, t in zip(a, ta)])
    pb = sb >= tb
    po = float((pa == pb).mean())
    pe = float(pa.mean() * pb.mean() + (1 - pa.mean()) * (1 - pb.mean()))
    kappa = (po - pe) / (1 - pe) if pe < 1 else float("nan")
    ra, rb = np.argsort(np.argsort(sa)), np.argsort(np.argsort(sb))
    rho = float(np.corrcoef(ra, rb)[0, 1]) if len(sa) > 2 else float("nan")
    return {"claims": int(len(sa)), "decision_agreement": po, "cohen_kappa": kappa, "spearman_scores": rho}


def calibrate(data_dir: Path, limit: int | None = None, judge_kind: str = "local", seed: int = 0, *,
              folds: int = 5, datasets: Sequence[str] = DATASETS, compare_verifier: bool = False,
              hold_out_claims: bool = True, judge_opts: dict | None = None) -> dict:
    """Agreement of the judge with human labels, per dataset, as JSON-able metrics.

    ``limit`` caps the items taken from each dataset (a seeded sample). ``judge_kind``: ``local``
    (cross-validated head, see the module docstring), ``openai`` (``judge_opts`` go to ``make_judge``),
    or ``verifier`` (the pipeline's own verifier, for comparison). With ``compare_verifier`` the local
    judge's report also says how its decisions agree with the verifier's; ``hold_out_claims=False``
    holds out only documents (ContractNLI's numbers then include what its recurring hypotheses leak).
    """
    from eval.judge.features import ClaimFeaturizer, apply_checks

    if judge_kind not in ("local", "openai", "verifier"):
        raise ValueError(f"unknown judge kind {judge_kind!r}; use local, openai or verifier")
    t0 = time.perf_counter()
    examples = load_examples(Path(data_dir), limit, seed, datasets)
    featurizer = ClaimFeaturizer()
    if judge_kind == "local":
        k = max(2, min(folds, len({e.group for e in examples})))
        feats, checks = featurize(examples, featurizer)
        scores, thresholds = cross_validated_scores(examples, feats, k, seed, hold_out_claims)
        scores = [apply_checks(s, c) for s, c in zip(scores, checks)]
        method = (f"held-out: {f'{k}x{k}' if hold_out_claims else k}-fold cross-validation grouped by source document "
                  "(FaithBench source text, ContractNLI NDA)"
                  + (" and by claim text (ContractNLI hypothesis)" if hold_out_claims else "")
                  + "; each item scored by trees fitted on items sharing neither, then the precise checks "
                  "(number absent, negation flipped, name swapped) applied; threshold 0.5 (untuned); "
                  "the shipped data/judge/head.json is the same fit on all data")
    elif judge_kind == "verifier":
        scores, threshold = _verifier_scores(examples, featurizer)
        thresholds = np.full(len(examples), threshold)
        method = ("graphs/verifier.py (no training): each claim against its 3 best-aligned source sentences "
                  "(MiniLM cosine) as its citations; unsupported when support < VerifyConfig.min_claim_support")
    else:
        from eval.judge import make_judge

        scores, threshold = _judge_scores(examples, make_judge("openai", **(judge_opts or {})))
        thresholds = np.full(len(examples), threshold)
        method = "an OpenAI-compatible endpoint's per-claim verdicts (no training)"
    report: dict = {"judge": judge_kind, "method": method, "seed": seed, "limit": limit,
                    "bootstrap": f"{BOOTSTRAP} resamples of source documents, 95% percentile interval",
                    "label": "positive = humans found the item unsupported (hallucinated summary / hypothesis not entailed)",
                    "item_rule": "score = the item's worst claim score; flagged when any claim is judged unsupported"}
    report["threshold"] = float(thresholds[0]) if len(thresholds) else None
    for name in datasets:
        idx = [i for i, e in enumerate(examples) if e.dataset == name]
        sub = [examples[i] for i in idx]
        report[name] = _metrics([scores[i] for i in idx], thresholds[idx], sub, seed, claim_level=name == "faithbench")
    if compare_verifier and judge_kind != "verifier":
        vscores, vt = _verifier_scores(examples, featurizer)
        report["agreement_with_verifier"] = {
            name: _agreement([scores[i] for i, e in enumerate(examples) if e.dataset == name],
                             np.array([thresholds[i] for i, e in enumerate(examples) if e.dataset == name]),
                             [vscores[i] for i, e in enumerate(examples) if e.dataset == name], vt)
            for name in datasets}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def train(data_dir: Path, out: Path, seed: int = 0) -> dict:
    """Fit the shipped head on all of FaithBench and ContractNLI and write it to ``out``."""
    examples = load_examples(Path(data_dir), None, seed)
    feats, _ = featurize(examples)
    head = fit_head(examples, feats, range(len(examples)), seed)
    counts = {name: {"items": sum(e.dataset == name for e in examples),
                     "claims": sum(len(e.claims) for e in examples if e.dataset == name),
                     "unsupported_claims": sum(sum(e.claim_unsupported) for e in examples if e.dataset == name)}
              for name in DATASETS}
    head.save(out, trained_on=counts, command="python -m eval.judge.calibrate --train", seed=seed,
              data="FaithBench odd batches (vectara/FaithBench @ cf89797) and ContractNLI dev (shu7bh/Contract-NLI @ "
                   "e6f53de), the development split in ../shared/data; see data/judge/README.md")
    return {"weights": str(out), "bytes": out.stat().st_size, "threshold": head.threshold, "trees": len(head.trees),
            "trained_on": counts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.judge.calibrate", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=None, help="items per dataset (a seeded sample)")
    ap.add_argument("--judge", default="local", choices=["local", "openai", "verifier"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--compare-verifier", action="store_true", help="also report agreement with graphs/verifier.py")
    ap.add_argument("--documents-only", action="store_true",
                    help="hold out only documents, not ContractNLI's recurring hypotheses (an optimistic estimate)")
    ap.add_argument("--train", action="store_true", help="refit the shipped head on all data and write --out")
    ap.add_argument("--out", type=Path, default=None, help="where --train writes the head (default data/judge/head.json)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)
    try:
        if args.train:
            from eval.judge import DEFAULT_WEIGHTS

            result = train(args.data, args.out or DEFAULT_WEIGHTS, args.seed)
        else:
            result = calibrate(args.data, args.limit, args.judge, args.seed, folds=args.folds,
                               compare_verifier=args.compare_verifier, hold_out_claims=not args.documents_only)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
