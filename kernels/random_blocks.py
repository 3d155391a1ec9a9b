"""BigBird random attention: each query block attends a fixed set of randomly chosen key blocks.

Zaheer et al., "Big Bird: Transformers for Longer Sequences", arXiv:2007.14062 (2020), §2 and App. D
(block-sparse form: blocks of ``block_size`` tokens, ``r`` random key blocks per query block).
The choice comes from a seeded ``torch.Generator``, so the same (blocks, r, seed) gives the same table on
every call, every device and every backend.
"""

from __future__ import annotations

import functools

import torch

from kernels.mask_ops import MaskMod


@functools.lru_cache(maxsize=64)
def _table_cpu(num_blocks: int, per_block: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.rand(num_blocks, num_blocks, generator=generator).argsort(dim=1)[:, :per_block]
    table = torch.zeros(num_blocks, num_blocks, dtype=torch.bool)
    table.scatter_(1, chosen, True)
    return table


def random_block_table(num_blocks: int, per_block: int, seed: int = 0,
                       device: torch.device | str = "cpu") -> torch.Tensor:
    """[num_blocks, num_blocks] bool: row i marks the ``per_block`` key blocks query block i attends."""
    if per_block < 0:
        raise ValueError(f"the number of random blocks must be >= 0, got {per_block}")
    per_block = min(per_block, num_blocks)
    return _table_cpu(num_blocks, per_block, seed).to(device)


def generate_random_blocks(table: torch.Tensor, block_size: int) -> MaskMod:
    """Predicate: key block ``kv_idx // block_size`` is one of the query block's random blocks."""

    def random_blocks(b, h, q_idx, kv_idx):
        return table[q_idx // block_size, kv_idx // block_size]

    return random_blocks
