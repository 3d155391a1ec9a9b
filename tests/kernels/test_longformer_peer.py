"""Our sliding-window attention equals HF ``LongformerSelfAttention`` given the same weights and window."""

from __future__ import annotations

import pytest
import torch

from kernels import SparsePattern, sparse_attention
from kernels.impl.cpp import compiler

transformers = pytest.importorskip("transformers")


def hf_and_ours(global_tokens: tuple[int, ...], impl: str, length: int = 96, window: int = 16):
    from transformers import LongformerConfig
    from transformers.models.longformer.modeling_longformer import LongformerSelfAttention

    torch.manual_seed(0)
    config = LongformerConfig(hidden_size=64, num_attention_heads=4, attention_window=[window],
                              num_hidden_layers=1, attention_probs_dropout_prob=0.0)
    attn = LongformerSelfAttention(config, layer_id=0).eval()
    with torch.no_grad():  # one set of projections for local and global attention, as in our encoder
        attn.query_global.load_state_dict(attn.query.state_dict())
        attn.key_global.load_state_dict(attn.key.state_dict())
        attn.value_global.load_state_dict(attn.value.state_dict())
    hidden = torch.randn(1, length, 64)
    mask = torch.zeros(1, length)  # HF's convention: 0 local, +10000 global, -10000 padding
    mask[0, list(global_tokens)] = 10000.0
    with torch.no_grad():
        expected = attn(hidden, attention_mask=mask, is_index_masked=mask < 0, is_index_global_attn=mask > 0,
                        is_global_attn=bool(global_tokens))[0]

        def heads(linear):  # [1, S, 64] → [1, H, S, 16]
            return linear(hidden).view(1, length, 4, 16).transpose(1, 2)

        pattern = SparsePattern.longformer(attention_window=window, global_tokens=global_tokens)
        ours = sparse_attention(heads(attn.query), heads(attn.key), heads(attn.value), pattern=pattern, impl=impl)
    return expected, ours.transpose(1, 2).reshape(1, length, 64)


@pytest.mark.parametrize("impl", ["reference", "blocked", pytest.param("cpp", marks=pytest.mark.skipif(compiler() is None, reason="no C++ compiler"))])
@pytest.mark.parametrize("global_tokens", [(), (0,), (0, 3, 50)], ids=str)
def test_sliding_window_equals_hf_longformer(global_tokens, impl):
    expected, ours = hf_and_ours(global_tokens, impl)
    assert (expected - ours).abs().max().item() <= 1e-5
