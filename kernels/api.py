"""``sparse_attention``: one signature, several backends.

=============  ======================================================================  =================
impl           what                                                                     where
=============  ======================================================================  =================
``reference``  dense masked softmax, chunked over queries (the oracle)                 any device
``blocked``    blocked sliding window + global/random parts merged by log-sum-exp      CPU (any device)
``cpp``        our C++ band kernel (AMX / AVX-512 / AVX2 / plain loops, built on first CPU with a C++
               use) + random blocks merged by log-sum-exp; no backward pass            compiler
``flex``       FlexAttention with a cached block mask, compiled (``flex_eager``: not)  CPU, CUDA
``triton``     our block-sparse Triton kernel (window + global + random blocks)        CUDA; CPU under
                                                                                        TRITON_INTERPRET=1
``flash``      flash-attn ``window_size`` band + global tokens merged by log-sum-exp   CUDA with flash-attn
``auto``       the fastest available for the tensors' device                            —
=============  ======================================================================  =================

An unavailable backend raises ``BackendUnavailable``. ``auto`` on the CPU picks ``cpp``, and takes ``blocked``
instead for what ``cpp`` cannot do (autograd, float16/float64) or when the kernel cannot be built here (with
one warning naming the reason).

``causal_attention`` runs the ``cpp`` kernel causally (query i attends keys 0 .. i, grouped-query key/value
heads allowed), for a decoder reading a prompt; ``causal_attention_unavailable()`` says why it cannot run here.

>>> pattern = SparsePattern.longformer(attention_window=512, global_tokens=(0,))
>>> out = sparse_attention(q, k, v, pattern=pattern, impl="auto")   # q, k, v: [B, H, S, D]
>>> out = causal_attention(q, k, v, scale=D ** -0.5)               # k, v: [B, H_kv, S, D]
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings

import torch

from kernels.pattern import SparsePattern
from pipeline.types import ATTENTION_BACKENDS

IMPLS = ATTENTION_BACKENDS


class BackendUnavailable(RuntimeError):
    """The asked-for attention backend cannot run here (missing package or device)."""


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def backend_available(impl: str, device: torch.device | str) -> bool:
    """Whether ``impl`` can run on ``device`` in this environment (without importing heavy modules)."""
    kind = torch.device(device).type
    match impl:
        case "reference" | "blocked":
            return True
        case "cpp":
            from kernels.impl.cpp import compiler

            return kind == "cpu" and compiler() is not None
        case "flex" | "flex_eager":
            return _has("torch.nn.attention.flex_attention")
        case "triton":
            return _has("triton") and (kind == "cuda" or (kind == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"))
        case "flash":
            return kind == "cuda" and _has("flash_attn")
        case _:
            return False


def available_impls(device: torch.device | str) -> list[str]:
    return [impl for impl in IMPLS if backend_available(impl, device)]


def pick_auto(device: torch.device | str) -> str:
    """The fastest available backend for ``device`` (order measured in docs/benchmarks.md)."""
    order = ("triton", "flex", "flash", "blocked") if torch.device(device).type == "cuda" else ("cpp", "blocked")
    for impl in order:
        if backend_available(impl, device):
            return impl
    return "reference"


@functools.cache
def _cpp_build_problem() -> str | None:
    from kernels.impl import cpp

    try:
        cpp.library()
    except cpp.BuildError as exc:
        warnings.warn(f"sparse_attention: the cpp backend cannot be built here, auto uses blocked: {exc}", stacklevel=3)
        return str(exc)
    return None


def _cpp_can_take(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether ``auto`` can give these tensors to the cpp backend (else it takes blocked)."""
    from kernels.impl.cpp import unsupported

    return unsupported(q, k, v) is None and _cpp_build_problem() is None


def _unavailable(impl: str, device, why: str) -> BackendUnavailable:
    return BackendUnavailable(f"attention backend {impl!r} is not available on {device}: {why}")


