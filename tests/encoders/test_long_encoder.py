"""LongEncoder against its peer (HF BertModel on the same MiniLM weights), across backends, and end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders.long_encoder import LongEncoder, pool_spans, sentence_spans
from encoders.long_model import LongEncoderArgs, LongEncoderModel, extend_positions
from kernels.impl.cpp import compiler

TEXT = (
    "This Agreement may be terminated by either party on thirty days written notice. "
    "The Supplier shall deliver the goods to the Customer's warehouse.\n"
    "Section 9.2 Termination for cause. Either party may terminate immediately upon a material breach! "
    "Payment is due within forty-five days of the invoice date."
)


@pytest.fixture(scope="module")
def minilm_path():
    from encoders.embedder import default_model_path

    return default_model_path()


@pytest.fixture(scope="module")
def hf_bert(minilm_path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(minilm_path), local_files_only=True).eval()


@pytest.fixture(scope="module")
def input_ids(minilm_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path), local_files_only=True)
    return tok([TEXT * 3], return_tensors="pt")["input_ids"]            # ~190 tokens


@pytest.mark.parametrize("impl", ["blocked", pytest.param("cpp", marks=pytest.mark.skipif(compiler() is None, reason="no C++ compiler")), "reference"])
@pytest.mark.parametrize("max_positions", [512, 65536])
def test_full_window_reproduces_hf_bert(minilm_path, hf_bert, input_ids, impl, max_positions):
    model = LongEncoderModel.from_pretrained(minilm_path, window=4096, max_positions=max_positions, impl=impl)
    with torch.no_grad():
        expected = hf_bert(input_ids).last_hidden_state
        ours = model(input_ids, global_tokens=(0,))
    assert (expected - ours).abs().max().item() <= 1e-4


def test_positions_are_extended_by_copying(minilm_path):
    model = LongEncoderModel.from_pretrained(minilm_path, max_positions=2000)
    table = model.embeddings.pos_embeddings.weight
    assert table.shape == (2000, 384)
    assert torch.equal(table[512:1024], table[:512]) and torch.equal(table[1536:2000], table[:464])
    assert torch.equal(extend_positions(torch.arange(6.0).view(3, 2), 4), torch.tensor([[0, 1], [2, 3], [4, 5], [0, 1.0]]))


@pytest.mark.parametrize("impl", ["blocked", pytest.param("cpp", marks=pytest.mark.skipif(compiler() is None, reason="no C++ compiler")), "flex_eager"])
def test_sparse_encoder_backends_agree_with_the_reference(impl):
    torch.manual_seed(0)
    args = LongEncoderArgs.from_name("tiny", window=8, random_blocks=2, block_size=16, impl="reference")
    model = LongEncoderModel(args).eval()
    ids = torch.randint(0, args.vocab_size, (2, 203))
    with torch.no_grad():
        expected = model(ids, global_tokens=(0, 1, 2))
        model.args = LongEncoderArgs.from_name("tiny", window=8, random_blocks=2, block_size=16, impl=impl)
        ours = model(ids, global_tokens=(0, 1, 2))
    assert (expected - ours).abs().max().item() <= 1e-4


def test_long_input_past_the_pretrained_positions(minilm_path):
    model = LongEncoderModel.from_pretrained(minilm_path, window=64, max_positions=4096)
    ids = torch.randint(1000, 20000, (1, 1500))
    with torch.no_grad():
        hidden = model(ids, global_tokens=(0,))
    assert hidden.shape == (1, 1500, 384) and torch.isfinite(hidden).all()
    with pytest.raises(ValueError, match="exceed"):
        model(torch.zeros(1, 5000, dtype=torch.long))


def test_sentence_spans_and_pooling():
    spans = sentence_spans("One two.  Three four!\nFive\n\n six ")
    assert spans == [(0, 8), (10, 21), (22, 26), (29, 32)]
    tokens = np.arange(8, dtype=np.float32).reshape(4, 2)
    offsets = np.array([[0, 3], [4, 8], [10, 15], [16, 21]])
    pooled = pool_spans(tokens, offsets, [(0, 8), (10, 21), (30, 40)])
    assert np.allclose(pooled, [[1, 2], [5, 6], [0, 0]])


@pytest.fixture(scope="module")
def encoder():
    enc = LongEncoder(window=32)
    assert enc._model is None  # nothing loads until first use
    return enc


def test_encode_a_section_with_a_question(encoder):
    section = TEXT * 4
    plain = encoder.encode(section)
    asked = encoder.encode(section, query="How can the agreement be terminated?")
    assert plain.token_embeddings.shape == asked.token_embeddings.shape and plain.token_embeddings.shape[1] == 384
    assert len(asked.spans) == len(sentence_spans(section)) == asked.span_embeddings.shape[0]
    assert all(section[a:b].strip() == section[a:b] for a, b in asked.spans)
    assert asked.query_embedding is not None and plain.query_embedding is None
    # the question is global: every section token sees it
    assert not np.allclose(plain.token_embeddings, asked.token_embeddings, atol=1e-3)
    # token offsets point into the section text
    first = asked.token_offsets[0]
    assert section[first[0]:first[1]].lower() == "this"
    # the termination sentence is the closest to the question
    q = asked.query_embedding / np.linalg.norm(asked.query_embedding)
    sims = asked.span_embeddings @ q / np.linalg.norm(asked.span_embeddings, axis=1)
    best = section[slice(*asked.spans[int(sims.argmax())])]
    assert "terminat" in best.lower()


def test_encode_truncates_past_max_tokens(minilm_path):
    enc = LongEncoder(minilm_path, window=16, max_tokens=64)
    out = enc.encode(TEXT * 3, spans=[(0, 20)])
    assert out.truncated and out.token_embeddings.shape == (62, 384)
    assert out.span_embeddings.shape == (1, 384)


def test_a_bfloat16_reading_stays_close_to_float32(encoder, minilm_path):
    section = TEXT * 4
    full = encoder.encode(section)
    half = LongEncoder(minilm_path, window=32, dtype="bfloat16")
    low = half.encode(section)
    assert half.model.embeddings.tok_embeddings.weight.dtype == torch.bfloat16
    assert low.span_embeddings.dtype == np.float32 and low.spans == full.spans
    a, b = full.span_embeddings, low.span_embeddings
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99 and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="dtype"):
        LongEncoder(dtype="int8")


def test_inference_then_autograd_give_the_same_states():
    # the band mask is cached; built under inference_mode it must still serve a later autograd pass
    torch.manual_seed(0)
    model = LongEncoderModel(LongEncoderArgs.from_name("tiny", impl="blocked")).eval()
    ids = torch.randint(0, 128, (2, 300))
    with torch.inference_mode():
        fast = model(ids, global_tokens=(0,))
    slow = model(ids, global_tokens=(0,))
    assert slow.requires_grad
    torch.testing.assert_close(fast, slow.detach(), rtol=0, atol=1e-6)


def test_fused_linear_gelu_and_residual_linear_match_the_plain_modules():
    from encoders.long_model import linear_gelu, residual_linear

    torch.manual_seed(0)
    w1, w2 = torch.nn.Linear(48, 96), torch.nn.Linear(96, 48)
    x = torch.randn(2, 37, 48)
    with torch.no_grad():
        hidden = linear_gelu(x, w1)
        assert (hidden - torch.nn.functional.gelu(w1(x))).abs().max() <= 1e-5
        assert (residual_linear(x, hidden, w2) - (x + w2(hidden))).abs().max() <= 1e-5
        xb, w1b = x.bfloat16(), torch.nn.Linear(48, 96).bfloat16()
        # bfloat16: GELU of the float32 product, then one rounding (the plain path rounds twice)
        exact = torch.nn.functional.gelu(torch.nn.functional.linear(xb.float(), w1b.weight.float(), w1b.bias.float()))
        assert (linear_gelu(xb, w1b).float() - exact).abs().max() <= 2 * (torch.nn.functional.gelu(w1b(xb)).float() - exact).abs().max()
    out = residual_linear(x, linear_gelu(x, w1), w2)  # with autograd: the plain calls, gradients flow
    out.sum().backward()
    assert w1.weight.grad is not None and torch.isfinite(w1.weight.grad).all()
