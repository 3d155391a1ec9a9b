"""The part of a clause a question asks for — the contract's date, its title, its parties — cut from the clause the
reader selects, on the sample contract and on hand-made clauses."""

from __future__ import annotations

import pytest
from conftest import assert_citations_exact

from encoders.reader import EvidenceReader
from graphs.parts import asked_part, part_spans
from pipeline import PipelineConfig

needs_reader = pytest.mark.skipif(not EvidenceReader.available(), reason="no trained reader weights in data/reader")


def _cuad(subject: str, details: str) -> str:
    return (f'Highlight the parts (if any) of this contract related to "{subject}" that should be reviewed by a '
            f"lawyer. Details: {details}")


@pytest.mark.parametrize(("question", "want"), [
    (_cuad("Agreement Date", "The date of the contract"), "date"),
    (_cuad("Effective Date", "The date when the contract is effective"), "date"),
    (_cuad("Expiration Date", "On what date will the contract's initial term expire?"), None),  # a clause, not a date
    (_cuad("Document Name", "The name of the contract"), "title"),
    (_cuad("Parties", "The two or more parties who signed the contract"), "parties"),
    ("Who are the parties to this agreement?", "parties"),
    (_cuad("Governing Law", "Which state/country's law governs the interpretation of the contract?"), None),
])
def test_what_the_question_asks_for(question, want):
    assert asked_part(question) == want


def test_parts_of_hand_made_clauses():
    text = ('This LICENSE AGREEMENT is entered into on the 3rd day of March, 2011 by ACME HOLDINGS, INC., a Delaware '
            'corporation ("Licensor"), and Stratton, Cheeseman & Walsh-Nevada, Inc. ("Agency").')
    cut = lambda part: [text[a:b] for a, b in part_spans(part, text, 0, len(text))]  # noqa: E731
    assert cut("date") == ["3rd day of March, 2011"]
    assert cut("title") == ["LICENSE AGREEMENT"]
    # each entity and its short name, once each; "a Delaware corporation" describes, it names no party
    assert cut("parties") == ["ACME HOLDINGS, INC.", "Licensor", "Stratton, Cheeseman & Walsh-Nevada, Inc.", "Agency"]
    assert part_spans("date", "No date is written here.", 0, 24) == []


@needs_reader
def test_the_sample_contracts_date_parties_and_title_are_cut_from_the_readers_clause(sample_pipeline):
    doc = next(d for d in sample_pipeline.documents() if "agreement" in d)
    config = PipelineConfig()
    for subject, details, want in [
        ("Agreement Date", "The date of the contract", ["1 st  day of May 2006"]),  # as the contract spaces it
        ("Parties", "The two or more parties who signed the contract",
         ["Virtual Item Processing Systems, Inc.", "VIP", "Brokers National Life Assurance Company", "BNL"]),
        ("Document Name", "The name of the contract", ["OUTSOURCING AGREEMENT"]),
    ]:
        q = _cuad(subject, details)
        answer = sample_pipeline.ask(q, [doc], llm="extractive", trace=True)
        assert answer.kind == "span" and [c.quote for c in answer.citations] == want, subject
        assert_citations_exact(sample_pipeline, answer)
        # each part lies inside the unit the reader scores highest
        units = sample_pipeline.score_units(q, answer.sections[:config.summarize.max_sections])
        best = max(units, key=lambda u: u.score)
        assert all(best.start <= c.start and c.end <= best.end for c in answer.citations), subject
