"""CPU backend: our own C++ band kernel (``kernels/csrc/band_attention.cpp``) plus random blocks merged by
log-sum-exp.

The kernel computes the sliding window and the global keys for every query, visiting only the keys each block
of 32 queries needs (544 of them for a window of 256 each side, where ``blocked``'s fused calls over
256-query blocks compute 768). Its products run on AMX tiles in bfloat16 where the CPU has them
(``SECTIONRAG_NO_AMX=1`` turns them off), else on AVX512-BF16 ``vdpbf16ps``, AVX-512 FMAs in float32, AVX2
FMAs in float32 on CPUs without AVX-512 (bfloat16 widened as it is packed), or loops the compiler vectorizes
for the host. BigBird random blocks come from ``_parts`` and are merged by
log-sum-exp; the rows of global queries are one fused call over all keys.

The library is compiled on first use with the host's C++ compiler (``$CXX``, else ``c++``/``g++``/``clang++``;
``-O3 -march=native``, a few seconds) into ``$SECTIONRAG_CACHE/kernels`` (default ``~/.cache/sectionrag``),
keyed by the source, the compiler and the CPU, and loaded with ctypes. It has no backward pass.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

import torch
import torch.nn.functional as F

from kernels.impl import _parts
from kernels.pattern import SparsePattern
from pipeline.host import cache_dir, cpu_identity

SOURCE = Path(__file__).resolve().parent.parent / "csrc" / "band_attention.cpp"
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-pthread")
DTYPES = (torch.float32, torch.bfloat16)


class BuildError(RuntimeError):
    """The C++ kernel could not be compiled or loaded here."""


def compiler() -> str | None:
    """The C++ compiler the kernel is built with: ``$CXX``, else the first of c++, g++, clang++ on PATH."""
    if os.environ.get("CXX"):
        return shutil.which(os.environ["CXX"]) or os.environ["CXX"]
    return next((path for name in ("c++", "g++", "clang++") if (path := shutil.which(name))), None)


_lock = threading.Lock()


@functools.cache
def library() -> ctypes.CDLL:
    """The compiled kernel, built on first use (see the module docstring); raises ``BuildError``."""
    cxx = compiler()
    if cxx is None:
        raise BuildError("no C++ compiler found (set $CXX, or install g++ or clang++)")
    source = SOURCE.read_bytes()
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildError(f"cannot run the C++ compiler {cxx}: {exc}") from exc
    key = hashlib.sha256(b"\0".join([source, version.encode(), " ".join(FLAGS).encode(),
                                     cpu_identity().encode()])).hexdigest()[:16]
    target = cache_dir("kernels") / f"band_attention-{key}.so"
    with _lock:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.so")
            try:
                done = subprocess.run([cxx, *FLAGS, "-o", str(tmp), str(SOURCE)], capture_output=True, text=True,
                                      timeout=600)
            except (OSError, subprocess.SubprocessError) as exc:
                raise BuildError(f"compiling {SOURCE.name} with {cxx} failed: {exc}") from exc
            if done.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise BuildError(f"compiling {SOURCE.name} with {cxx} failed:\n{done.stderr[-2000:]}")
            os.replace(tmp, target)
        try:
            lib = ctypes.CDLL(str(target))
        except OSError as exc:
            raise BuildError(f"cannot load the compiled kernel {target}: {exc}") from exc
    p, i64, i64p = ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)
    lib.sectionrag_band_attention.argtypes = [p, p, p, p, p, i64, i64, i64, i64, i64p, i64p, i64p, i64p, i64, i64,
                                              i64p, i64, ctypes.c_float, ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.sectionrag_band_attention.restype = ctypes.c_int
    return lib


def unsupported(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> str | None:
    """Why these tensors cannot go through the kernel, or None."""
    if q.device.type != "cpu":
        return f"it runs on the CPU only, got tensors on {q.device}"
    if q.dtype not in DTYPES:
        return f"it takes float32 or bfloat16 tensors, got {q.dtype}"
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        return "it has no backward pass (use impl='blocked' to train)"
    return None


def band(q, k, v, window: int, scale: float, global_tokens: tuple[int, ...], out_dtype: torch.dtype,
         right: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Band + global keys: (out [B, H, S, D] in ``out_dtype``, a view of a [B, S, H, D] tensor; lse [B, H, S]).

    Query i attends keys i - window .. i + right (``right`` defaults to ``window``: a sliding window)."""
    B, H, S, D = q.shape
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    out = torch.empty(B, S, H, D, dtype=out_dtype)
    lse = torch.empty(B, H, S, dtype=torch.float32)
    view = out.permute(0, 2, 1, 3)
    strides = [(ctypes.c_int64 * 3)(*t.stride()[:3]) for t in (q, k, v, view)]
    globals_ = (ctypes.c_int64 * max(1, len(global_tokens)))(*sorted(global_tokens))
    code = library().sectionrag_band_attention(
        q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), lse.data_ptr(), B, H, S, D, *strides, window,
        window if right is None else right, globals_, len(global_tokens), float(scale), int(q.dtype == torch.bfloat16), int(out_dtype == torch.bfloat16),
        torch.get_num_threads())
    if code:
        raise ValueError(f"the C++ band kernel rejected its arguments (code {code}): shape {tuple(q.shape)}, "
                         f"window {window}/{right}, global tokens {global_tokens}")
    return view, lse


def causal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Causal attention (query i attends keys 0 .. i), for a decoder reading a prompt: q [B, H, S, D], k and v
    [B, H_kv, S, D] with H a multiple of H_kv (grouped-query heads share a key/value head) → [B, H, S, D] in
    q's dtype, a view of a contiguous [B, S, H, D] tensor (the layout a decoder's output projection takes)."""
    why = unsupported(q, k, v)
    if why:
        raise ValueError(f"the cpp attention backend cannot take these tensors: {why}")
    B, H, S, D = q.shape
    if k.shape != v.shape or k.shape[0] != B or k.shape[2] != S or k.shape[3] != D or H % k.shape[1]:
        raise ValueError(f"causal attention needs k and v of shape [B, H_kv, S, D] with H_kv dividing H, "
                         f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if k.shape[1] != H:  # one copy per query head: cheap beside the S^2 / 2 products
        k, v = (t.repeat_interleave(H // t.shape[1], dim=1) for t in (k, v))
    return band(q, k, v, S, D ** -0.5 if scale is None else scale, (), q.dtype, right=0)[0]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: SparsePattern,
              scale: float | None = None) -> torch.Tensor:
    """q, k, v: [B, H, S, D] on the CPU, float32 or bfloat16 → [B, H, S, D] in q's dtype."""
    why = unsupported(q, k, v)
    if why:
        raise ValueError(f"the cpp attention backend cannot take these tensors: {why}")
    S, D = q.shape[2], q.shape[3]
    pattern.check(S)
    scale = D ** -0.5 if scale is None else scale
    covered = pattern.window >= S - 1
    if covered:  # the band is everything: one fused dense call
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    extra = _parts.random_block_part(q, k, v, pattern, scale)
    out, lse = band(q, k, v, pattern.window, scale, tuple(pattern.global_tokens),
                    q.dtype if extra is None else torch.float32)
    if extra is not None:
        out = _parts.merge([(out, lse), extra])[0]
    if pattern.global_tokens:  # global queries attend every key
        index = list(pattern.global_tokens)
        out[:, :, index] = F.scaled_dot_product_attention(q[:, :, index], k, v, scale=scale).to(out.dtype)
    return out if out.dtype == q.dtype else out.to(q.dtype)
