"""The machine sectionrag runs on: where it caches derived files, and which CPU it is.

One rule for each, used by every package (this module imports no project code, so ``kernels`` may use
it too):

* ``cache_dir()``: ``$SECTIONRAG_CACHE``, else ``~/.cache/sectionrag`` — the converted answer-writer
  weights (``models/``) and the compiled C++ attention kernel (``kernels/``) live there;
* ``cpu()``: the CPU's model and how many CPUs the process sees, recorded with every answer and benchmark
  (bfloat16 kernels take other code paths on other CPUs, so results gathered on several machines say so);
  ``cpu_identity()`` adds the feature flags, for build caches keyed by what ``-march=native`` sees;
* ``amx_cpu()`` / ``native_bf16_cpu()``: whether bfloat16 products run natively here;
* ``release_free_memory()``: freed heap memory handed back to the system after each question (glibc keeps it
  otherwise: a process answering 1,000 different questions grew from 2.4 to 4.0 GB without it, while the Python
  objects and tensors it held stayed the same size; docs/evaluation.md "Soak").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import threading
import time
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$SECTIONRAG_CACHE`` (else ``~/.cache/sectionrag``), joined with ``parts``."""
    root = Path(os.environ.get("SECTIONRAG_CACHE") or Path.home() / ".cache" / "sectionrag")
    return root.joinpath(*parts)


@functools.cache
def _cpuinfo() -> tuple[str, str] | None:
    """The first ``model name`` and ``flags`` lines of ``/proc/cpuinfo`` (Linux), else None."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    model = next((line for line in lines if line.startswith("model name")), "")
    flags = next((line for line in lines if line.startswith("flags")), "")
    return model, flags


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    info = _cpuinfo()
    if info and info[0]:
        return info[0].split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu() -> str:
    """``"<model>, <n> CPUs"``: what groups answers and measurements by the hardware that made them."""
    return f"{cpu_model()}, {os.cpu_count()} CPUs"


def cpu_identity() -> str:
    """The CPU model and its feature flags: what ``-march=native`` depends on (a cache may be shared by hosts)."""
    info = _cpuinfo()
    if info is None:
        return platform.machine() + platform.processor()
    return "\n".join(line for line in info if line) or platform.processor()


def amx_cpu() -> bool:
    """Whether this CPU has AMX tiles (bfloat16 matrix products several times faster than float32)."""
    import torch

    return bool(torch.cpu._is_amx_tile_supported())  # noqa: SLF001 - torch has no public check


def native_bf16_cpu() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AMX tiles or AVX512-BF16 dot products)."""
    import torch

    return bool(amx_cpu() or torch.cpu._is_avx512_bf16_supported())  # noqa: SLF001 - torch has no public check


_TRIM_EVERY_S = 1.0
_trim = {"last": 0.0}
_trim_lock = threading.Lock()


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Hands the C heap's free pages back to the system (glibc ``malloc_trim(0)``), at most once a second; whether it
    ran. The tensors of every question are freed when it ends, but glibc keeps the pages for reuse, and sections of
    ever new lengths fragment them: without this a long-running process's memory grows with every new question."""
    trim = _malloc_trim()
    if trim is None:
        return False
    with _trim_lock:
        now = time.monotonic()
        if now - _trim["last"] < _TRIM_EVERY_S:
            return False
        _trim["last"] = now
    trim(0)
    return True
