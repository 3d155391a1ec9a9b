"""CPU backend: a blocked sliding window (linear in length) plus global tokens and random blocks merged by
log-sum-exp.

Queries are cut into blocks of ``b`` tokens; block n attends the ``b + 2w`` keys around it (a strided view of
the padded keys) and the global keys, so one batched fused-attention call over [blocks, b, b + 2w + G] computes
band and global keys under one mask and never forms the S x S matrix. Random blocks (merged by log-sum-exp)
and the rows of global queries are the small parts of ``_parts``. With a window covering the whole input this is plain dense attention.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from kernels.impl import _parts
from kernels.pattern import SparsePattern


def block_size_for(window: int) -> int:
    """Query block of the band: about the window, so each block reads 3 blocks' worth of keys."""
    return max(32, min(256, window))


@functools.lru_cache(maxsize=16)
def _band_bias(length: int, window: int, block: int, global_tokens: tuple[int, ...], dtype: torch.dtype,
               device: str) -> torch.Tensor:
    """[1, nb, b, b + 2w + G] additive mask: 0 where attended, -inf elsewhere.

    Columns: the block's band keys, then the G global keys (attended wherever they are outside the band, so
    that no key is counted twice).
    """
    nb = -(-length // block)
    r = torch.arange(block, device=device).view(1, block, 1)
    c = torch.arange(block + 2 * window, device=device).view(1, 1, -1)
    key_pos = torch.arange(nb, device=device).view(nb, 1, 1) * block - window + c
    allowed = (c - r >= 0) & (c - r <= 2 * window) & (key_pos >= 0) & (key_pos < length)
    if global_tokens:
        q_pos = torch.arange(nb * block, device=device).view(nb, block, 1)
        g = torch.tensor(global_tokens, device=device).view(1, 1, -1)
        allowed = torch.cat([allowed.expand(nb, block, -1), (q_pos - g).abs() > window], dim=-1)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, float("-inf"))
    return bias.expand(nb, block, -1).unsqueeze(0).contiguous()


def _fused(q, k, v, bias, scale) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused attention with its log-sum-exp: q [N, M, L, D], k/v [N, M, T, D], bias [1, M, L, T] or None."""
    if q.dtype in (torch.float32, torch.bfloat16, torch.float16) and q.device.type == "cpu":
        op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
        if op is not None:
            return op(q, k, v, attn_mask=bias, scale=scale)
    scores = (q.float() @ k.float().transpose(-1, -2)) * scale
    if bias is not None:
        scores = scores + bias.float()
    return _parts.masked_softmax_part(scores, torch.ones((), dtype=torch.bool, device=q.device), v.float())


def band(q, k, v, window: int, scale: float, global_tokens: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """The sliding window plus the global keys outside it: (out [B, H, S, D], lse [B, H, S])."""
    B, H, S, D = q.shape
    if window >= S - 1:  # the band is everything: dense attention
        return _fused(q, k, v, None, scale)
    b = block_size_for(window)
    nb = -(-S // b)
    qb = F.pad(q, (0, 0, 0, nb * b - S)).view(B * H, nb, b, D)
    span = b + 2 * window
    index = torch.tensor(global_tokens, dtype=torch.long, device=q.device)

    def windows(t):  # [B, H, S, D] → [B*H, nb, b + 2w + G, D]
        padded = F.pad(t, (0, 0, window, nb * b - S + window)).view(B * H, nb * b + 2 * window, D)
        local = padded.unfold(1, span, b).transpose(-1, -2)
        if not global_tokens:
            return local.contiguous()
        extra = t.reshape(B * H, S, D)[:, index].unsqueeze(1).expand(B * H, nb, len(global_tokens), D)
        return torch.cat([local, extra], dim=2)

    bias = _band_bias(S, window, b, tuple(global_tokens), q.dtype, str(q.device))
    out, lse = _fused(qb, windows(k), windows(v), bias, scale)
    return out.reshape(B, H, nb * b, D)[:, :, :S], lse.reshape(B, H, nb * b)[:, :, :S]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: SparsePattern,
              scale: float | None = None) -> torch.Tensor:
    """q, k, v: [B, H, S, D] → [B, H, S, D] in q's dtype."""
    S, D = q.shape[2], q.shape[3]
    pattern.check(S)
    scale = D ** -0.5 if scale is None else scale
    covered = pattern.window >= S - 1
    parts = [band(q, k, v, pattern.window, scale, () if covered else pattern.global_tokens)]
    if not covered:
        extra = _parts.random_block_part(q, k, v, pattern, scale)
        if extra is not None:
            parts.append(extra)
    if len(parts) == 1:
        out = parts[0][0]
    else:
        out, _ = _parts.merge(parts)
    if not covered:
        rows = _parts.global_rows(q, k, v, pattern, scale)
        if rows is not None:
            out[:, :, list(pattern.global_tokens)] = rows.to(out.dtype)
    return out.to(q.dtype)
