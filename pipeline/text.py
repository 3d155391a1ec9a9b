"""Text utilities every stage shares: sentence spans, whitespace trimming, content words.

The one sentence splitter (``sentence_spans``) and the one stopword list (``STOPWORDS``) of the
project: sections are cut, evidence is chosen, claims are split and checked with the same rules.
Span functions return offsets into the string they were given, never modified copies, so callers
can always recover ``text[start:end]`` exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# A sentence ends at ., ! or ? (optionally followed by closing quotes/brackets) before whitespace and
# an upper-case letter, digit, quote or bracket; or at a blank line / a line break before a heading-ish line.
_SENT_END = re.compile(r"""(?<=[.!?])["')\]]*\s+(?=[A-Z0-9"'(\[])|\n\s*\n|\n(?=\s*(?:[-*•]|\(?[a-z0-9]{1,3}[.)])\s)""")
# Abbreviations after which a period does not end a sentence.
_ABBREV = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Inc|Ltd|Co|Corp|No|Nos|vs|etc|e\.g|i\.e|U\.S|Sec|Art|St|Jr|Sr|approx|Fig)|\b[A-Z]|(?<![\w.,$])\(?\d{1,3}(?:\.\d{1,3})*)\.$")


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrinks ``[start, end)`` so it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str, start: int = 0, end: int | None = None, max_chars: int = 1200) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` as offsets into ``text``; long runs are cut at ``max_chars``."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cur = start
    for m in _SENT_END.finditer(text, start, end):
        if _ABBREV.search(text, max(cur, m.start() - 8), m.start()):
            continue
        spans.append((cur, m.start()))
        cur = m.end()
    spans.append((cur, end))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        s, e = trim_span(text, s, e)
        while e - s > max_chars:
            cut = text.rfind(" ", s + max_chars // 2, s + max_chars)
            cut = cut if cut > s else s + max_chars
            out.append(trim_span(text, s, cut))
            s, e = trim_span(text, cut, e)
        if e > s:
            out.append((s, e))
    return out


STOPWORDS = frozenset("""
a an the and or but if of to in on at by for with from as is are was were be been being this that these those
it its it's their there they them he she his her we our you your i me my which who whom what when where why how
will would shall should may might can could do does did has have had not no any all each such than then so also
into upon under over about per other same more most less only very within without between
""".split())
"""Function words: in a lexical query they match nearly every passage, and in a claim they carry no
content a citation must support. Words that change what a claim says stay content words: ``must``
(an obligation), ``before`` / ``after`` / ``during`` / ``while`` (when), ``yes``."""


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """The lower-cased, lightly stemmed words of ``text`` that are not ``STOPWORDS`` (one letter ones dropped)."""
    return {_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS and len(w) > 1}


MIN_WORDS = 3
"""A sentence with fewer content words than this is too slight to be evidence."""


def relevance(question: str, q_vec: np.ndarray, texts: Sequence[str], vecs: np.ndarray) -> np.ndarray:
    """How well each of ``texts`` answers ``question``: 0.7 × the cosine of its unit vector (``vecs``, [N, D])
    with the question's (``q_vec``, [D]) + 0.3 × the share of the question's content words it contains."""
    q_words = content_words(question)
    overlap = np.array([len(q_words & content_words(t)) / len(q_words) if q_words else 0.0 for t in texts])
    return 0.7 * (vecs @ q_vec) + 0.3 * overlap


_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING_MARKERS = re.compile(r"(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")


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
