"""Human-labelled claims for training and checking the hallucination judge: FaithBench and ContractNLI.

* FaithBench (``faithbench/batch_*.json``): LLM summaries of news/articles with annotated
  hallucination spans. A summary is hallucinated when any annotation is ``Unwanted`` or
  ``Questionable`` (the benchmark's own "worst" pooling in ``scripts/binarize.py``; ``Benign`` is
  consistent). Its claims are its sentences; a sentence is unsupported when a hallucinated span
  overlaps it. Grouped by source text (each source is summarised by ten LLMs).
* ContractNLI (``contractnli/dev.json``): a fixed hypothesis against an NDA. The claim is the
  hypothesis; it is supported iff the label is ``Entailment``. The sources are the evidence spans
  plus the document's spans that share the most words with the hypothesis (distractors, as a lexical
  retriever would return them), so ``NotMentioned`` items still come with plausible text. Grouped
  by document.
"""

from __future__ import annotations

import glob
import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from eval.judge.features import split_sentences

HALLUCINATED = frozenset({"Unwanted", "Unwanted.Intrinsic", "Unwanted.Extrinsic", "Questionable"})


@dataclass(frozen=True)
class JudgeExample:
    dataset: str
    group: str
    """What cross-validation keeps together: the source text (FaithBench) or the NDA (ContractNLI)."""
    claim_group: str
    """Items whose claims are the same text: ContractNLI's 17 fixed hypotheses, which cross-validation also
    holds out (a head that has seen a hypothesis can learn its base rate without reading the source)."""
    claims: tuple[str, ...]
    sources: tuple[str, ...]
    claim_unsupported: tuple[bool, ...]
    """Per-claim human label (True = unsupported), one per claim."""
    unsupported: bool
    """Item-level human label: the summary is hallucinated / the hypothesis is not entailed."""


def _take(items: list, limit: int | None, seed: int) -> list:
    if limit is None or limit >= len(items):
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def load_faithbench(data_dir: Path, limit: int | None = None, seed: int = 0) -> list[JudgeExample]:
    files = sorted(glob.glob(str(Path(data_dir) / "faithbench" / "batch_*.json")))
    if not files:
        raise FileNotFoundError(f"no FaithBench batches under {Path(data_dir) / 'faithbench'}; pass --data pointing at the shared data folder")
    out = []
    for f in files:
        for sample in json.loads(Path(f).read_text())["samples"]:
            summary = sample["summary"].strip()
            offset = sample["summary"].find(summary)
            bad_spans = [(a["summary_start"] - offset, a["summary_end"] - offset) for a in sample["annotations"]
                         if set(a["label"]) & HALLUCINATED and a.get("summary_start") is not None]
            label = any(set(a["label"]) & HALLUCINATED for a in sample["annotations"])
            claims, claim_labels, pos = [], [], 0
            for sent in split_sentences(summary):
                start = summary.find(sent, pos)
                end = start + len(sent)
                pos = end
                if not re.search(r"[A-Za-z]{2}", sent):
                    continue
                claims.append(sent)
                claim_labels.append(any(s < end and start < e for s, e in bad_spans))
            if claims:
                group = "fb:" + hashlib.sha1(sample["source"].encode()).hexdigest()[:12]
                out.append(JudgeExample("faithbench", group, group, tuple(claims), (sample["source"],), tuple(claim_labels), label))
    return _take(out, limit, seed)


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{3,}", text.lower())}


def load_contractnli(data_dir: Path, limit: int | None = None, seed: int = 0, distractors: int = 3) -> list[JudgeExample]:
    path = Path(data_dir) / "contractnli" / "dev.json"
    if not path.exists():
        raise FileNotFoundError(f"no ContractNLI file at {path}; pass --data pointing at the shared data folder")
    data = json.loads(path.read_text())
    hypotheses = {k: v["hypothesis"] for k, v in data["labels"].items()}
    out = []
    for doc in data["documents"]:
        spans = [doc["text"][s:e].strip() for s, e in doc["spans"]]
        span_words = [_words(s) for s in spans]
        for key, ann in sorted(doc["annotation_sets"][0]["annotations"].items()):
            hyp = hypotheses[key]
            evidence = set(ann["spans"])
            hw = _words(hyp)
            ranked = sorted((i for i in range(len(spans)) if i not in evidence and len(spans[i]) > 20),
                            key=lambda i: (-len(hw & span_words[i]) / (len(hw) or 1), i))
            chosen = sorted(evidence | set(ranked[:distractors]))
            unsupported = ann["choice"] != "Entailment"
            out.append(JudgeExample("contractnli", f"cnli:{doc['id']}", f"cnli:{key}", (hyp,), tuple(spans[i] for i in chosen),
                                    (unsupported,), unsupported))
    return _take(out, limit, seed)

