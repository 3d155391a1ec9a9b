"""Attention-kernel benchmark: each backend on one pattern, and how close the Triton kernel gets to the card.

    python -m kernels.bench --device cuda --lengths 16384,65536,131072 --json

Rows: {"impl", "length", "ms", "tflops"}; ``tflops`` counts only the blocks a backend computes for sparse
backends (the Triton kernel's block table: 4·D·BM·BN per visited block, per head) and the full S×S for dense
``sdpa``. On CUDA the card's bf16 matrix peak is measured with a large matmul, and the Triton row gets
``fraction_of_peak``. Ratios: ``triton_vs_flex`` and ``triton_vs_sdpa`` per length.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from kernels.api import backend_available, sparse_attention
from kernels.pattern import SparsePattern

TRITON_CONFIGS = ((128, 64, 4, 2), (64, 64, 4, 2), (128, 128, 8, 2), (64, 32, 4, 3))


def _time(fn, repeats: int, device: str) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak_tflops(device: str, dtype: torch.dtype, n: int = 8192, repeats: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / _time(lambda: a @ b, repeats, device) / 1e12


def _bench_one(impl: str, q, k, v, pattern: SparsePattern, repeats: int) -> dict:
    """{"ms", "tflops"?, "config"?} for one backend on q, k, v [1, H, S, D]."""
    _, heads, length, head_dim = q.shape
    device = q.device.type
    if impl == "sdpa":
        seconds = _time(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v), repeats, device)
        return {"ms": round(seconds * 1000, 3), "tflops": round(4 * heads * head_dim * length**2 / seconds / 1e12, 2)}
    if impl != "triton":
        seconds = _time(lambda: sparse_attention(q, k, v, pattern=pattern, impl=impl), repeats, device)
        return {"ms": round(seconds * 1000, 3)}
    from kernels.impl import triton_kernel

    best = None
    for bm, bn, warps, stages in TRITON_CONFIGS:
        def run(bm=bm, bn=bn, warps=warps, stages=stages):
            return triton_kernel.attention(q, k, v, pattern=pattern, block_m=bm, block_n=bn, num_warps=warps,
                                           num_stages=stages)
        seconds = _time(run, repeats, device)
        if best is None or seconds < best[0]:
            best = (seconds, bm, bn, warps, stages)
    seconds, bm, bn, warps, stages = best
    _, counts = triton_kernel.block_table(pattern, length, bm, bn, str(q.device))
    flops = 4 * heads * head_dim * bm * bn * int(counts.sum())
    return {"ms": round(seconds * 1000, 3), "tflops": round(flops / seconds / 1e12, 2),
            "config": {"block_m": bm, "block_n": bn, "num_warps": warps, "num_stages": stages}}


def bench_attention(lengths: list[int], device: str = "cuda", pattern: SparsePattern | None = None,
                    heads: int = 12, head_dim: int = 32, dtype: torch.dtype | None = None,
                    impls: list[str] | None = None, repeats: int = 10) -> dict:
    pattern = pattern or SparsePattern.longformer(512, (0,))
    dtype = dtype or (torch.bfloat16 if device == "cuda" else torch.float32)
    impls = impls or [i for i in ("triton", "flex", "flash", "cpp", "blocked", "sdpa") if i == "sdpa" or backend_available(i, device)]
    peak = matmul_peak_tflops(device, dtype) if device == "cuda" else None
    rows = []
    for length in lengths:
        gen = torch.Generator(device=device).manual_seed(0)
        q, k, v = (torch.randn(1, heads, length, head_dim, device=device, dtype=dtype, generator=gen) for _ in range(3))
        for impl in impls:
            row = {"impl": impl, "length": length}
            try:
                row.update(_bench_one(impl, q, k, v, pattern, repeats))
            except Exception as exc:  # a backend that cannot run this shape is reported, not fatal
                row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            if peak and impl == "triton" and "tflops" in row:
                row["fraction_of_peak"] = round(row["tflops"] / peak, 3)
            rows.append(row)
            print(f"bench attention: {row}", file=sys.stderr, flush=True)
        by = {r["impl"]: r for r in rows if r["length"] == length and "ms" in r}
        if "triton" in by:
            for other in ("flex", "sdpa", "flash"):
                if other in by:
                    by["triton"][f"triton_vs_{other}"] = round(by[other]["ms"] / by["triton"]["ms"], 3)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    return {"device": name, "dtype": str(dtype).removeprefix("torch."), "heads": heads, "head_dim": head_dim,
            "pattern": {"window": pattern.window, "global_tokens": list(pattern.global_tokens),
                        "random_blocks": pattern.random_blocks, "block_size": pattern.block_size},
            "matmul_peak_tflops": round(peak, 1) if peak else None, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="16384,65536,131072")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--impls", default=None)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--random-blocks", type=int, default=0, help="BigBird random blocks (block size 64)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pattern = SparsePattern(window=256, global_tokens=(0,), random_blocks=args.random_blocks, block_size=64)
    result = bench_attention([int(x) for x in args.lengths.split(",")], device=args.device, pattern=pattern,
                             head_dim=args.head_dim, impls=args.impls.split(",") if args.impls else None,
                             repeats=args.repeats)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
