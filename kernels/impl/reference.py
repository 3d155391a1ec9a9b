"""The oracle: dense masked softmax attention over the pattern's dense mask, chunked over queries.

Simple and exact on purpose: every other backend is tested against it. Memory is O(chunk x S) per head.
"""

from __future__ import annotations

import torch

from kernels.mask_ops import dense_mask
from kernels.pattern import SparsePattern


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: SparsePattern,
              scale: float | None = None, upcast: bool = True, chunk: int = 1024) -> torch.Tensor:
    """q, k, v: [B, H, S, D] → [B, H, S, D] in q's dtype.

    ``upcast=True`` computes in float32 (float64 inputs stay float64); ``upcast=False`` computes in the inputs'
    own dtype, which is how the tests measure the error a low-precision computation of the same math makes.
    """
    B, H, S, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    mask_mod = pattern.mask_mod(S, q.device)
    compute = q.dtype if not upcast or q.dtype == torch.float64 else torch.float32
    qc, kc, vc = (t.to(compute) for t in (q, k, v))
    out = torch.empty_like(q)
    for start in range(0, S, chunk):
        rows = min(chunk, S - start)
        allowed = dense_mask(mask_mod, rows, S, q.device, q_start=start)          # [rows, S]
        scores = (qc[:, :, start:start + rows] @ kc.transpose(-1, -2)) * scale  # [B, H, rows, S]
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out[:, :, start:start + rows] = (probs @ vc).to(q.dtype)
    return out
