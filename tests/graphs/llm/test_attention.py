"""The local writer's attention (``graphs/llm/attention.py``) against transformers' SDPA function, which
it replaces on the CPU: the same outputs within rounding, on random tensors and in the shipped SmolLM2."""

from __future__ import annotations

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from graphs.llm import LocalLLM, attention
from kernels import backend_available

needs_cxx = pytest.mark.skipif(not backend_available("cpp", "cpu"), reason="no C++ compiler to build the causal kernel")


class Attention(torch.nn.Module):
    """What the attention functions read from a decoder's attention module."""

    def __init__(self, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.num_key_value_groups = heads // kv_heads
        self.is_causal = True


def tensors(B, H, KV, S, L, D, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, S, D, generator=gen).to(dtype)
    k, v = (torch.randn(B, KV, L, D, generator=gen).to(dtype) for _ in range(2))
    return q, k, v


def compare(q, k, v, mask, dtype) -> tuple[float, float]:
    """(our error, SDPA's error in the inputs' dtype) against SDPA in float64."""
    module = Attention(q.shape[1], k.shape[1])
    with torch.inference_mode():
        ours, _ = attention.attention_forward(module, q, k, v, mask, scaling=q.shape[-1] ** -0.5)
        low, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=q.shape[-1] ** -0.5)
        oracle, _ = sdpa_attention_forward(module, q.double(), k.double(), v.double(), mask,
                                           scaling=q.shape[-1] ** -0.5)
    assert ours.shape == low.shape == (q.shape[0], q.shape[2], q.shape[1], q.shape[3]) and ours.dtype == dtype
    return (ours.double() - oracle).abs().max().item(), (low.double() - oracle).abs().max().item()


@needs_cxx
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("S", [2, 77, 300])
def test_a_prompt_read_with_the_causal_kernel_matches_sdpa(S, dtype):
    q, k, v = tensors(1, 9, 3, S, S, 64, dtype, seed=S)
    ours, theirs = compare(q, k, v, None, dtype)
    assert ours <= 2 * theirs + 1e-6


def test_a_decoding_step_is_sdpas():
    # one query against a left-padded, partly written cache: SDPA's own results, bit for bit
    q, k, v = tensors(3, 9, 3, 1, 200, 64, torch.bfloat16, seed=1)
    mask = torch.ones(3, 1, 1, 200, dtype=torch.bool)
    mask[1, ..., :40] = False
    mask[..., 180:] = False
    module = Attention(9, 3)
    with torch.inference_mode():
        ours, _ = attention.attention_forward(module, q, k, v, mask, scaling=0.125)
        theirs, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.125)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_a_decoding_step_without_a_mask_matches_sdpa(dtype):
    # a single conversation: no mask, grouped-query heads taken as rows of their key/value head
    q, k, v = tensors(2, 9, 3, 1, 700, 64, dtype, seed=4)
    ours, theirs = compare(q, k, v, None, dtype)
    assert ours <= 2 * theirs + 1e-6
    q1, k1, v1 = tensors(1, 4, 4, 1, 50, 32, dtype, seed=5)  # as many key/value heads as query heads: SDPA's
    module = Attention(4, 4)
    with torch.inference_mode():
        a, _ = attention.attention_forward(module, q1, k1, v1, None, scaling=0.2)
        b, _ = sdpa_attention_forward(module, q1, k1, v1, None, scaling=0.2)
    assert torch.equal(a, b)


def test_a_prompt_with_a_padding_mask_goes_to_sdpa():
    # SDPA's own results, bit for bit
    q, k, v = tensors(2, 4, 2, 30, 30, 32, torch.float32, seed=2)
    mask = torch.ones(2, 1, 30, 30, dtype=torch.bool).tril()
    mask[1, ..., :5] = False
    module = Attention(4, 2)
    with torch.inference_mode():
        ours, _ = attention.attention_forward(module, q, k, v, mask, scaling=0.2)
        theirs, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.2)
    assert torch.equal(ours, theirs)


@pytest.fixture(scope="module")
def smollm() -> LocalLLM:
    model = LocalLLM(dtype="float32")
    model.warm_up()
    return model


@needs_cxx
def test_the_writer_reads_with_our_attention_and_gets_sdpas_logits(smollm, monkeypatch):
    model, tok = smollm.model, smollm.tokenizer
    assert model.config._attn_implementation == attention.NAME
    text = "The Supplier may terminate this Agreement upon thirty (30) days' written notice. " * 20
    ids = torch.tensor([tok(text)["input_ids"]])
    kernel, calls = attention._causal_kernel(), []

    def counting(*args):
        calls.append(args[0].shape)
        return kernel(*args)

    monkeypatch.setattr(attention, "_causal_kernel", lambda: counting)
    try:
        with torch.inference_mode():
            ours = model(input_ids=ids).logits
            model.set_attn_implementation("sdpa")
            theirs = model(input_ids=ids).logits
    finally:
        model.set_attn_implementation(attention.NAME)
    assert len(calls) == model.config.num_hidden_layers  # every layer read the prompt with the kernel
    assert (ours - theirs).abs().max() <= 1e-3
    assert torch.equal(ours[0, -1].argmax(), theirs[0, -1].argmax())


def test_without_a_compiler_prompts_are_read_with_sdpa(monkeypatch, tmp_path):
    from kernels.impl import cpp

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("SECTIONRAG_CACHE", str(tmp_path / "cache"))
    cpp.library.cache_clear()
    attention._causal_kernel.cache_clear()
    try:
        q, k, v = tensors(1, 4, 2, 50, 50, 32, torch.float32, seed=3)
        module = Attention(4, 2)
        with torch.inference_mode(), pytest.warns(RuntimeWarning, match="no-such-compiler"):
            ours, _ = attention.attention_forward(module, q, k, v, None, scaling=0.2)
        with torch.inference_mode():
            theirs, _ = sdpa_attention_forward(module, q, k, v, None, scaling=0.2)
        assert torch.equal(ours, theirs)
    finally:
        cpp.library.cache_clear()
        attention._causal_kernel.cache_clear()
