"""The chunked baseline on a real store (the sample contract, filing and patient) with the real MiniLM."""

from __future__ import annotations

import pytest
from conftest import SAMPLES

from eval.baseline import CACHE_DIR, Chunk, ChunkBaseline
from pipeline import Pipeline
from pipeline.store import SectionStore

CONTRACT = "BNLFINANCIALCORP-outsourcing-agreement"
FILING = "ULTABEAUTY_2023Q4_EARNINGS"


@pytest.fixture(scope="module")
def baseline(sample_store):
    return ChunkBaseline.open(sample_store)


def test_chunks_are_exact_consecutive_windows_that_fit_the_embedder(baseline, sample_store):
    store = SectionStore(sample_store)
    tok = baseline.embedder.tokenizer
    assert baseline.embedder.model.max_seq_length == 512
    for doc_id in store.document_ids():
        text = store.document_text(doc_id)
        rows = [i for i, d in enumerate(baseline.chunk_doc) if d == doc_id]
        assert rows, doc_id
        spans = [(int(baseline.starts[i]), int(baseline.ends[i])) for i in rows]
        assert spans == sorted(spans)
        for (_s, e), (s2, _) in zip(spans, spans[1:]):
            assert e <= s2 and not text[e:s2].strip()  # nothing but whitespace between chunks
        assert not text[: spans[0][0]].strip() and not text[spans[-1][1]:].strip()
        for s, e in spans:
            n = len(tok(text[s:e], add_special_tokens=True)["input_ids"])
            assert n <= 512
        # all but the last chunk are full (re-tokenizing a slice can shift a boundary token or two)
        assert all(len(tok(text[s:e], add_special_tokens=True)["input_ids"]) >= 500 for s, e in spans[:-1])


def test_search_returns_exact_chunks_best_first_and_respects_the_doc_filter(baseline, sample_store):
    store = SectionStore(sample_store)
    found = baseline.search("What were Ulta Beauty's net sales in the fourth quarter of fiscal 2022?", k=4)
    assert len(found) == 4 and all(isinstance(c, Chunk) for c in found)
    assert found[0].doc_id == FILING
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    for c in found:
        assert store.document_text(c.doc_id)[c.start:c.end] == c.text
    only = baseline.search("What were the net sales?", k=50, doc_ids=[CONTRACT])
    assert only and {c.doc_id for c in only} == {CONTRACT}
    assert len(only) == sum(d == CONTRACT for d in baseline.chunk_doc)  # k larger than the doc: all of it
    assert baseline.search("net sales", k=3, doc_ids=["no-such-doc"]) == []


def test_extractive_answer_quotes_the_chunks_it_cites(baseline, sample_store):
    store = SectionStore(sample_store)
    answer = baseline.answer("How can the outsourcing agreement be terminated?", k=3, llm="extractive")
    assert not answer.abstained and answer.citations and answer.support == 1.0
    for c in answer.citations:
        assert store.document_text(c.doc_id)[c.start:c.end] == c.quote
    assert answer.citations[0].doc_id == CONTRACT
    assert "terminat" in answer.text.lower()
    assert {"retrieve", "synthesize", "total"} <= dict(answer.timings).keys()


def test_cache_is_reused_and_rebuilt_when_the_store_changes(tmp_path):
    folder = tmp_path / "store"
    with Pipeline(folder) as p:
        p.ingest([SAMPLES / "contracts"])
    first = ChunkBaseline.open(folder)
    assert first.build_stats is not None and first.build_stats["embedded"] == len(first) > 0
    cached = list((folder / CACHE_DIR).iterdir())
    assert len(cached) == 1 and (cached[0] / "meta.json").exists()

    again = ChunkBaseline.open(folder, embedder=first.embedder)
    assert again.build_stats is None  # loaded, not built
    assert again.chunk_doc == first.chunk_doc and (again.starts == first.starts).all()

    with Pipeline(folder) as p:
        p.ingest([SAMPLES / "ehr"])
    rebuilt = ChunkBaseline.open(folder, embedder=first.embedder)
    assert rebuilt.build_stats is not None
    n_contract = sum(d == CONTRACT for d in rebuilt.chunk_doc)
    assert n_contract == len(first)
    assert rebuilt.build_stats["embedded"] == len(rebuilt) - n_contract  # the unchanged contract is re-used
    (only,) = list((folder / CACHE_DIR).iterdir())  # the stale generation is gone
    assert only != cached[0]
    hits = rebuilt.search("Which allergies are recorded for the patient?", k=1)
    assert hits[0].doc_id != CONTRACT

    with pytest.raises(ValueError, match="chunk_tokens"):
        ChunkBaseline.open(folder, chunk_tokens=1024)