_NEEDS = {
    "cpp": "it runs on the CPU and needs a C++ compiler ($CXX, c++, g++ or clang++)",
    "flex": "this torch has no torch.nn.attention.flex_attention (torch >= 2.5)",
    "flex_eager": "this torch has no torch.nn.attention.flex_attention (torch >= 2.5)",
    "triton": "needs the `triton` package and a CUDA device (or TRITON_INTERPRET=1 to run it on the CPU, slowly)",
    "flash": "needs a CUDA device and the `flash-attn` package (pip install 'sectionrag[gpu]')",
}
"""What each backend that can be missing needs, for the error that says it is."""


def _backend(impl: str, device: torch.device):
    """The attention function of ``impl`` (same signature as the reference), loaded lazily; raises
    ``BackendUnavailable`` when it cannot run on ``device`` here."""
    if impl not in IMPLS:
        raise ValueError(f"unknown attention backend {impl!r}; choose one of {', '.join(IMPLS)} or auto")
    if impl in _NEEDS and not backend_available(impl, device):
        raise _unavailable(impl, device, _NEEDS[impl])
    match impl:
        case "reference":
            from kernels.impl.reference import attention
        case "blocked":
            from kernels.impl.blocked import attention
        case "cpp":
            from kernels.impl import cpp

            try:
                cpp.library()
            except cpp.BuildError as exc:
                raise _unavailable(impl, device, str(exc)) from exc
            attention = cpp.attention
        case "flex" | "flex_eager":
            from kernels.impl.flex import attention as flex_attention

            attention = functools.partial(flex_attention, compiled=impl == "flex")
        case "triton":
            from kernels.impl.triton_kernel import attention
        case "flash":
            from kernels.impl.flash import attention
    return attention


def sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: SparsePattern,
                     impl: str = "auto", scale: float | None = None) -> torch.Tensor:
    """Attention of q over k, v restricted to ``pattern``: q, k, v [B, H, S, D] → [B, H, S, D] in q's dtype.

    ``scale`` defaults to 1/sqrt(D).
    """
    if q.dim() != 4 or q.shape != k.shape or k.shape != v.shape:
        raise ValueError(f"q, k, v must share one [B, H, S, D] shape, got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if impl == "auto":
        impl = pick_auto(q.device)
        if impl == "cpp" and not _cpp_can_take(q, k, v):
            impl = "blocked"
    return _backend(impl, q.device)(q, k, v, pattern=pattern, scale=scale)


CAUSAL_DTYPES = (torch.float32, torch.bfloat16)
"""The dtypes ``causal_attention`` takes (the C++ kernel's)."""


def causal_attention_unavailable() -> str | None:
    """Why ``causal_attention`` cannot run on this host (no C++ compiler, a failed build), else None.

    The first call builds the C++ kernel (a few seconds; the library is cached on disk)."""
    from kernels.impl import cpp

    try:
        cpp.library()
    except cpp.BuildError as exc:
        return str(exc)
    return None


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Causal attention with the C++ band kernel (the band reaching back to the first key and not forward).

    q [B, H, S, D], k and v [B, H_kv, S, D] with H a multiple of H_kv (grouped-query heads share a key/value
    head), on the CPU, in one of ``CAUSAL_DTYPES``, without autograd → [B, H, S, D] in q's dtype, a view of a
    contiguous [B, S, H, D] tensor. ``scale`` defaults to 1/sqrt(D). Raises ``BackendUnavailable`` for tensors
    off the CPU or where the kernel cannot be built here, ``ValueError`` for shapes or dtypes it does not take.
    """
    if q.device.type != "cpu":
        raise _unavailable("cpp", q.device, "the causal kernel runs on the CPU only")
    from kernels.impl import cpp

    try:
        cpp.library()
    except cpp.BuildError as exc:
        raise _unavailable("cpp", q.device, str(exc)) from exc
    return cpp.causal(q, k, v, scale)
