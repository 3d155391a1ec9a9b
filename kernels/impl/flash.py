"""flash-attn backend: the band through flash-attn's ``window_size``, the rest merged by log-sum-exp.

The band (|i - j| <= w) is one ``flash_attn_func(window_size=(w, w))`` call that also returns its log-sum-exp;
global keys outside the band and random blocks are the small dense parts of ``_parts``; the rows of global
queries are a second flash call over all keys, which overwrites them. Needs CUDA, flash-attn and fp16/bf16.
"""

from __future__ import annotations

import torch

from kernels.impl import _parts
from kernels.pattern import SparsePattern


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: SparsePattern,
              scale: float | None = None) -> torch.Tensor:
    """q, k, v: [B, H, S, D] (fp16 or bf16, CUDA) → [B, H, S, D]."""
    from flash_attn import flash_attn_func

    if q.dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"the flash backend takes float16 or bfloat16 tensors, got {q.dtype}; "
                         "use impl='triton' or 'flex' for float32")
    S, D = q.shape[2], q.shape[3]
    pattern.check(S)
    scale = D ** -0.5 if scale is None else scale
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))                      # [B, S, H, D], flash's layout
    window = min(pattern.window, S)
    out, lse, _ = flash_attn_func(qt, kt, vt, softmax_scale=scale, window_size=(window, window),
                                  return_attn_probs=True)
    parts = [(out.transpose(1, 2), lse[:, :, :S].float())]                   # lse: [B, H, S]
    if pattern.window < S - 1:
        for extra in (_parts.global_key_part(q, k, v, pattern, scale), _parts.random_block_part(q, k, v, pattern, scale)):
            if extra is not None:
                parts.append(extra)
    result = parts[0][0].float() if len(parts) == 1 else _parts.merge(parts)[0]
    if pattern.global_tokens and pattern.window < S - 1:
        index = torch.tensor(pattern.global_tokens, device=q.device)
        rows = flash_attn_func(qt[:, index], kt, vt, softmax_scale=scale)   # [B, G, H, D]
        result[:, :, index] = rows.transpose(1, 2).float()
    return result.to(q.dtype)
