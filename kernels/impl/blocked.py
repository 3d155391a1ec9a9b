"""CPU backend: a blocked sliding window (linear in length) plus global tokens and random blocks merged by
log-sum-exp.

Queries are cut into blocks of ``b`` tokens, ``b`` a divisor of the one-sided window ``w``. The keys are laid
out once as blocks of ``b``, each led by the G global keys, so block n's band and global keys are the
``2w/b + 1`` key blocks around it: a strided view, not a copy, and one batched fused-attention call over
[blocks, b, (2w/b + 1)(G + b)] computes them under one mask and never forms the S x S matrix. Random blocks
(merged by log-sum-exp) come from ``_parts``; the rows of global queries are one fused call over all keys.
With a window covering the whole input this is plain dense attention.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from kernels.impl import _parts
from kernels.pattern import SparsePattern


def block_size_for(window: int) -> int:
    """Query block of the band: the largest divisor of the window up to 256 (the window itself when that
    divisor would be under 32), so every block's keys start on a block boundary (see ``band``)."""
    divisor = max(d for d in range(1, min(window, 256) + 1) if window % d == 0)
    return divisor if divisor >= min(window, 32) else window


@functools.lru_cache(maxsize=8)
@torch.inference_mode(False)  # a normal tensor, so that a cached mask built during inference serves autograd too
def _band_bias(length: int, window: int, block: int, global_tokens: tuple[int, ...], dtype: torch.dtype,
               device: str) -> torch.Tensor:
    """[1, nb, b, (2a + 1)(G + b)] additive mask for ``band``'s key layout: 0 where attended, -inf elsewhere.

    A query block's keys are 2a + 1 key blocks (a = window / b on each side), each led by the G global keys.
    A global key is attended in the first copy only, and only where it is outside the band, so no key is
    counted twice.
    """
    nb, a, G = -(-length // block), window // block, len(global_tokens)
    cols = (2 * a + 1) * (G + block)
    c = torch.arange(cols, device=device)
    j, o = c // (G + block), c % (G + block)
    q_pos = (torch.arange(nb, device=device).view(nb, 1, 1) * block + torch.arange(block, device=device).view(1, block, 1))
    key_pos = (torch.arange(nb, device=device).view(nb, 1, 1) - a + j.view(1, 1, -1)) * block + (o - G).view(1, 1, -1)
    allowed = (o >= G).view(1, 1, -1) & ((q_pos - key_pos).abs() <= window) & (key_pos >= 0) & (key_pos < length)
    if G:
        g_pos = torch.tensor(global_tokens, device=device)[o.clamp(max=G - 1)].view(1, 1, -1)
        allowed |= ((o < G) & (j == 0)).view(1, 1, -1) & ((q_pos - g_pos).abs() > window)
    bias = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill_(~allowed, float("-inf"))
    return bias.unsqueeze(0)


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
    """The sliding window plus the global keys outside it: (out [B, H, S, D], lse [B, H, S]).

    Queries are cut into blocks of b (a divisor of the window, so a = window / b is whole). The keys are laid
    out once as key blocks, each led by the G global keys, with a zero blocks at either end; query block n's
    keys are then the 2a + 1 key blocks from n, a strided view with no copy, and one fused call with one
    mask computes band and global keys for every block.
    """
    B, H, S, D = q.shape
    if window >= S - 1:  # the band is everything: dense attention
        return _fused(q, k, v, None, scale)
    b = block_size_for(window)
    a, nb, G = window // b, -(-S // b), len(global_tokens)
    pad = nb * b - S
    qb = (F.pad(q, (0, 0, 0, pad)) if pad else q).reshape(B * H, nb, b, D)
    index = torch.tensor(global_tokens, dtype=torch.long, device=q.device)

    def windows(t):  # [B, H, S, D] → a view [B*H, nb, (2a + 1)(G + b), D]
        blocks = t.new_empty(B * H, nb + 2 * a, G + b, D)
        blocks[:, :a].zero_()
        blocks[:, a + nb:].zero_()
        keys = (F.pad(t, (0, 0, 0, pad)) if pad else t).reshape(B * H, nb, b, D)
        blocks[:, a:a + nb, G:] = keys
        if G:
            blocks[:, :, :G] = t.reshape(B * H, S, D)[:, index].unsqueeze(1)
        return blocks.as_strided((B * H, nb, (2 * a + 1) * (G + b), D), (blocks.stride(0), (G + b) * D, D, 1))

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
        if pattern.global_tokens:  # global queries attend every key: one fused call over all of them
            index = list(pattern.global_tokens)
            rows = _fused(q[:, :, index], k, v, None, scale)[0].to(out.dtype)
            if out.requires_grad:  # autograd needs the band's output as it was: replace the rows out of place
                out = out.index_copy(2, torch.tensor(index, device=out.device), rows)
            else:
                out[:, :, index] = rows
    return out.to(q.dtype)
