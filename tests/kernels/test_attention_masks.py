"""Mask predicates against explicit loops, composition, padding, and BigBird's seeded random blocks."""

from __future__ import annotations

import pytest
import torch

from kernels import (
    SparsePattern,
    and_masks,
    dense_mask,
    generate_global_tokens,
    generate_sliding_window,
    or_masks,
    random_block_table,
)


def explicit_mask(pattern: SparsePattern, length: int) -> torch.Tensor:
    """The pattern written out pair by pair: the ground truth for the predicates."""
    table = pattern.random_table(length)
    allowed = torch.zeros(length, length, dtype=torch.bool)
    for i in range(length):
        for j in range(length):
            allowed[i, j] = (
                abs(i - j) <= pattern.window
                or i in pattern.global_tokens
                or j in pattern.global_tokens
                or (table is not None and bool(table[i // pattern.block_size, j // pattern.block_size]))
            )
    return allowed


@pytest.mark.parametrize("pattern", [
    SparsePattern(window=0),
    SparsePattern(window=3, global_tokens=(0, 7)),
    SparsePattern(window=2, global_tokens=(5,), random_blocks=2, block_size=4, seed=11),
])
def test_pattern_predicate_matches_the_explicit_mask(pattern):
    length = 23  # not a multiple of the block size
    assert torch.equal(dense_mask(pattern.mask_mod(length), length, length), explicit_mask(pattern, length))


def test_longformer_is_or_of_window_and_globals():
    flags = torch.zeros(10, dtype=torch.bool)
    flags[2] = True
    mod = or_masks(generate_sliding_window(1), generate_global_tokens(flags))
    mask = dense_mask(mod, 10, 10)
    assert mask[2].all() and mask[:, 2].all()
    assert mask[5, 4] and mask[5, 6] and not mask[5, 7] and not mask[0, 9]
    both = dense_mask(and_masks(generate_sliding_window(1), generate_global_tokens(flags)), 10, 10)
    assert both.sum() == 5  # the band cells in row 2 and column 2: (1,2), (2,1), (2,2), (2,3), (3,2)


def test_padded_predicate_never_attends_padding():
    pattern = SparsePattern(window=4, global_tokens=(1,), random_blocks=1, block_size=4, seed=3)
    real = dense_mask(pattern.mask_mod(13), 13, 13)
    padded = dense_mask(pattern.mask_mod(13, padded_length=16), 16, 16)
    assert torch.equal(padded[:13, :13], real)
    assert not padded[:, 13:].any()


def test_random_blocks_are_seeded_and_reproducible():
    first = random_block_table(20, 3, seed=5)
    assert torch.equal(first, random_block_table(20, 3, seed=5))
    assert not torch.equal(first, random_block_table(20, 3, seed=6))
    assert (first.sum(dim=1) == 3).all()
    pattern = SparsePattern(window=1, random_blocks=3, block_size=8, seed=5)
    assert torch.equal(pattern.random_table(160), first)


def test_bad_patterns_raise():
    with pytest.raises(ValueError, match="window"):
        SparsePattern(window=-1)
    with pytest.raises(ValueError, match="even"):
        SparsePattern.longformer(attention_window=5)
    with pytest.raises(ValueError, match="outside"):
        SparsePattern(window=2, global_tokens=(10,)).check(10)
    assert SparsePattern.longformer(512, (0,)).window == 256
