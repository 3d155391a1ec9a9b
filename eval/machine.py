"""What machine a measurement or an answer came from: the CPU's model and how many CPUs the process sees.

Recorded with every answer the harness writes and with every benchmark, so that results gathered on
several machines (a long run resumed elsewhere, parts on different hosts) say so: bfloat16 kernels take
other code paths on other CPUs, and greedy answers can differ after a rounding-level near tie.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu() -> str:
    """``"<model>, <n> CPUs"``: what groups answers by the hardware that wrote them."""
    return f"{cpu_model()}, {os.cpu_count()} CPUs"
