"""Every backend equals the reference, within a tolerance set from the reference's own low-precision error.

Tolerance: |out - oracle| <= 2 * |reference computed in the inputs' dtype - oracle| + 1e-6, where the oracle is
the reference in float64. Lengths are not multiples of any block size; global-token sets vary; fp32 and bf16.
The Triton kernel runs under TRITON_INTERPRET=1 on the CPU, at small sizes, in one child process: Triton reads
the variable when it is first imported, and other tests may have imported it already.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kernels import BackendUnavailable, SparsePattern, available_impls, pick_auto, sparse_attention
from kernels.impl.blocked import block_size_for
from kernels.impl.cpp import compiler
from kernels.impl.reference import attention as reference

PATTERNS = {
    "window": SparsePattern(window=13),
    "window+cls": SparsePattern(window=20, global_tokens=(0,)),
    "window+3globals": SparsePattern(window=9, global_tokens=(0, 5, 96)),
    "bigbird": SparsePattern(window=24, global_tokens=(0, 1), random_blocks=2, block_size=16, seed=7),
    "covers-all": SparsePattern(window=4096, global_tokens=(3,)),
}
SHAPES = [(1, 2, 97, 16), (2, 3, 250, 32)]
DTYPES = [torch.float32, torch.bfloat16]
HAS_TRITON = importlib.util.find_spec("triton") is not None
needs_cxx = pytest.mark.skipif(compiler() is None, reason="no C++ compiler to build the cpp backend")


def error_and_tolerance(impl: str, shape, pattern: SparsePattern, dtype, seed: int = 0) -> tuple[float, float]:
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*shape, generator=gen).to(dtype) for _ in range(3))
    oracle = reference(q.double(), k.double(), v.double(), pattern=pattern)
    low = reference(q, k, v, pattern=pattern, upcast=False)
    tolerance = 2 * (low.double() - oracle).abs().max().item() + 1e-6
    out = sparse_attention(q, k, v, pattern=pattern, impl=impl)
    assert out.dtype == dtype and out.shape == q.shape
    return (out.double() - oracle).abs().max().item(), tolerance


def check_against_reference(impl: str, shape, pattern: SparsePattern, dtype, seed: int = 0) -> None:
    error, tolerance = error_and_tolerance(impl, shape, pattern, dtype, seed)
    assert error <= tolerance, f"{impl}: max error {error:.3g} > tolerance {tolerance:.3g}"


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", PATTERNS)
def test_blocked_equals_reference(name, shape, dtype):
    check_against_reference("blocked", shape, PATTERNS[name], dtype)


@pytest.mark.parametrize("window, block", [(300, 150), (512, 256), (514, 514), (96, 96)])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_blocked_key_layouts_equal_reference(window, block, dtype):
    # several key blocks on each side (300, 512), a window with no divisor from 32 to 256 (514 = 2 x 257),
    # global tokens inside and outside the first and last blocks' bands, a length no block divides
    assert block_size_for(window) == block
    pattern = SparsePattern(window=window, global_tokens=(0, 600, 1200))
    check_against_reference("blocked", (1, 2, 1201, 16), pattern, dtype)


@needs_cxx
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES + [(1, 2, 301, 64), (1, 1, 177, 8), (2, 2, 130, 24), (1, 2, 150, 48),
                                   (1, 1, 170, 128)], ids=str)
@pytest.mark.parametrize("name", PATTERNS)
def test_cpp_equals_reference(name, shape, dtype):
    # head dims 32 and 64 take the AMX tiles in bfloat16 where the CPU has them, 16 the AVX512-BF16
    # products; without AVX-512, 16, 32, 48, 64 and 128 take the AVX2 loops; 8 and 24 the plain float32 loops
    check_against_reference("cpp", shape, PATTERNS[name], dtype)


@needs_cxx
@pytest.mark.parametrize("window", [300, 512, 514, 96])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cpp_key_spans_equal_reference(window, dtype):
    # spans clipped at both ends, global tokens inside and outside the spans, a length no block divides
    pattern = SparsePattern(window=window, global_tokens=(0, 600, 1200))
    check_against_reference("cpp", (1, 2, 1201, 32), pattern, dtype)


@needs_cxx
@pytest.mark.parametrize("shape", [(2, 3, 250, 32), (1, 2, 97, 16)], ids=str)
def test_cpp_without_amx_equals_reference(monkeypatch, shape):
    # SECTIONRAG_NO_AMX sends bfloat16 to the AVX512-BF16 products (or the float32 loops without them)
    monkeypatch.setenv("SECTIONRAG_NO_AMX", "1")
    for name in ("window+3globals", "bigbird"):
        check_against_reference("cpp", shape, PATTERNS[name], torch.bfloat16)


@needs_cxx
def test_cpp_output_is_laid_out_for_the_next_projection():
    # [B, H, S, D] as a view of [B, S, H, D]: the encoder's transpose(1, 2).reshape is free
    q = torch.randn(1, 4, 300, 32)
    out = sparse_attention(q, q, q, pattern=SparsePattern(window=20, global_tokens=(0,)), impl="cpp")
    assert out.shape == q.shape and out.transpose(1, 2).is_contiguous()


@needs_cxx
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cpp_takes_the_encoders_strided_views(dtype):
    # q, k, v as the encoder passes them: views of one [B, S, 3, H, D] projection, rows read head by head
    qkv = torch.randn(2, 333, 3, 4, 32, generator=torch.Generator().manual_seed(3)).to(dtype).permute(2, 0, 3, 1, 4)
    pattern = SparsePattern(window=40, global_tokens=(0, 200))
    strided = sparse_attention(qkv[0], qkv[1], qkv[2], pattern=pattern, impl="cpp")
    dense = sparse_attention(*(t.contiguous() for t in qkv), pattern=pattern, impl="cpp")
    assert torch.equal(strided, dense)
    oracle = reference(*(t.double() for t in qkv), pattern=pattern)
    low = reference(qkv[0], qkv[1], qkv[2], pattern=pattern, upcast=False)
    assert (strided.double() - oracle).abs().max() <= 2 * (low.double() - oracle).abs().max() + 1e-6


def band_oracle(q, k, v, left: int, right: int, global_tokens=()):
    """float64 softmax attention where query i attends keys i - left .. i + right and the global keys."""
    S = q.shape[2]
    i, j = torch.arange(S).view(-1, 1), torch.arange(S).view(1, -1)
    allowed = ((j - i) >= -left) & ((j - i) <= right)
    allowed[:, list(global_tokens)] = True
    scores = (q.double() @ k.double().transpose(-1, -2)) * q.shape[-1] ** -0.5
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), -1) @ v.double()


@needs_cxx
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("D", [8, 16, 24, 32, 64])
@pytest.mark.parametrize("S", [1, 2, 31, 33, 300])
def test_cpp_causal_equals_sdpa(S, D, dtype):
    # grouped-query heads (6 query heads on 2 key/value heads), lengths around the 32-query block, head
    # dims of every code path; tolerance from SDPA's own error in the inputs' dtype
    from kernels.impl import cpp

    gen = torch.Generator().manual_seed(S * 100 + D)
    q = torch.randn(2, 6, S, D, generator=gen).to(dtype)
    k, v = (torch.randn(2, 2, S, D, generator=gen).to(dtype) for _ in range(2))
    oracle = band_oracle(q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1), left=S, right=0)
    low = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    out = cpp.causal(q, k, v)
    assert out.dtype == dtype and out.shape == q.shape and out.transpose(1, 2).is_contiguous()
    assert (out.double() - oracle).abs().max() <= 2 * (low.double() - oracle).abs().max() + 1e-6


@needs_cxx
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("left, right", [(40, 0), (0, 40), (7, 90), (500, 3)])
def test_cpp_one_sided_bands_equal_the_oracle(left, right, dtype):
    from kernels.impl import cpp

    gen = torch.Generator().manual_seed(left + right)
    q, k, v = (torch.randn(1, 2, 301, 32, generator=gen).to(dtype) for _ in range(3))
    globals_ = (0, 150)
    oracle = band_oracle(q, k, v, left, right, globals_)
    out, _ = cpp.band(q, k, v, left, 32 ** -0.5, globals_, torch.float32, right=right)
    rows = [i for i in range(301) if i not in globals_]  # the band kernel leaves global queries to the caller
    bound = 2e-6 if dtype == torch.float32 else 2e-2
    assert (out[:, :, rows].double() - oracle[:, :, rows]).abs().max() <= bound


def test_cpp_causal_rejects_mismatched_heads():
    from kernels.impl import cpp

    with pytest.raises(ValueError, match="H_kv dividing H"):
        cpp.causal(torch.randn(1, 6, 10, 16), torch.randn(1, 4, 10, 16), torch.randn(1, 4, 10, 16))


@needs_cxx
def test_auto_on_the_cpu_takes_blocked_for_what_cpp_cannot_do():
    pattern = SparsePattern(window=16, global_tokens=(0,))
    q, k, v = (torch.randn(1, 2, 100, 16, requires_grad=True) for _ in range(3))
    with pytest.raises(ValueError, match="no backward"):
        sparse_attention(q, k, v, pattern=pattern, impl="cpp")
    out = sparse_attention(q, k, v, pattern=pattern, impl="auto")           # blocked, with autograd
    out.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()
    half = torch.randn(1, 2, 100, 16, dtype=torch.float16)
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        sparse_attention(half, half, half, pattern=pattern, impl="cpp")
    assert sparse_attention(half, half, half, pattern=pattern, impl="auto").dtype == torch.float16


def test_cpp_without_a_compiler_is_unavailable(monkeypatch, tmp_path):
    from kernels.impl import cpp

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("SECTIONRAG_CACHE", str(tmp_path / "cache"))
    cpp.library.cache_clear()
    try:
        q = torch.randn(1, 1, 40, 16)
        with pytest.raises(BackendUnavailable, match="no-such-compiler"):
            sparse_attention(q, q, q, pattern=SparsePattern(window=4), impl="cpp")
    finally:
        cpp.library.cache_clear()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["window+3globals", "bigbird"])
def test_flex_eager_equals_reference(name, dtype):
    check_against_reference("flex_eager", SHAPES[1], PATTERNS[name], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_flex_compiled_equals_reference(dtype):
    # one compile per (dtype, bucket, pattern): the general pattern only, by default
    check_against_reference("flex", SHAPES[1], PATTERNS["bigbird"], dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", PATTERNS)
def test_flex_compiled_equals_reference_everywhere(name, shape, dtype):
    check_against_reference("flex", shape, PATTERNS[name], dtype)


TRITON_SHAPE = (1, 2, 97, 16)


def triton_cases() -> dict[str, list[float]]:
    """Run in the child (TRITON_INTERPRET=1): "pattern/dtype" → [error, tolerance]."""
    return {f"{name}/{dtype}": list(error_and_tolerance("triton", TRITON_SHAPE, pattern, dtype))
            for name, pattern in PATTERNS.items() for dtype in DTYPES}


@pytest.fixture(scope="module")
def interpreted_triton() -> dict[str, list[float]]:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(Path(__file__))], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not HAS_TRITON, reason="the triton package is not installed")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", PATTERNS)
def test_triton_interpreted_equals_reference(name, dtype, interpreted_triton):
    error, tolerance = interpreted_triton[f"{name}/{dtype}"]
    assert error <= tolerance, f"triton: max error {error:.3g} > tolerance {tolerance:.3g}"


@pytest.mark.skipif(not HAS_TRITON, reason="the triton package is not installed")
def test_triton_block_table_covers_every_attended_pair():
    from kernels.impl.triton_kernel import block_table
    from kernels.mask_ops import dense_mask

    pattern = PATTERNS["bigbird"]
    length, bm, bn = 250, 32, 16
    allowed = dense_mask(pattern.mask_mod(length), length, length).clone()
    allowed[list(pattern.global_tokens)] = False  # global queries' rows are computed outside the kernel
    blocks, counts = block_table(pattern, length, bm, bn, "cpu")
    visited = torch.zeros(-(-length // bm), -(-length // bn), dtype=torch.bool)
    for m in range(visited.shape[0]):
        visited[m, blocks[m, : counts[m]].long()] = True
    needed = torch.nn.functional.pad(allowed, (0, visited.shape[1] * bn - length, 0, visited.shape[0] * bm - length))
    needed = needed.view(visited.shape[0], bm, visited.shape[1], bn).any(dim=3).any(dim=1)
    assert torch.equal(visited, needed)  # every needed block, and no empty one


def test_flex_block_mask_matches_the_dense_mask():
    from kernels.impl.flex import block_mask, bucket
    from kernels.mask_ops import dense_mask

    pattern = PATTERNS["bigbird"]
    length = 250
    padded = bucket(length)
    dense = block_mask(pattern, length, padded, "cpu").to_dense()[0, 0].bool()      # [q blocks, kv blocks]
    mask = dense_mask(pattern.mask_mod(length, padded_length=padded), padded, padded)
    expected = mask.view(dense.shape[0], padded // dense.shape[0], dense.shape[1], -1).any(3).any(1)
    assert torch.equal(dense, expected)


def test_unknown_and_unavailable_backends_raise(monkeypatch):
    q = torch.randn(1, 1, 8, 4)
    pattern = SparsePattern(window=2)
    with pytest.raises(ValueError, match="unknown attention backend 'nope'"):
        sparse_attention(q, q, q, pattern=pattern, impl="nope")
    with pytest.raises(BackendUnavailable, match="flash"):
        sparse_attention(q, q, q, pattern=pattern, impl="flash")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(BackendUnavailable, match="triton"):
        sparse_attention(q, q, q, pattern=pattern, impl="triton")
    with pytest.raises(ValueError, match="share one"):
        sparse_attention(q, q[:, :, :4], q, pattern=pattern)


def test_auto_picks_cpp_on_the_cpu():
    # with a C++ compiler on PATH auto picks cpp; without one, blocked
    assert pick_auto("cpu") == ("cpp" if compiler() else "blocked")
    assert {"reference", "blocked"} <= set(available_impls("cpu"))
    assert ("cpp" in available_impls("cpu")) == (compiler() is not None)


if __name__ == "__main__":  # the child of ``interpreted_triton``
    print(json.dumps(triton_cases()))
