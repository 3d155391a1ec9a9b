"""SectionReader: in-context sentence vectors of whole sections, against HF BertModel as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders.long_encoder import LongEncoder, sentence_spans
from encoders.section_reader import SectionReader

SECTION = (
    "ARTICLE 9 TERMINATION. This Agreement may be terminated by either party on thirty days written notice. "
    "Either party may terminate immediately upon a material breach that is not cured within ten days. "
    "Upon termination the Supplier shall return all Confidential Information. "
    "Payment is due within forty-five days of the invoice date."
)


@pytest.fixture(scope="module")
def minilm_path():
    from encoders.embedder import default_model_path

    return default_model_path()


def test_a_sentence_vector_is_its_tokens_mean_in_the_whole_section(minilm_path):
    """A window wider than the section: the vector is HF BERT's mean over the sentence's tokens, read in place."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path), local_files_only=True)
    bert = AutoModel.from_pretrained(str(minilm_path), local_files_only=True).eval()
    enc = tok(SECTION, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].numpy()
    with torch.no_grad():
        hidden = bert(**enc).last_hidden_state[0].numpy()
    spans = sentence_spans(SECTION)
    reader = SectionReader(LongEncoder(minilm_path, window=1024, max_tokens=2048, impl="reference"))
    vecs = reader.sentence_vectors("s1", SECTION, spans)
    assert vecs.shape == (len(spans), 384)
    for (s, e), vec in zip(spans, vecs):
        inside = (offsets[:, 0] < e) & (offsets[:, 1] > s) & (offsets[:, 1] > offsets[:, 0])
        expected = hidden[inside].mean(axis=0)
        expected /= np.linalg.norm(expected)
        assert np.abs(vec - expected).max() <= 1e-4
    # the same sentence embedded on its own is a different vector: its place in the section counts
    alone = reader.sentence_vectors("alone", spans_text := SECTION[spans[1][0]:spans[1][1]], [(0, len(spans_text))])
    assert float(alone[0] @ vecs[1]) < 0.999


def test_sections_are_read_once_then_served_from_the_cache(minilm_path):
    reader = SectionReader(LongEncoder(minilm_path, window=64), cache_sections=1)
    spans = sentence_spans(SECTION)
    first = reader.sentence_vectors("s1", SECTION, spans)
    read = reader.tokens_read
    assert read > 0
    assert np.array_equal(reader.sentence_vectors("s1", SECTION, spans), first) and reader.tokens_read == read
    reader.sentence_vectors("s2", SECTION, spans)  # pushes s1 out of a one-section cache
    reader.sentence_vectors("s1", SECTION, spans)
    assert reader.tokens_read == 3 * read


def test_a_section_past_the_token_limit_is_read_in_pieces_between_sentences(minilm_path):
    text = " ".join(f"Clause {i}: the Licensee shall pay a royalty of {i} percent of net sales." for i in range(60))
    spans = sentence_spans(text)
    reader = SectionReader(LongEncoder(minilm_path, window=32, max_tokens=128))
    pieces = list(reader._pieces(text, tuple(spans)))
    assert len(pieces) > 5
    assert [s for _, _, group in pieces for s in group] == spans  # every sentence, once, in order
    for a, b, _ in pieces:
        assert len(reader.encoder.tokenizer(text[a:b], add_special_tokens=False)["input_ids"]) <= 126
    vecs = reader.sentence_vectors("long", text, spans)
    assert vecs.shape == (len(spans), 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)  # no sentence was cut off
    assert not reader._read(text, ()).size


def test_bad_cache_size():
    with pytest.raises(ValueError, match="cache_sections"):
        SectionReader(LongEncoder(), cache_sections=-1)
