"""The claim checks on hand-made claims and real embeddings."""

from __future__ import annotations

import pytest

from encoders.embedder import Embedder
from graphs.verifier import numbers, support_score, verify_claims
from pipeline.text import split_claims


@pytest.fixture(scope="module")
def embed():
    return Embedder().encode


def test_numbers_are_normalised():
    assert numbers("Net sales were $3,226.8 million, up 18.2% (from 2,729.40) in 2022.") == {
        "3226.8", "18.2", "2729.4", "2022"}


def test_split_claims_keeps_markers_with_their_sentence():
    claims = split_claims("The term is five years [2]. Either party may terminate on notice. [1, 3]")
    assert claims == [("The term is five years.", (2,)), ("Either party may terminate on notice.", (1, 3))]


def test_split_claims_gives_a_marker_after_the_full_stop_to_the_claim_it_closes():
    # the extractive writer and most LLMs write "claim. [n] next claim. [m]"; the sentence splitter cuts after
    # the full stop, so the marker opens the next sentence but cites the one before
    claims = split_claims("The term is five years. [1] Either party may terminate on notice. [2, 3] "
                          "[4] Fees are due monthly.")
    assert claims == [("The term is five years.", (1,)), ("Either party may terminate on notice.", (2, 3, 4)),
                      ("Fees are due monthly.", ())]
    assert split_claims("[1] The term is five years.") == [("The term is five years.", (1,))]


def test_supported_paraphrase_passes_and_wrong_number_fails(embed):
    quote = "Either party may terminate this Agreement upon ninety (90) days written notice to the other party."
    good, bad, negated, unrelated = verify_claims(
        ["Either party may terminate the Agreement on ninety (90) days written notice.",
         "Either party may terminate the Agreement on sixty (60) days written notice.",
         "Neither party may terminate the Agreement.",
         "The licensee shall pay royalties quarterly."],
        [quote] * 4, embed)
    assert good[0] >= 0.5 and not good[1]
    assert bad[0] <= 0.2 and any("60" in r for r in bad[1])
    assert negated[0] < good[0] and any("negation" in r for r in negated[1])
    assert unrelated[0] < 0.5


def test_support_score_is_bounded():
    score, _ = support_score("x", "y", cosine=1.0)
    assert 0.0 <= score <= 1.0
