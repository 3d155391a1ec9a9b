"""``LongEncoder``: a whole section in one forward pass → token embeddings and mean-pooled span embeddings.

The question's tokens are prepended as global tokens ([CLS] question [SEP] section [SEP]), so every section
token sees the question and the question sees the whole section; the section's tokens get a sliding window
(+ optional BigBird random blocks). Spans are sentences by default, or any character spans of the section.
Nothing loads at import time; ``warm_up`` (idempotent) loads the tokenizer and the weights.

>>> enc = LongEncoder(window=256)
>>> out = enc.encode(section_text, query="How can the agreement be terminated?")
>>> out.span_embeddings.shape        # [n_sentences, 384], one row per out.spans[i] = (start, end) in section_text
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.text import sentence_spans


@dataclass(frozen=True)
class LongEncoding:
    """What ``LongEncoder.encode`` returns for one section (float32 arrays)."""

    token_embeddings: np.ndarray
    """[T, dim]: the section's tokens (question and special tokens excluded)."""
    token_offsets: np.ndarray
    """[T, 2] int: each token's character span in the section text."""
    spans: list[tuple[int, int]]
    """Character spans pooled into ``span_embeddings`` (sentences unless given)."""
    span_embeddings: np.ndarray
    """[N, dim]: mean of the token embeddings overlapping each span (zeros where a span has no token)."""
    section_embedding: np.ndarray
    """[dim]: mean over all section tokens."""
    query_embedding: np.ndarray | None
    """[dim]: mean over the question's tokens, when a question was given."""
    truncated: bool
    """True when the section had more tokens than fit; tokens past ``max_tokens`` were dropped."""


class LongEncoder:
    """Sparse-attention encoder over whole sections, built from all-MiniLM-L6-v2.

    ``window`` is one-sided (256 = HF Longformer's attention_window 512); ``random_blocks`` > 0 adds BigBird
    random blocks of ``block_size`` tokens; ``impl`` picks the attention backend (see kernels.sparse_attention).
    """

    def __init__(self, model_path: str | Path | None = None, *, window: int = 256, random_blocks: int = 0,
                 block_size: int = 64, seed: int = 0, max_tokens: int = 65536, impl: str = "auto",
                 device: str = "cpu", dtype: str = "float32") -> None:
        if window < 0:
            raise ValueError("window must be >= 0 tokens")
        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"unknown encoder dtype {dtype!r}; use float32, bfloat16 or float16")
        self.model_path = Path(model_path) if model_path else None
        self.overrides = dict(window=window, random_blocks=random_blocks, block_size=block_size, seed=seed,
                              max_positions=max_tokens, impl=impl)
        self.max_tokens = max_tokens
        self.device = device
        self.dtype = dtype
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._model is None:
                from transformers import AutoTokenizer

                from encoders.embedder import default_model_path
                from encoders.long_model import LongEncoderModel

                path = self.model_path or default_model_path()
                self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                self._tokenizer.model_max_length = self.max_tokens  # the positions are extended
                self._model = LongEncoderModel.from_pretrained(path, **self.overrides).to(
                    self.device, dtype=getattr(torch, self.dtype))

    @property
    def model(self):
        self.warm_up()
        return self._model

    @property
    def tokenizer(self):
        self.warm_up()
        return self._tokenizer

    def encode(self, section_text: str, query: str | None = None,
               spans: list[tuple[int, int]] | None = None) -> LongEncoding:
        """Encode one section (optionally with a question as global tokens) in one forward pass."""
        tok = self.tokenizer
        section = tok(section_text, add_special_tokens=False, return_offsets_mapping=True)
        query_ids = tok(query, add_special_tokens=False)["input_ids"] if query else []
        prefix = [tok.cls_token_id, *query_ids, tok.sep_token_id] if query_ids else [tok.cls_token_id]
        room = self.max_tokens - len(prefix) - 1
        if room < 1:
            raise ValueError(f"the question takes {len(query_ids)} tokens and leaves no room in {self.max_tokens}")
        section_ids = section["input_ids"][:room]
        offsets = np.asarray(section["offset_mapping"][:room], dtype=np.int64).reshape(-1, 2)
        ids = torch.tensor([prefix + section_ids + [tok.sep_token_id]], device=self.device)
        with torch.inference_mode():
            hidden = self.model(ids, global_tokens=tuple(range(len(prefix))))[0].float().cpu().numpy()
        tokens = hidden[len(prefix): len(prefix) + len(section_ids)]
        spans = sentence_spans(section_text) if spans is None else [(int(a), int(b)) for a, b in spans]
        return LongEncoding(
            token_embeddings=tokens,
            token_offsets=offsets,
            spans=spans,
            span_embeddings=pool_spans(tokens, offsets, spans),
            section_embedding=tokens.mean(axis=0) if len(tokens) else np.zeros(hidden.shape[1], np.float32),
            query_embedding=hidden[1: 1 + len(query_ids)].mean(axis=0) if query_ids else None,
            truncated=len(section["input_ids"]) > room,
        )


def pool_spans(tokens: np.ndarray, offsets: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    """Mean of the token rows whose character span overlaps each span: [N, dim] (zeros for an empty span)."""
    out = np.zeros((len(spans), tokens.shape[1]), dtype=np.float32)
    if not len(tokens):
        return out
    starts, ends = offsets[:, 0], offsets[:, 1]
    for i, (start, end) in enumerate(spans):
        inside = (starts < end) & (ends > start)
        if inside.any():
            out[i] = tokens[inside].mean(axis=0)
    return out
