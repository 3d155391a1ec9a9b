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

from pipeline.text import sentence_spans

Embed = Callable[[list[str]], np.ndarray]

_STOP = frozenset(
    ["a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with", "from", "as", "is", "are", "was", "were", "be", "been", "being", "this", "that", "these", "those", "it", "its", "it's", "their", "there", "they", "them", "he", "she", "his", "her", "we", "our", "you", "your", "i", "me", "my", "which", "who", "whom", "what", "when", "where", "why", "how", "will", "would", "shall", "should", "may", "might", "can", "could", "do", "does", "did", "has", "have", "had", "not", "no", "any", "all", "each", "such", "than", "then", "so", "also", "into", "upon", "under", "over", "about", "per", "other", "same", "more", "most", "less", "than", "only", "very", "within", "without", "between"]
)
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\(?-?\d[\d,]*(?:\.\d+)?\)?%?")
_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|without|cannot|can't|won't|doesn't|isn't|aren't|wasn't)\b", re.IGNORECASE)
_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING_MARKERS = re.compile(r"(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


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


def _cited(markers: str) -> tuple[int, ...]:
    """The numbers in a run of ``[n]`` / ``[n, m]`` markers, in order."""
    return tuple(int(n) for group in _MARKER.findall(markers) for n in re.split(r"\s*,\s*", group))


def split_claims(draft: str) -> list[tuple[str, tuple[int, ...]]]:
    """A draft with ``[n]`` markers → ``[(claim text without markers, cited numbers)]``."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for s, e in sentence_spans(draft):
        sentence = draft[s:e]
        lead = _LEADING_MARKERS.match(sentence)
        if lead and out:  # "… notice. [1] The next claim …": the markers close the claim before
            out[-1] = (out[-1][0], out[-1][1] + _cited(lead.group()))
            sentence = sentence[lead.end():]
        claim, cited = _MARKER.sub("", sentence).strip(), _cited(sentence)
        if content_words(claim):
            out.append((claim, cited))
        elif cited and out:  # a fragment without content words ("(see [3])") cites for the claim before
            out[-1] = (out[-1][0], out[-1][1] + cited)
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
