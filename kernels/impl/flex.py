"""FlexAttention backend: the pattern's predicate compiled into a block-sparse kernel.

FlexAttention specializes its kernel to the sequence length, so lengths are bucketed (padded up to at most
1/8 more; padded keys are masked, padded query rows dropped) and each bucket compiles once. Block masks are
cached per (pattern, length). ``compiled=False`` runs FlexAttention eagerly, which on the CPU forms the dense
S x S scores: only for short inputs and for timing the compile's benefit.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F

from kernels.pattern import SparsePattern

BLOCK = 128


def bucket(length: int) -> int:
    """Round ``length`` up to a multiple of max(BLOCK, 2^(floor(log2 length) - 3)): at most 12.5% padding."""
    step = max(BLOCK, 1 << max(0, length.bit_length() - 4))
    return -(-length // step) * step


@functools.cache
def _compiled_flex():
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


@functools.lru_cache(maxsize=32)
def block_mask(pattern: SparsePattern, length: int, padded: int, device: str):
    """The cached ``BlockMask`` of ``pattern`` for ``length`` real tokens padded to ``padded``."""
    from torch.nn.attention.flex_attention import create_block_mask

    mask_mod = pattern.mask_mod(length, device, padded_length=padded)
    # on CUDA, build it compiled: the eager builder evaluates all S x S pairs at once (17 GB at 128k)
    return create_block_mask(mask_mod, None, None, padded, padded, device=device, BLOCK_SIZE=BLOCK,
                             _compile=device.startswith("cuda"))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: SparsePattern,
              scale: float | None = None, compiled: bool = True) -> torch.Tensor:
    """q, k, v: [B, H, S, D] → [B, H, S, D] in q's dtype."""
    from torch.nn.attention.flex_attention import flex_attention

    S = q.shape[2]
    pattern.check(S)
    padded = bucket(S) if compiled else S
    if padded != S:
        q, k, v = (F.pad(t, (0, 0, 0, padded - S)) for t in (q, k, v))
    mask = block_mask(pattern, S, padded, str(q.device))
    if compiled:
        out = _compiled_flex()(q, k, v, block_mask=mask, scale=scale)
    else:
        with warnings.catch_warnings():  # eager on purpose: torch's "use torch.compile" advice is noise here
            warnings.simplefilter("ignore")
            out = flex_attention(q, k, v, block_mask=mask, scale=scale)
    return out[:, :, :S]
