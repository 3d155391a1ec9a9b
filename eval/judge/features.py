"""Per-claim alignment features for the hallucination judge: how much of a claim the sources carry.

The pipeline's verifier (``graphs/verifier.py``) grades a claim against the spans it cites with a fixed
formula. The judge is built differently so the system does not grade itself: it aligns each claim
to its best-matching source sentences (MiniLM cosine over every source sentence and adjacent pair),
measures what that alignment leaves uncovered — content words, word pairs, numbers, names,
negation, modality and quantifiers — and lets a head trained on human labels
(``head.py``) weigh the evidence.

>>> fz = ClaimFeaturizer()
>>> x = fz.features([(["The fee is $5."], ["The fee is $5 per month."])])   # [1, len(FEATURE_NAMES)]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

Embed = Callable[[list[str]], np.ndarray]

FEATURE_NAMES: tuple[str, ...] = (
    "cos_best_sentence",      # max cosine of the claim with one source sentence
    "cos_best_window",        # max cosine with two adjacent sentences (mean of their unit vectors)
    "cos_top3_mean",          # mean of the three best sentence cosines
    "words_in_window",        # share of claim content words in the three best-aligned sentences
    "words_in_sources",       # share of claim content words anywhere in the sources
    "novel_words_log",        # log1p(count of claim content words absent from the sources)
    "pairs_in_sources",       # share of adjacent claim word pairs that occur adjacently in the sources
    "longest_copied_run",     # longest run of claim tokens copied verbatim, as a share of the claim
    "has_numbers",            # the claim states a number, amount, percentage or year
    "numbers_missing",        # share of the claim's numbers absent from the sources
    "numbers_missing_window",  # … absent from the best-aligned sentences
    "names_missing",          # share of the claim's names (capitalised words, acronyms) absent from the sources
    "novel_names_log",        # log1p(count of such names)
    "negation_flip",          # negation in the claim and in its best-aligned sentence disagree
    "modality_novel",         # a modal (may, must, shall, …) in the claim that the aligned text lacks
    "quantifier_novel",       # a quantifier (only, all, never, …) in the claim that the aligned text lacks
    "claim_length_log",       # log1p(count of claim content words)
    "token_align_mean",       # mean over claim word pieces of the best contextual-token cosine in the sources
    "token_align_min",        # the worst-aligned claim word piece's best cosine
    "token_unaligned_share",  # share of claim word pieces whose best cosine is below 0.6
)

# the judge's own list, not pipeline.text.STOPWORDS (which holds modals, quantifiers and negations: judge features)
_STOP = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being this that these those it "
    "its their there they them he she his her we our you your i me my which who whom what when where why how will "
    "would do does did has have had so also into upon over about per than then very within between after before "
    "while during up out off".split()
)
_NEGATION = frozenset("not no never none neither nor without cannot can't won't doesn't isn't aren't wasn't "
                      "didn't don't shouldn't wouldn't couldn't hasn't haven't hadn't nothing nobody".split())
_MODALS = frozenset("may might must shall should can could would will need required permitted allowed".split())
_QUANTIFIERS = frozenset("only all every each any some never always solely exclusively entire entirely whole "
                         "most majority minority several many few first last".split())
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’\-]*|\d[\d,]*(?:\.\d+)?%?")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_NUMBER_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
                 "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20",
                 "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "ninety": "90", "hundred": "100"}


def _norm(word: str) -> str:
    w = word.lower().replace("’", "'").strip("'-")
    w = w.removesuffix("'s")
    for suffix in ("ing", "ies", "ed", "es", "ly", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def _tokens(text: str) -> list[str]:
    return [_norm(t) for t in _TOKEN.findall(text)]


def _content(tokens: Sequence[str]) -> list[str]:
    return [t for t in tokens if t not in _STOP and t not in _NEGATION and len(t) > 1]


def _numbers(text: str) -> set[str]:
    """Numbers as values: ``1,234.50`` → ``1234.5``; spelled-out small numbers count too."""
    out = set()
    for m in _NUMBER.findall(text):
        n = m.replace(",", "")
        if "." in n:
            n = n.rstrip("0").rstrip(".")
        out.add(n)
    out.update(_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS)
    return out


def _names(text: str) -> set[str]:
    """Capitalised words that do not open a sentence, and acronyms: the claim's named things."""
    out = set()
    for m in re.finditer(r"\b[A-Z][A-Za-z'’\-]+", text):
        before = text[: m.start()].rstrip()
        opens_sentence = not before or before[-1] in ".!?:\"'“(\n"
        word = m.group().lower().removesuffix("'s").removesuffix("’s")
        if (not opens_sentence or m.group().isupper()) and word not in _STOP and len(word) > 1:
            out.add(word)
    return out


