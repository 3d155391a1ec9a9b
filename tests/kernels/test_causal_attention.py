"""``kernels.causal_attention`` (the C++ band kernel run causally) against a dense causal softmax.

Tolerance as for the sparse backends: |out - oracle| <= 2 * |the dense math in the inputs' dtype - oracle| + 1e-6,
where the oracle is the dense math in float64. Lengths around and not divisible by the kernel's 32-query
block; grouped-query heads; float32 and bfloat16.
"""

from __future__ import annotations

import pytest
import torch

from kernels import (
    CAUSAL_DTYPES,
    BackendUnavailable,
    backend_available,
    causal_attention,
    causal_attention_unavailable,
    dense_mask,
)

needs_cxx = pytest.mark.skipif(not backend_available("cpp", "cpu"), reason="no C++ compiler to build the kernel")


def causal(b, h, q_idx, kv_idx):
    return kv_idx <= q_idx


def dense_causal(q, k, v, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """Softmax attention of query i over keys 0 .. i computed in ``dtype``; k, v [B, H_kv, S, D] repeated per group."""
    groups = q.shape[1] // k.shape[1]
    q, k, v = (t.to(dtype) for t in (q, k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)))
    allowed = dense_mask(causal, q.shape[2], k.shape[2])
    scores = (q @ k.transpose(-1, -2)) * scale
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1) @ v


@needs_cxx
@pytest.mark.parametrize("dtype", CAUSAL_DTYPES, ids=str)
@pytest.mark.parametrize("heads, kv_heads", [(4, 4), (6, 2)])
@pytest.mark.parametrize("S", [1, 45, 97])
def test_causal_attention_equals_dense_causal_softmax(S, heads, kv_heads, dtype):
    gen = torch.Generator().manual_seed(S + heads)
    q = torch.randn(2, heads, S, 32, generator=gen).to(dtype)
    k, v = (torch.randn(2, kv_heads, S, 32, generator=gen).to(dtype) for _ in range(2))
    scale = 0.2
    oracle = dense_causal(q, k, v, scale, torch.float64)
    low = dense_causal(q, k, v, scale, dtype)
    out = causal_attention(q, k, v, scale)
    assert out.dtype == dtype and out.shape == q.shape and out.transpose(1, 2).is_contiguous()
    assert (out.double() - oracle).abs().max() <= 2 * (low.double() - oracle).abs().max() + 1e-6


@needs_cxx
def test_causal_attention_refuses_what_the_kernel_does_not_take():
    assert causal_attention_unavailable() is None
    half = torch.randn(1, 2, 20, 16, dtype=torch.float16)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        causal_attention(half, half, half)
    with pytest.raises(ValueError, match="H_kv dividing H"):
        causal_attention(torch.randn(1, 6, 10, 16), torch.randn(1, 4, 10, 16), torch.randn(1, 4, 10, 16))


def test_causal_attention_off_the_cpu_is_unavailable():
    q = torch.empty(1, 2, 20, 16, device="meta")
    with pytest.raises(BackendUnavailable, match="CPU"):
        causal_attention(q, q, q)


def test_causal_attention_without_a_compiler_is_unavailable(monkeypatch, tmp_path):
    from kernels.impl import cpp

    assert CAUSAL_DTYPES == cpp.DTYPES
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("SECTIONRAG_CACHE", str(tmp_path / "cache"))
    cpp.library.cache_clear()
    try:
        assert "no-such-compiler" in causal_attention_unavailable()
        q = torch.randn(1, 1, 40, 16)
        with pytest.raises(BackendUnavailable, match="no-such-compiler"):
            causal_attention(q, q, q)
    finally:
        cpp.library.cache_clear()
