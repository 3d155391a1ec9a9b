"""Composition of mask predicates, and the dense oracle a block mask is tested against.

A mask predicate (FlexAttention's ``mask_mod``) is ``(b, h, q_idx, kv_idx) -> bool``: True where the query
may attend the key. Patterns are built by composing small predicates: Longformer is
``or_masks(sliding_window, global_tokens)``, BigBird adds ``random_blocks``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MaskMod = Callable[[object, object, torch.Tensor, torch.Tensor], torch.Tensor]


def or_masks(*mods: MaskMod) -> MaskMod:
    """A predicate that is True where any of ``mods`` is."""
    if not mods:
        raise ValueError("or_masks needs at least one mask predicate")

    def or_mask(b, h, q_idx, kv_idx):
        result = mods[0](b, h, q_idx, kv_idx)
        for mod in mods[1:]:
            result = result | mod(b, h, q_idx, kv_idx)
        return result

    return or_mask


def and_masks(*mods: MaskMod) -> MaskMod:
    """A predicate that is True where all of ``mods`` are."""
    if not mods:
        raise ValueError("and_masks needs at least one mask predicate")

    def and_mask(b, h, q_idx, kv_idx):
        result = mods[0](b, h, q_idx, kv_idx)
        for mod in mods[1:]:
            result = result & mod(b, h, q_idx, kv_idx)
        return result

    return and_mask


def dense_mask(mask_mod: MaskMod, q_len: int, kv_len: int, device: torch.device | str = "cpu",
               q_start: int = 0) -> torch.Tensor:
    """Evaluate ``mask_mod`` on every (query, key) pair: [q_len, kv_len] bool, rows from ``q_start``.

    Patterns here do not depend on batch or head, so ``b`` and ``h`` are 0.
    """
    q_idx = torch.arange(q_start, q_start + q_len, device=device)[:, None]
    kv_idx = torch.arange(kv_len, device=device)[None, :]
    return mask_mod(0, 0, q_idx, kv_idx).expand(q_len, kv_len)
