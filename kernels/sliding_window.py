"""Sliding-window (local band) attention, as in Longformer.

Beltagy, Peters, Cohan, "Longformer: The Long-Document Transformer", arXiv:2004.05150 (2020), §3.1.
Each token attends the ``window`` tokens on either side of it and itself: |q - k| <= window, so
HF's ``attention_window=512`` is ``window=256`` here.
"""

from __future__ import annotations

from kernels.mask_ops import MaskMod


def generate_sliding_window(window: int) -> MaskMod:
    """Predicate of the band |q_idx - kv_idx| <= ``window`` (one-sided width, in tokens)."""
    if window < 0:
        raise ValueError(f"the sliding window must be >= 0 tokens, got {window}")

    def sliding_window(b, h, q_idx, kv_idx):
        return (q_idx - kv_idx).abs() <= window

    return sliding_window
