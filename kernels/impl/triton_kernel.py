"""Triton backend: our own block-sparse attention kernel (forward) for window + global + random blocks.

The host turns the pattern into a block table (for each query block, the key blocks that hold at least one
attended key; cached per pattern and length). Each program takes one query block of one (batch, head), walks
its key blocks with an online softmax in float32, and applies the exact element mask in registers: band
|i - j| <= w, global key, random-block lookup, key inside the sequence. Blocks that the pattern leaves empty are
never loaded, so work and memory grow linearly with length for a fixed window.

The few rows of global *queries* attend every key; inside the kernel they would make one program walk all S/BN
key blocks while the others walk a handful (a straggler that doubles the run time at 128k), so they are
computed after the kernel by one dense SDPA call over [G, S] and overwrite those rows.

Runs on CUDA; on the CPU only under ``TRITON_INTERPRET=1`` (slowly, for the tests).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from kernels.pattern import SparsePattern

LOG2E = 1.4426950408889634


@triton.jit
def _sparse_attention_fwd(
    Q, K, V, Out, Lse, KV_BLOCKS, KV_COUNT, IS_GLOBAL, RAND,
    stride_qb, stride_qh, stride_qs, stride_kb, stride_kh, stride_ks,
    stride_vb, stride_vh, stride_vs, stride_ob, stride_oh, stride_os,
    H, S, D, qk_scale, window, rand_blocks, max_blocks,
    RAND_BS: tl.constexpr, HAS_GLOBAL: tl.constexpr, HAS_RAND: tl.constexpr, DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < S
    d_ok = offs_d < D
    q = tl.load(Q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qs + offs_d[None, :],
                mask=row_ok[:, None] & d_ok[None, :], other=0.0)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    count = tl.load(KV_COUNT + pid_m)
    for j in range(0, count):
        kb = tl.load(KV_BLOCKS + pid_m * max_blocks + j)
        offs_n = kb * BLOCK_N + tl.arange(0, BLOCK_N)
        col_ok = offs_n < S
        k = tl.load(K + b * stride_kb + h * stride_kh + offs_n[:, None] * stride_ks + offs_d[None, :],
                    mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        v = tl.load(V + b * stride_vb + h * stride_vh + offs_n[:, None] * stride_vs + offs_d[None, :],
                    mask=col_ok[:, None] & d_ok[None, :], other=0.0)
        if DOT_F32:
            s = tl.dot(q.to(tl.float32), tl.trans(k.to(tl.float32)), input_precision="ieee")
        else:
            s = tl.dot(q, tl.trans(k))
        s = s * qk_scale  # log2 domain: exp2 below
        diff = offs_m[:, None] - offs_n[None, :]
        allowed = (diff <= window) & (diff >= -window)
        if HAS_GLOBAL:
            k_global = tl.load(IS_GLOBAL + offs_n, mask=col_ok, other=0) != 0
            allowed = allowed | k_global[None, :]
        if HAS_RAND:
            r_ptr = RAND + (offs_m[:, None] // RAND_BS) * rand_blocks + offs_n[None, :] // RAND_BS
            allowed = allowed | (tl.load(r_ptr, mask=row_ok[:, None] & col_ok[None, :], other=0) != 0)
        allowed = allowed & col_ok[None, :]
        s = tl.where(allowed, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing attended yet stays empty
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        if DOT_F32:  # p is still rounded to v's dtype, as on the GPU path
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype).to(tl.float32), v.to(tl.float32),
                                                input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new

    l_safe = tl.where(l_i == 0.0, 1.0, l_i)
    out = acc / l_safe[:, None]
    tl.store(Out + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_os + offs_d[None, :],
             out.to(Out.dtype.element_ty), mask=row_ok[:, None] & d_ok[None, :])
    tl.store(Lse + pid_bh * S + offs_m, (m_i + tl.log2(l_safe)) / 1.4426950408889634, mask=row_ok)


def _overlap(n_a: int, size_a: int, n_b: int, size_b: int, length: int, device) -> torch.Tensor:
    """[n_a, n_b] bool: block i of size_a and block j of size_b share a position below ``length``."""
    a_lo = torch.arange(n_a, device=device) * size_a
    a_hi = torch.clamp(a_lo + size_a, max=length)
    b_lo = torch.arange(n_b, device=device) * size_b
    b_hi = torch.clamp(b_lo + size_b, max=length)
    return (a_lo[:, None] < b_hi[None, :]) & (b_lo[None, :] < a_hi[:, None])


@functools.lru_cache(maxsize=32)
def block_table(pattern: SparsePattern, length: int, block_m: int, block_n: int,
                device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(kv_blocks [nqb, max] int32, counts [nqb] int32): per query block, the key blocks it must visit.

    Global queries' rows are not in the table (see the module docstring); everything else the pattern attends is.
    """
    nqb, nkb = -(-length // block_m), -(-length // block_n)
    q_lo = torch.arange(nqb, device=device) * block_m
    q_hi = torch.clamp(q_lo + block_m, max=length) - 1
    k_lo = torch.arange(nkb, device=device) * block_n
    k_hi = torch.clamp(k_lo + block_n, max=length) - 1
    visit = (k_lo[None, :] <= q_hi[:, None] + pattern.window) & (k_hi[None, :] >= q_lo[:, None] - pattern.window)
    if pattern.global_tokens:  # global keys; the global queries' rows are computed outside the kernel
        g = torch.tensor(pattern.global_tokens, device=device)
        visit |= ((g[None, :] >= k_lo[:, None]) & (g[None, :] <= k_hi[:, None])).any(1)[None, :]
    table = pattern.random_table(length, device)
    if table is not None:
        nrb, bs = table.shape[0], pattern.block_size
        a_q = _overlap(nqb, block_m, nrb, bs, length, device).float()
        a_k = _overlap(nrb, bs, nkb, block_n, length, device).float()
        visit |= (a_q @ table.float() @ a_k) > 0
    counts = visit.sum(1).to(torch.int32)
    order = torch.argsort((~visit).to(torch.int8), dim=1, stable=True)[:, : max(1, int(counts.max()))]
    return order.to(torch.int32).contiguous(), counts.contiguous()


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: SparsePattern,
              scale: float | None = None, block_m: int | None = None, block_n: int | None = None,
              num_warps: int = 4, num_stages: int = 2) -> torch.Tensor:
    """q, k, v: [B, H, S, D] → [B, H, S, D] in q's dtype (forward only)."""
    B, H, S, D = q.shape
    pattern.check(S)
    scale = D ** -0.5 if scale is None else scale
    on_gpu = q.device.type == "cuda"
    block_m = block_m or (128 if on_gpu else 32)
    block_n = block_n or (64 if on_gpu else 32)
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    device = str(q.device)
    kv_blocks, counts = block_table(pattern, S, block_m, block_n, device)
    is_global = pattern.is_global(S, q.device).to(torch.int8)
    table = pattern.random_table(S, q.device)
    rand = table.to(torch.int8).contiguous() if table is not None else is_global  # placeholder when unused
    out = torch.empty_like(q)
    lse = torch.empty(B * H, S, dtype=torch.float32, device=q.device)
    grid = (kv_blocks.shape[0], B * H)
    _sparse_attention_fwd[grid](
        q, k, v, out, lse, kv_blocks, counts, is_global, rand,
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(1), out.stride(2),
        H, S, D, scale * LOG2E, pattern.window, table.shape[0] if table is not None else 1, kv_blocks.shape[1],
        RAND_BS=pattern.block_size, HAS_GLOBAL=bool(pattern.global_tokens), HAS_RAND=table is not None,
        # fp32 products in fp32 (not tf32); the interpreter's bf16 dot is wrong, so on the CPU upcast the operands
        DOT_F32=q.dtype == torch.float32 or not on_gpu, BLOCK_M=block_m, BLOCK_N=block_n,
        BLOCK_D=max(16, triton.next_power_of_2(D)), num_warps=num_warps, num_stages=num_stages,
    )
    if pattern.global_tokens:
        index = torch.tensor(pattern.global_tokens, device=q.device)
        out[:, :, index] = torch.nn.functional.scaled_dot_product_attention(q[:, :, index], k, v, scale=scale)
    return out
