"""``EvidenceReader``: the trained section reader — which units of a section answer a question, and, for a
hypothesis, whether the section entails it, contradicts it or does not mention it.

It reads a whole section in one sparse-attention pass with the question as global tokens
(``encoders/reader_model.py``) and scores every reading unit (``encoders/units.py``: sentences and table rows).
The question-free lower layers of a section are computed once and kept (least recently used first out), so
the second question about a section costs only the upper layers.

Weights: ``data/reader/reader.safetensors`` (the trained upper layers and heads; the rest is the shipped
MiniLM) with ``data/reader/reader.json`` (settings, how it was trained, its validation figures). Nothing is
downloaded.

>>> reader = EvidenceReader()
>>> r = reader.read(section_text, [(0, 120), (121, 300)], "Receiving Party may share information with employees.")
>>> r.unit_scores                     # [2] in 0..1: how much each unit is evidence for the question
>>> r.label, r.confidence             # "Entailment", 0.83
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from encoders.reader_model import LABELS, ReaderArgs, ReaderModel, unit_matrix

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "data" / "reader"
WEIGHTS = "reader.safetensors"
META = "reader.json"


@dataclass(frozen=True)
class Reading:
    """What the reader found in one section for one question."""

    unit_scores: np.ndarray
    """[N] in 0..1, one per unit given: the probability that the unit is evidence for the question."""
    probs: np.ndarray
    """[3]: P(Entailment), P(Contradiction), P(NotMentioned) of the question read as a hypothesis."""
    truncated: bool = False
    """The section had more tokens than the reader's limit; units past it score 0."""

    @property
    def label(self) -> str:
        return LABELS[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))


class EvidenceReader:
    """The trained reader, loaded on first use (``warm_up`` is idempotent). ``model`` and ``tokenizer`` may be
    given (training evaluates the model it is training); otherwise the shipped weights are loaded."""

    def __init__(self, weights_dir: str | Path | None = None, *, impl: str = "auto", device: str = "cpu",
                 cache_sections: int = 64, model: ReaderModel | None = None, tokenizer=None) -> None:
        self.weights_dir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
        self.impl = impl
        self.device = device
        self.cache_sections = cache_sections
        self._model = model
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        self._lower: OrderedDict[str, tuple[torch.Tensor, list[tuple[int, int]], bool]] = OrderedDict()
        self.meta: dict = {}

    @staticmethod
    def available(weights_dir: str | Path | None = None) -> bool:
        """Whether trained weights are there to load."""
        return (Path(weights_dir) if weights_dir else WEIGHTS_DIR).joinpath(WEIGHTS).is_file()

    @staticmethod
    def trained_on(weights_dir: str | Path | None = None) -> frozenset[str]:
        """The documents the weights were trained on (``reader.json``'s ``data.*trained_on`` lists): an evaluation
        of the reader leaves them out."""
        meta = (Path(weights_dir) if weights_dir else WEIGHTS_DIR) / META
        if not meta.is_file():
            return frozenset()
        data = json.loads(meta.read_text()).get("data", {})
        return frozenset(d for k, v in data.items() if k.endswith("trained_on") and isinstance(v, list) for d in v)

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None and self._tokenizer is not None:
                return
            from transformers import AutoTokenizer

            from encoders.embedder import default_model_path

            base = default_model_path()
            if self._tokenizer is None:
                self._tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
                self._tokenizer.model_max_length = 1 << 20  # sections are read whole, past MiniLM's 512
            if self._model is None:
                self._model = self._load(base)

    def _load(self, base: Path) -> ReaderModel:
        from safetensors.torch import load_file

        weights = self.weights_dir / WEIGHTS
        if not weights.is_file():
            raise RuntimeError(f"no trained reader weights at {weights}; train them with "
                               "`python -m encoders.train_reader`, or turn the trained reader off in the config")
        self.meta = json.loads((self.weights_dir / META).read_text())
        args = ReaderArgs(**{**self.meta["args"], "impl": self.impl})
        model = ReaderModel.from_minilm(base, args)
        missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
        if unexpected or any(not k.startswith(("encoder.embeddings.", *(f"encoder.layers.{i}." for i in range(args.split))))
                             for k in missing):
            raise RuntimeError(f"{weights} does not fit this reader (unexpected {unexpected[:3]}, missing {missing[:3]})")
        return model.to(self.device).eval()

    @property
    def model(self) -> ReaderModel:
        self.warm_up()
        return self._model

    @property
    def tokenizer(self):
        self.warm_up()
        return self._tokenizer

    def _section(self, text: str, key: str | None) -> tuple[torch.Tensor, list[tuple[int, int]], bool]:
        """The section's lower-layer states, its tokens' character offsets, and whether it was cut."""
        if key is not None and key in self._lower:
            self._lower.move_to_end(key)
            return self._lower[key]
        tok = self.tokenizer
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        room = self.model.args.max_tokens - 64
        ids, offsets = enc["input_ids"][:room], [tuple(o) for o in enc["offset_mapping"][:room]]
        full = torch.tensor([[tok.cls_token_id, *ids, tok.sep_token_id]], device=self.device)
        with torch.inference_mode():
            low = self.model.lower(full)
        found = (low, offsets, len(enc["input_ids"]) > room)
        if key is not None and self.cache_sections:
            self._lower[key] = found
            while len(self._lower) > self.cache_sections:
                self._lower.popitem(last=False)
        return found

    def read(self, text: str, units: Sequence[tuple[int, int]], question: str, *, key: str | None = None) -> Reading:
        """Scores ``units`` (character spans of ``text``) against ``question``. ``key`` names ``text`` for the
        cache of lower-layer states (a section id: the text never changes under it)."""
        tok = self.tokenizer
        low, offsets, truncated = self._section(text, key)
        q = tok(question, add_special_tokens=True, truncation=True,
                max_length=self.model.args.question_tokens)["input_ids"]
        units_m = unit_matrix(offsets, list(units)).to(self.device)
        with torch.inference_mode():
            unit_logits, nli_logits = self.model(torch.tensor([q], device=self.device), low, units_m)
        return Reading(unit_scores=torch.sigmoid(unit_logits).float().cpu().numpy(),
                       probs=torch.softmax(nli_logits.float(), dim=-1).cpu().numpy(), truncated=truncated)


def combine(readings: Sequence[Reading], threshold: float = 0.5) -> tuple[str, float, int | None]:
    """A hypothesis's verdict over several sections of one document: the section most likely to mention it
    decides Entailment or Contradiction when its P(mentioned) reaches ``threshold``; otherwise NotMentioned
    with the confidence of the section least sure it is mentioned. Returns (label, confidence, deciding index)."""
    if not readings:
        return "NotMentioned", 1.0, None
    mentioned = [1.0 - float(r.probs[2]) for r in readings]
    best = int(np.argmax(mentioned))
    if mentioned[best] >= threshold:
        p = readings[best].probs
        label = LABELS[0] if p[0] >= p[1] else LABELS[1]
        return label, float(max(p[0], p[1]) / max(p[0] + p[1], 1e-9) * mentioned[best]), best
    return "NotMentioned", 1.0 - mentioned[best], None
