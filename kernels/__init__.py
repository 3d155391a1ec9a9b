"""Sparse-attention masks and backends (imports only torch, triton and flash_attn, each lazily)."""

from kernels.api import (
    CAUSAL_DTYPES,
    IMPLS,
    BackendUnavailable,
    available_impls,
    backend_available,
    causal_attention,
    causal_attention_unavailable,
    pick_auto,
    sparse_attention,
)
from kernels.global_tokens import generate_global_tokens
from kernels.mask_ops import and_masks, dense_mask, or_masks
from kernels.pattern import SparsePattern
from kernels.random_blocks import generate_random_blocks, random_block_table
from kernels.sliding_window import generate_sliding_window

__all__ = [
    "CAUSAL_DTYPES", "IMPLS", "BackendUnavailable", "SparsePattern", "and_masks", "available_impls",
    "backend_available", "causal_attention", "causal_attention_unavailable", "dense_mask", "generate_global_tokens",
    "generate_random_blocks", "generate_sliding_window", "or_masks", "pick_auto", "random_block_table",
    "sparse_attention",
]
