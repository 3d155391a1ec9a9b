"""One sparse-attention pattern: sliding window + global tokens + BigBird random blocks.

The pattern is data (a frozen, hashable dataclass), so backends can cache what they derive from it (block
masks, block tables) and read its structure directly; ``mask_mod`` gives the same pattern as a composed
predicate for the reference and FlexAttention.

>>> p = SparsePattern.longformer(attention_window=512, global_tokens=(0,))   # window=256 each side
>>> p = SparsePattern.bigbird(block_size=64, random_blocks=3, global_tokens=(0, 1), seed=7)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kernels.global_tokens import generate_global_tokens, global_flags
from kernels.mask_ops import MaskMod, and_masks, or_masks
from kernels.random_blocks import generate_random_blocks, random_block_table
from kernels.sliding_window import generate_sliding_window


@dataclass(frozen=True)
class SparsePattern:
    """Which keys each query attends (the union of the three parts)."""

    window: int
    """One-sided band width: query i attends keys i - window .. i + window (Longformer's w/2)."""
    global_tokens: tuple[int, ...] = ()
    """Positions that attend all tokens and are attended by all (e.g. [CLS] and the question tokens)."""
    random_blocks: int = 0
    """BigBird: key blocks chosen at random (seeded) for each query block; 0 turns the part off."""
    block_size: int = 64
    """Block size of the random part, in tokens."""
    seed: int = 0
    """Seed of the random block choice; the same seed gives the same blocks on every call."""

    def __post_init__(self) -> None:
        if self.window < 0:
            raise ValueError(f"window must be >= 0 tokens, got {self.window}")
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")
        if self.random_blocks < 0:
            raise ValueError(f"random_blocks must be >= 0, got {self.random_blocks}")
        if any(g < 0 for g in self.global_tokens):
            raise ValueError("global token positions must be >= 0")
        object.__setattr__(self, "global_tokens", tuple(sorted(set(int(g) for g in self.global_tokens))))

    @classmethod
    def longformer(cls, attention_window: int = 512, global_tokens: tuple[int, ...] = (0,)) -> SparsePattern:
        """HF Longformer's convention: ``attention_window`` is the full (two-sided) window, even."""
        if attention_window % 2:
            raise ValueError(f"attention_window must be even (HF Longformer convention), got {attention_window}")
        return cls(window=attention_window // 2, global_tokens=global_tokens)

    @classmethod
    def bigbird(cls, block_size: int = 64, window_blocks: int = 3, random_blocks: int = 3,
                global_tokens: tuple[int, ...] = (0,), seed: int = 0) -> SparsePattern:
        """BigBird-ITC: ``random_blocks`` random blocks, global tokens, and a token-level band as wide on average as
        BigBird's block-level band of ``window_blocks`` blocks (ours is exact per token, not block-aligned)."""
        return cls(window=(window_blocks // 2) * block_size + block_size // 2, global_tokens=global_tokens,
                   random_blocks=random_blocks, block_size=block_size, seed=seed)

    def with_globals(self, global_tokens: tuple[int, ...]) -> SparsePattern:
        return SparsePattern(self.window, tuple(global_tokens), self.random_blocks, self.block_size, self.seed)

    def check(self, length: int) -> None:
        """Raise if the pattern does not fit a sequence of ``length`` tokens."""
        if self.global_tokens and self.global_tokens[-1] >= length:
            raise ValueError(f"global token {self.global_tokens[-1]} is outside a sequence of {length} tokens")

    def num_random_blocks(self, length: int) -> int:
        return -(-length // self.block_size)

    def is_global(self, length: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """[length] bool."""
        self.check(length)
        return global_flags(self.global_tokens, length, device)

    def random_table(self, length: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
        """[nb, nb] bool with nb = ceil(length / block_size), or None without a random part."""
        if not self.random_blocks:
            return None
        return random_block_table(self.num_random_blocks(length), self.random_blocks, self.seed, device)

    def mask_mod(self, length: int, device: torch.device | str = "cpu", padded_length: int | None = None) -> MaskMod:
        """The pattern as a predicate for a sequence of ``length`` tokens.

        With ``padded_length`` (>= length) the predicate may also be evaluated at padded positions: padded keys
        are never attended; the caller discards the rows of padded queries.
        """
        padded = padded_length or length
        if padded < length:
            raise ValueError("padded_length must be >= length")
        flags = torch.zeros(padded, dtype=torch.bool, device=device)
        flags[:length] = self.is_global(length, device)
        mods = [generate_sliding_window(self.window), generate_global_tokens(flags)]
        table = self.random_table(length, device)
        if table is not None:
            nb = -(-padded // self.block_size)
            full = torch.zeros(nb, nb, dtype=torch.bool, device=device)
            full[: table.shape[0], : table.shape[1]] = table
            mods.append(generate_random_blocks(full, self.block_size))
        pattern = or_masks(*mods)
        if padded == length:
            return pattern
        valid = torch.arange(padded, device=device) < length

        def real_key(b, h, q_idx, kv_idx):
            return valid[kv_idx]

        return and_masks(pattern, real_key)