def _longest_run(claim: list[str], source_ngrams: set[tuple[str, ...]], max_n: int) -> int:
    best = 0
    for n in range(1, min(len(claim), max_n) + 1):
        if any(tuple(claim[i:i + n]) in source_ngrams for i in range(len(claim) - n + 1)):
            best = n
        else:
            break
    return best


def split_sentences(text: str) -> list[str]:
    from pipeline.text import sentence_spans

    return [text[s:e] for s, e in sentence_spans(text, max_chars=600)]


class ClaimFeaturizer:
    """Features of claims against their sources.

    Every distinct text is encoded once per featurizer (one batched MiniLM pass gives both its
    sentence vector and its contextual token vectors) and cached for the run.
    ``embedder``: a ``pipeline.Embedder`` to share; one is made on first use otherwise.
    """

    max_run = 12
    unaligned_below = 0.6
    max_cached = 20_000
    """Texts kept between calls (a long evaluation run would otherwise hold every context it saw)."""

    def __init__(self, embedder=None) -> None:
        self._embedder = embedder
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._content_ids: np.ndarray | None = None

    def _encode(self, texts: Sequence[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if not todo:
            return
        if self._embedder is None:
            from pipeline import Embedder

            self._embedder = Embedder(batch_size=64)
        model = self._embedder.model
        if self._content_ids is None:
            vocab = model.tokenizer.convert_ids_to_tokens(list(range(model.tokenizer.vocab_size)))
            self._content_ids = np.array([bool(re.fullmatch(r"(##)?[a-z0-9]+", t)) and t not in _STOP for t in vocab])
        for text, out in zip(todo, model.encode(todo, batch_size=64, output_value=None, show_progress_bar=False)):
            vec = out["sentence_embedding"].float().numpy()
            ids = out["input_ids"].numpy()
            tok = out["token_embeddings"].float().numpy()[self._content_ids[ids]]          # [T content, D]
            tok /= np.maximum(np.linalg.norm(tok, axis=1, keepdims=True), 1e-6)
            self._cache[text] = (vec / max(float(np.linalg.norm(vec)), 1e-6), tok.astype(np.float16))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``texts`` (N) → [N, D] unit sentence vectors."""
        self._encode(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._cache[t][0] for t in texts]).astype(np.float32)

    def tokens(self, text: str) -> np.ndarray:
        """[T, D] unit contextual vectors of ``text``'s content word pieces (float16)."""
        self._encode([text])
        return self._cache[text][1]

    def features(self, items: Sequence[tuple[Sequence[str], Sequence[str]]]) -> np.ndarray:
        """``items``: (claims, sources) pairs → [total claims, len(FEATURE_NAMES)] float32, claims in order."""
        return self.features_and_checks(items)[0]

    def features_and_checks(self, items: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[np.ndarray, list[str]]:
        """The features, and per claim the precise check it fails (``""`` when none):

        * a number in the claim appears nowhere in the sources;
        * the claim matches its best-aligned sentences word for word but its negation differs;
        * the claim names something the sources never mention where its best-aligned sentence names
          something the claim does not (one name swapped for another).

        Human labels seldom turn on these errors (FaithBench's are subtler), so a head trained on them
        alone forgives them; the judge applies them on top of the head (``apply_checks``).
        """
        if len(self._cache) > self.max_cached:
            self._cache.clear()
        split = [[s for src in sources for s in split_sentences(src)] for _, sources in items]
        self.embed([t for (claims, _), sents in zip(items, split) for t in (*claims, *sents)])
        rows, checks = [], []
        for (claims, sources), sents in zip(items, split):
            for row, check in self._item_features(list(claims), list(sources), sents):
                rows.append(row)
                checks.append(check)
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), len(FEATURE_NAMES)), checks

    def _item_features(self, claims: list[str], sources: list[str], sents: list[str]) -> list[tuple[list[float], str]]:
        if not claims:
            return []
        source_text = "\n".join(sources)
        src_tokens = _tokens(source_text)
        src_words = set(_content(src_tokens))
        src_pairs = set(zip(src_tokens, src_tokens[1:]))
        src_ngrams = {tuple(src_tokens[i:i + n]) for n in range(1, self.max_run + 1) for i in range(len(src_tokens) - n + 1)}
        src_numbers = _numbers(source_text)
        src_lower = set(re.findall(r"[a-z][a-z'’\-]+", source_text.lower()))
        src_tok = np.vstack([self.tokens(t) for t in sents] or [np.zeros((0, 384), np.float16)]).astype(np.float32)
        cvecs = self.embed(claims)
        if sents:
            svecs = self.embed(sents)
            sims = cvecs @ svecs.T                                       # [C, S]
            if len(sents) > 1:
                wvecs = svecs[:-1] + svecs[1:]
                wvecs /= np.maximum(np.linalg.norm(wvecs, axis=1, keepdims=True), 1e-6)
                wsims = cvecs @ wvecs.T                                  # [C, S-1]
            else:
                wsims = sims
        else:
            sims = wsims = np.zeros((len(claims), 1), dtype=np.float32)
        rows = []
        for i, claim in enumerate(claims):
            order = np.argsort(-sims[i])[:3]
            window = " ".join(sents[j] for j in order) if sents else ""
            best = sents[int(order[0])] if sents else ""
            tokens = _tokens(claim)
            words = _content(tokens)
            wset = set(words)
            win_words = set(_content(_tokens(window)))
            pairs = list(zip(tokens, tokens[1:]))
            nums = _numbers(claim)
            names = _names(claim)
            novel_names = {n for n in names if n not in src_lower and _norm(n) not in src_words}
            claim_lower = {t.lower() for t in _TOKEN.findall(claim)}
            win_lower = {t.lower() for t in _TOKEN.findall(window)}
            best_lower = {t.lower() for t in _TOKEN.findall(best)}
            ctok = self.tokens(claim).astype(np.float32)
            if len(ctok) and len(src_tok):
                align = (ctok @ src_tok.T).max(axis=1)                      # [claim pieces]
            else:
                align = np.zeros(max(len(ctok), 1), dtype=np.float32)
            words_in_window = len(wset & win_words) / len(wset) if wset else 1.0
            negation_flip = bool(claim_lower & _NEGATION) != bool(best_lower & _NEGATION)
            swapped = _names(best) - names - {n for n in _names(best) if n in claim.lower()}
            if nums - src_numbers:
                check = f"number {', '.join(sorted(nums - src_numbers))} not in the sources"
            elif negation_flip and words_in_window >= 0.999:
                check = "negation differs from the best-aligned source sentence"
            elif novel_names and swapped and words_in_window >= 0.6:
                check = f"{', '.join(sorted(novel_names))} not in the sources (they say {', '.join(sorted(swapped))})"
            else:
                check = ""
            rows.append(([
                float(sims[i].max()),
                float(wsims[i].max()),
                float(np.sort(sims[i])[::-1][:3].mean()),
                words_in_window,
                len(wset & src_words) / len(wset) if wset else 1.0,
                math.log1p(len(wset - src_words)),
                sum(p in src_pairs for p in pairs) / len(pairs) if pairs else 1.0,
                _longest_run(tokens, src_ngrams, self.max_run) / max(min(len(tokens), self.max_run), 1),
                float(bool(nums)),
                len(nums - src_numbers) / len(nums) if nums else 0.0,
                len(nums - _numbers(window)) / len(nums) if nums else 0.0,
                len(novel_names) / len(names) if names else 0.0,
                math.log1p(len(novel_names)),
                float(negation_flip),
                float(bool((claim_lower & _MODALS) - win_lower)),
                float(bool((claim_lower & _QUANTIFIERS) - win_lower)),
                math.log1p(len(words)),
                float(align.mean()),
                float(align.min()),
                float((align < self.unaligned_below).mean()),
            ], check))
        return rows


def apply_checks(scores: np.ndarray, checks: Sequence[str]) -> np.ndarray:
    """A claim failing a precise check moves into the upper half of the scale, keeping its order there."""
    scores = np.asarray(scores, dtype=np.float64)
    failed = np.array([bool(c) for c in checks], dtype=bool)
    return np.where(failed, 0.5 + 0.5 * scores, scores)
