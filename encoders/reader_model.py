"""The section reader as modules: the long encoder split in two, and the heads that read its output.

Built on ``LongEncoderModel`` (MiniLM weights, sliding-window attention):

* the lower ``split`` layers read the section **without** the question (its tokens: ``[CLS] section [SEP]``),
  so their output is the same for every question and is computed once per section (and cached);
* the lower layers also read the question alone (``[CLS] question [SEP]``, a few tokens);
* the upper layers read both together: the question's states as global tokens in front of the section's,
  so every section token sees the question and the question sees the whole section;
* the unit head scores every reading unit (a sentence or a table row: the mean of its tokens' upper
  states) against the question (the mean of its tokens' states): a scaled cosine plus a learned
  correction from ``[u, q, u·q]``;
* the verdict head decides Entailment / Contradiction / NotMentioned for a hypothesis from the question,
  the units pooled by their evidence scores, the best unit's score and the pool's cosine with the question.

Only the upper layers and the heads are trained (``encoders/train_reader.py``); the lower layers and the
embeddings stay MiniLM's, so the trained part is small enough to ship (a few MB).

>>> model = ReaderModel.from_minilm(path, split=4)
>>> low = model.lower(section_ids)                              # [1, S, 384], cacheable per section
>>> units, nli = model(question_ids, low, unit_index)          # [N] logits, [3] logits
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from encoders.long_model import LongEncoderModel

LABELS = ("Entailment", "Contradiction", "NotMentioned")


@dataclass(frozen=True)
class ReaderArgs:
    split: int = 4
    """Lower layers (question-free, frozen); the rest of the encoder's layers are upper (trained)."""
    window: int = 256
    impl: str = "blocked"
    """Attention backend; training needs a differentiable one (``blocked``, ``reference``, ``flex``)."""
    max_tokens: int = 32768
    question_tokens: int = 128
    """The question's (or hypothesis's) tokens read as global tokens, [CLS] and [SEP] included; longer ones are cut
    (FinanceBench's questions carry up to 100 words of instructions)."""


