"""Global tokens: a few positions that attend every token and that every token attends.

Beltagy et al., "Longformer", arXiv:2004.05150 (2020), §3.1 (task-motivated global attention, e.g. the
question tokens in QA); Zaheer et al., "Big Bird", arXiv:2007.14062 (2020), §2 (ITC global tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kernels.mask_ops import MaskMod


def global_flags(global_tokens: Sequence[int], length: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[length] bool, True at the global positions. Positions must lie in [0, length)."""
    flags = torch.zeros(length, dtype=torch.bool, device=device)
    if len(global_tokens):
        index = torch.as_tensor(list(global_tokens), dtype=torch.long)
        if int(index.min()) < 0:
            raise ValueError(f"global token positions must be >= 0, got {int(index.min())}")
        flags[index.to(device)] = True
    return flags


def generate_global_tokens(is_global: torch.Tensor) -> MaskMod:
    """Predicate: the query or the key is global. ``is_global``: [S] bool (see ``global_flags``)."""

    def global_tokens(b, h, q_idx, kv_idx):
        return is_global[q_idx] | is_global[kv_idx]

    return global_tokens
