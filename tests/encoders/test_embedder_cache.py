"""The answer path's embedding cache returns what the model returns, and stays within its size."""

from __future__ import annotations

import numpy as np
import pytest

from encoders.embedder import Embedder
from pipeline.config import IndexConfig

SENTENCES = [
    "The term of this Agreement is five years from the Effective Date.",
    "Either party may terminate this Agreement upon ninety days' written notice.",
    "Net revenue increased 12% to $4.2 billion in fiscal 2022.",
    "The patient was started on metformin 500 mg twice daily.",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder(cache_size=3)


def test_cached_vectors_equal_the_model(embedder: Embedder) -> None:
    plain = embedder.encode(SENTENCES)
    cached = embedder.encode_cached([SENTENCES[2], SENTENCES[0], SENTENCES[2]])
    assert cached.shape == (3, plain.shape[1])
    np.testing.assert_allclose(cached, plain[[2, 0, 2]], atol=1e-5)
    again = embedder.encode_cached([SENTENCES[0]])
    np.testing.assert_allclose(again[0], plain[0], atol=1e-5)
    assert embedder.encode_cached([]).shape == (0, plain.shape[1])


def test_cache_is_bounded_and_least_recent_goes_first(embedder: Embedder) -> None:
    embedder._cache.clear()
    embedder.encode_cached(SENTENCES[:3])
    embedder.encode_cached([SENTENCES[0]])  # now the most recent
    embedder.encode_cached([SENTENCES[3]])  # evicts the least recent: SENTENCES[1]
    assert len(embedder._cache) == 3
    assert SENTENCES[1] not in embedder._cache and SENTENCES[0] in embedder._cache
    hits, misses = embedder.cache_hits, embedder.cache_misses
    embedder.encode_cached([SENTENCES[0], SENTENCES[3]])
    assert (embedder.cache_hits - hits, embedder.cache_misses - misses) == (2, 0)
    out = embedder.encode_cached([SENTENCES[1]])
    assert embedder.cache_misses - misses == 1
    first = float(out[0, 0])
    out[0, :] = 0.0  # callers own what they get: changing it does not change the cache
    assert float(embedder.encode_cached([SENTENCES[1]])[0, 0]) == first != 0.0


def test_cache_off_and_bad_size() -> None:
    off = Embedder(cache_size=0)
    off.encode_cached(SENTENCES[:1])
    assert not off._cache
    with pytest.raises(ValueError, match="cache_size"):
        Embedder(cache_size=-1)
    with pytest.raises(ValueError, match="embed_cache"):
        IndexConfig(embed_cache=-1)


def test_shared_copy_has_its_own_cache(embedder: Embedder) -> None:
    embedder.encode_cached(SENTENCES[:1])
    other = embedder.shared_copy()
    assert other.model is embedder.model and other.cache_size == embedder.cache_size
    assert not other._cache
    np.testing.assert_allclose(other.encode_cached(SENTENCES[:1]), embedder.encode_cached(SENTENCES[:1]), atol=1e-5)
    assert embedder.shared_copy(cache_size=0).cache_size == 0