class Heads(nn.Module):
    """Unit and NLI heads over unit-normalized states. A unit's logit starts as a scaled cosine between the
    unit and the question (MiniLM's own relevance: mean-pooled states, as the sentence embedder pools them)
    and the MLP learns a correction from zero, so the question shapes the scores from the first step."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.cos_scale = nn.Parameter(torch.tensor(10.0))
        self.cos_bias = nn.Parameter(torch.tensor(-5.0))
        self.unit = nn.Sequential(nn.Linear(3 * dim, dim), nn.GELU(), nn.Linear(dim, 1))
        nn.init.zeros_(self.unit[-1].weight)
        nn.init.zeros_(self.unit[-1].bias)
        self.nli = nn.Sequential(nn.Linear(3 * dim + 2, dim), nn.GELU(), nn.Linear(dim, len(LABELS)))

    def units(self, u: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """u [N, D], q [D], both unit-normalized → [N] logits."""
        qn = q.expand_as(u)
        cos = u @ q
        return self.cos_scale * cos + self.cos_bias + self.unit(torch.cat([u, qn, u * qn], dim=-1)).squeeze(-1)

    def verdict(self, q: torch.Tensor, e: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
        """q, e [D] (question, evidence-weighted units, unit-normalized), best [1] → [3] logits."""
        return self.nli(torch.cat([q, e, q * e, best, (q @ e).unsqueeze(0)]))


class ReaderModel(nn.Module):
    def __init__(self, encoder: LongEncoderModel, args: ReaderArgs) -> None:
        super().__init__()
        if not 0 <= args.split < encoder.args.n_layer:
            raise ValueError(f"split must leave at least one upper layer of {encoder.args.n_layer}")
        self.encoder = encoder
        self.args = args
        self.heads = Heads(encoder.args.dim)

    @classmethod
    def from_minilm(cls, path: str | Path, args: ReaderArgs | None = None) -> ReaderModel:
        args = args or ReaderArgs()
        encoder = LongEncoderModel.from_pretrained(path, window=args.window, impl=args.impl,
                                                   max_positions=args.max_tokens)
        model = cls(encoder, args)
        for p in model.frozen_parameters():
            p.requires_grad_(False)
        return model

    def frozen_parameters(self):
        yield from self.encoder.embeddings.parameters()
        for layer in self.encoder.layers[: self.args.split]:
            yield from layer.parameters()

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The weights training changes (upper layers and heads): what is shipped."""
        keep = {f"encoder.layers.{i}." for i in range(self.args.split, self.encoder.args.n_layer)} | {"heads."}
        return {k: v for k, v in self.state_dict().items() if any(k.startswith(p) for p in keep)}

    def lower(self, ids: torch.Tensor, grad: bool = False) -> torch.Tensor:
        """ids [B, S] (``[CLS] text [SEP]``) → the lower layers' states [B, S, D], no question; no gradient unless
        ``grad`` (the frozen layers stay frozen: their parameters' ``requires_grad`` decides what is trained)."""
        enc = self.encoder
        with torch.enable_grad() if grad else torch.no_grad():
            pos = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
            x = enc.embeddings(ids, torch.zeros_like(ids), pos)
            pattern = enc.args.pattern((0,))
            for layer in enc.layers[: self.args.split]:
                x = layer(x, pattern, enc.args.impl)
        return x

    def upper(self, question: torch.Tensor, section: torch.Tensor) -> torch.Tensor:
        """question [B, Q, D] and section [B, S, D] lower states → [B, Q + S, D], the question global."""
        enc = self.encoder
        x = torch.cat([question, section], dim=1)
        pattern = enc.args.pattern(tuple(range(question.shape[1])))
        for layer in enc.layers[self.args.split:]:
            x = layer(x, pattern, enc.args.impl)
        return x

    def forward(self, question_ids: torch.Tensor, section_low: torch.Tensor, units: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """question_ids [1, Q] (``[CLS] question [SEP]``), section_low [1, S, D] (``lower`` of ``[CLS] section
        [SEP]``), units [N, S] (row i: 1/len over unit i's token positions of the section, else 0)
        → unit logits [N], NLI logits [3]."""
        q_low = self.lower(question_ids)
        out = self.upper(q_low, section_low)[0]                       # [Q + S, D]
        n_q = question_ids.shape[1]
        q = F.normalize(out[:n_q].mean(dim=0), dim=-1)                # the question, mean-pooled
        u = F.normalize(units @ out[n_q:], dim=-1)                    # [N, D] units, mean-pooled
        unit_logits = self.heads.units(u, q)
        if len(unit_logits):
            e = F.normalize(F.softmax(unit_logits, dim=0) @ u, dim=-1)
            best = unit_logits.max().unsqueeze(0)
        else:
            e, best = torch.zeros_like(q), q.new_full((1,), -10.0)
        return unit_logits, self.heads.verdict(q, e, best)


def unit_matrix(offsets: list[tuple[int, int]], units: list[tuple[int, int]], shift: int = 1) -> torch.Tensor:
    """[N, S]: row i averages the tokens whose character span (``offsets``, of the section's tokens without
    special tokens, in order) overlaps unit i; ``shift`` columns for the leading ``[CLS]``, one more at the end
    for ``[SEP]``."""
    import numpy as np

    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    m = torch.zeros(len(units), len(off) + shift + 1)
    for i, (s, e) in enumerate(units):
        lo = int(np.searchsorted(off[:, 1], s, side="right"))   # first token ending after s
        hi = int(np.searchsorted(off[:, 0], e, side="left"))    # first token starting at or after e
        cols = [j + shift for j in range(lo, hi) if off[j, 1] > off[j, 0]]
        if cols:
            m[i, cols] = 1.0 / len(cols)
    return m
