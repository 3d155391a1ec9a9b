"""The local answer writer's attention on the CPU: our causal kernel for prompts, transformers' SDPA for
everything else.

Registered with transformers as the attention implementation ``"sectionrag"`` (its masks are SDPA's),
so a loaded decoder switches to it with ``model.set_attn_implementation(NAME)``. Reading a prompt is
where a small writer spends much of its time: for a 1,500-token prompt SDPA's fused CPU kernel computes
9 heads of causal attention in about 55 ms a layer, the C++ kernel (``kernels/csrc/band_attention.cpp``
with the band reaching back to the first token and not forward) in about 15 ms, with the same error.
Decoding steps stay with SDPA (a grouped float32 product was 17% faster per step at 3,000 cached tokens
but, rounding its probabilities to bfloat16, twice as far from the float64 result). Without a mask
(one conversation) the step's query heads are grouped under their key/value head for SDPA, as
transformers does with a mask: its grouped-query flag takes a path 8 times slower. Anything else (a
mask while reading a prompt, dropout, soft-capping, a sliding window, attention sinks, a GPU, a dtype
the kernel does not take, or a host without a C++ compiler) goes to SDPA too.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F

from kernels import CAUSAL_DTYPES, causal_attention, causal_attention_unavailable

NAME = "sectionrag"

_UNSUPPORTED_KWARGS = ("softcap", "sliding_window", "s_aux", "position_bias")


@functools.cache
def _causal_kernel():
    """``kernels.causal_attention``, or None where the C++ kernel cannot be built here."""
    why = causal_attention_unavailable()
    if why is not None:
        warnings.warn(f"the writer reads prompts with SDPA: the C++ causal kernel is unavailable ({why})",
                      RuntimeWarning, stacklevel=2)
        return None
    return causal_attention


def _plain(module, query: torch.Tensor, dropout: float, kwargs: dict) -> bool:
    """Whether this call is plain softmax attention on CPU tensors the fast paths take."""
    return (query.device.type == "cpu" and query.dtype in CAUSAL_DTYPES and dropout == 0.0
            and not torch.is_grad_enabled() and getattr(module, "sliding_window", None) is None
            and all(kwargs.get(k) is None for k in _UNSUPPORTED_KWARGS))


def attention_forward(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                      is_causal: bool | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: q [B, H, S, D], k and v [B, H_kv, L, D] →
    ([B, S, H, D], None)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    S, L = query.shape[2], key.shape[2]
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    if _plain(module, query, dropout, kwargs) and key.dtype == query.dtype == value.dtype:
        if S > 1 and S == L and attention_mask is None and causal and (kernel := _causal_kernel()) is not None:
            return kernel(query, key, value, scale).transpose(1, 2), None
        if S == 1 and attention_mask is None and query.shape[1] != key.shape[1]:
            # one query per head and no mask (decoding a single conversation): SDPA on the key/value heads,
            # each taking its group's queries as rows, as transformers does when there is a mask; its
            # grouped-query flag instead takes a path 8 times slower at 3,000 cached tokens
            B, H, _, D = query.shape
            grouped = query.reshape(B, key.shape[1], H // key.shape[1], D)
            out = F.scaled_dot_product_attention(grouped, key, value, scale=scale)
            return out.reshape(B, 1, H, D), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  is_causal=is_causal, **kwargs)


@functools.cache
def register() -> str:
    """Registers the implementation (and SDPA's masks under its name) with transformers; returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    return NAME
