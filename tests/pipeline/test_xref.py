"""Cross-references resolved on real documents: clause references in a contract, Items and Notes in a 10-K."""

from __future__ import annotations

import pytest
from conftest import SAMPLES, SHARED_DATA

from ingest.readers import read
from ingest.sectionizers import sectionize
from pipeline import Pipeline
from pipeline.config import PipelineConfig
from pipeline.xref import KINDS_BY_DOC, find_references, resolve

CONTRACT = SAMPLES / "contracts" / "BNLFINANCIALCORP-outsourcing-agreement.txt"
TEN_K = SHARED_DATA / "financebench" / "docs" / "ADOBE_2015_10K.txt"


def _doc_and_sections(path, target_tokens=4000):
    doc = read(str(path))[0]
    sections = sectionize(doc, target_tokens=target_tokens)
    return doc, sections


def _holding(sections, pos):
    return next(s for s in sections if s.start <= pos < s.end)


def test_contract_clause_references_resolve_to_the_clause_heading():
    doc, sections = _doc_and_sections(CONTRACT, target_tokens=600)
    refs = {r.text: r for r in find_references(doc.text, KINDS_BY_DOC["contract"])}
    assert {"paragraph 16(J)", "Schedule B", "paragraph 5(F)"} <= set(refs)
    for text, heading in [("paragraph 16(J)", "16. MISCELLANEOUS"), ("Schedule B", "SCHEDULE B"),
                          ("paragraph 5(F)", "5. PAYMENTS TO VIP")]:
        target = resolve(refs[text], doc.text, sections)
        assert target is not None, text
        assert target is _holding(sections, doc.text.index(heading))
    # the heading of a unit is not a reference to it
    assert not any(r.text.startswith("SCHEDULE") for r in find_references(doc.text))


def test_reference_into_an_excluded_section_adds_nothing():
    doc, sections = _doc_and_sections(CONTRACT, target_tokens=600)
    ref = next(r for r in find_references(doc.text) if r.text == "Schedule B")
    target = resolve(ref, doc.text, sections)
    assert resolve(ref, doc.text, sections, exclude=[target]) is None


@pytest.mark.skipif(not TEN_K.exists(), reason="needs ../shared/data (FinanceBench)")
def test_ten_k_item_and_note_references_skip_the_table_of_contents():
    doc, sections = _doc_and_sections(TEN_K)
    refs = find_references(doc.text, KINDS_BY_DOC["filing"])
    by_text = {" ".join(r.text.split()): r for r in refs}
    item7 = by_text["Item 7"]
    target = resolve(item7, doc.text, sections)
    heading = doc.text.index("ITEM 7.  MANAGEMENT")
    assert target is _holding(sections, heading)
    assert doc.text.index("Item 7.\n") < target.start          # not the table of contents' line
    note = next(r for r in refs if r.kind == "note" and r.label == "13")
    assert resolve(note, doc.text, sections) is _holding(sections, doc.text.index("NOTE 13.  STOCKHOLDERS"))
    # Exchange Act sections and SEC rules are not headings of the filing
    assert not any(r.kind == "section" for r in refs)
    rule = next((r for r in refs if r.label == "405"), None)
    assert rule is None or resolve(rule, doc.text, sections) is None


def test_retrieval_adds_a_cross_referenced_section_and_says_why(tmp_path):
    cfg = PipelineConfig().replace(ingest={"target_tokens": 600}, retrieve={"top_sections": 1})
    with Pipeline(tmp_path / "store", cfg) as pipe:
        pipe.ingest([CONTRACT])
        found = pipe.retrieve("fees set forth in the payment schedule for each new policy")
        assert found[0].via == ""
        added = [s for s in found[1:] if s.via]
        assert added, "the selected clause refers to Schedule B, which must be added"
        assert all(s.via.startswith("referenced as ") for s in added)
        text = pipe.document(found[0].doc_id).text
        assert any(s.start <= text.index("SCHEDULE B") < s.end for s in added)
        plain = pipe.retrieve("fees set forth in the payment schedule for each new policy")
    no_xref = PipelineConfig().replace(ingest={"target_tokens": 600},
                                       retrieve={"top_sections": 1, "expand_references": False})
    with Pipeline(tmp_path / "store", no_xref) as pipe:
        assert len(pipe.retrieve("fees set forth in the payment schedule for each new policy")) == 1
    assert len(plain) > 1


def test_heading_index_one_pass_finds_headings_not_mentions():
    from pipeline.xref import heading_index

    text = ("ARTICLE IV\nREPRESENTATIONS AND WARRANTIES\n"
            "9.2 Termination. Either party may terminate.  10.1 Notices. All notices shall be in writing. "
            "Revenue was 12.5 Million in 2020. See Section 9.2 of this Agreement.\n"
            "Section 11. Governing Law. This Agreement is governed by New York law.\n")
    sections = heading_index(text, "section")
    assert sections["9.2"] == [text.index("9.2 Termination")]          # bare, at a line start
    assert sections["10.1"] == [text.index("10.1 Notices")]            # bare, after two spaces
    assert sections["11"] == [text.index("Section 11.")]               # introduced by its word
    assert "12.5" not in sections                                      # a number inside a sentence
    assert text.index("Section 9.2 of") not in sections["9.2"]         # a mention, not a heading
    assert heading_index(text, "article")["IV"] == [0]
    notes = heading_index("Consolidated results.\nNote 12 — Debt\nThe notes in Note 13 of our filing.", "note")
    assert list(notes) == ["12"]
