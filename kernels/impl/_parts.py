"""Pieces shared by the backends that split a pattern into parts and merge them by log-sum-exp.

A part is (out, lse): the softmax-attention output over a subset of the keys, [B, H, S, D] float32, and the
log-sum-exp of its scores, [B, H, S] (-inf where the subset is empty for that query). The band comes from a
fast kernel; global keys and random blocks outside the band are small dense products here. (The rows of
global queries attend every key; each backend computes them with its own fused call and overwrites the
merged output.) Every key is in exactly one part, so the merge is the exact softmax over the union.
"""

from __future__ import annotations

import torch

from kernels.pattern import SparsePattern


def masked_softmax_part(scores: torch.Tensor, allowed: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """scores [..., L, M] float32, allowed broadcastable bool, values [..., M, D] → (out [..., L, D], lse [..., L])."""
    scores = scores.masked_fill(~allowed, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    probs = torch.exp(scores - safe[..., None])
    return probs @ values, lse


def global_key_part(q, k, v, pattern: SparsePattern, scale: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Every query against the global keys outside its band. q, k, v: [B, H, S, D]."""
    if not pattern.global_tokens:
        return None
    S = q.shape[2]
    index = torch.tensor(pattern.global_tokens, device=q.device)
    kg, vg = k[:, :, index].float(), v[:, :, index].float()                        # [B, H, G, D]
    scores = (q.float() @ kg.transpose(-1, -2)) * scale                              # [B, H, S, G]
    pos = torch.arange(S, device=q.device)
    outside_band = (pos[:, None] - index[None, :]).abs() > pattern.window            # [S, G]
    return masked_softmax_part(scores, outside_band, vg)


def random_block_part(q, k, v, pattern: SparsePattern, scale: float) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Each query block against its random key blocks, minus keys in the band or global. q, k, v: [B, H, S, D]."""
    table = pattern.random_table(q.shape[2], q.device)
    if table is None:
        return None
    B, H, S, D = q.shape
    bs, nb = pattern.block_size, table.shape[0]
    per = int(table[0].sum())
    chosen = table.nonzero()[:, 1].view(nb, per)                                      # [nb, r]
    pad = nb * bs - S
    qp, kp, vp = (torch.nn.functional.pad(t.float(), (0, 0, 0, pad)).view(B, H, nb, bs, D) for t in (q, k, v))
    kr = kp[:, :, chosen].reshape(B, H, nb, per * bs, D)                              # [B, H, nb, r*bs, D]
    vr = vp[:, :, chosen].reshape(B, H, nb, per * bs, D)
    q_pos = torch.arange(nb * bs, device=q.device).view(nb, bs, 1)
    k_pos = (chosen[:, :, None] * bs + torch.arange(bs, device=q.device)).view(nb, 1, per * bs)
    is_global = torch.zeros(nb * bs + 1, dtype=torch.bool, device=q.device)
    is_global[:S] = pattern.is_global(S, q.device)
    allowed = ((q_pos - k_pos).abs() > pattern.window) & (k_pos < S) & ~is_global[k_pos.clamp(max=nb * bs)]
    out, lse = masked_softmax_part((qp @ kr.transpose(-1, -2)) * scale, allowed, vr)
    return out.view(B, H, nb * bs, D)[:, :, :S], lse.view(B, H, nb * bs)[:, :, :S]


def merge(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact softmax over the union of disjoint key subsets: (out [B, H, S, D] float32, lse [B, H, S])."""
    lse = parts[0][1]
    for _, part_lse in parts[1:]:
        lse = torch.logaddexp(lse, part_lse)
    out = None
    for part_out, part_lse in parts:
        weighted = part_out.float() * torch.exp(part_lse - lse)[..., None]
        out = weighted if out is None else out + weighted
    return out, lse
