"""The DOCX reader: a Word file built from a real CUAD contract, read offline through unstructured."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.readers import read
from ingest.sectionizers import detect_kind, sectionize

DOCX = Path(__file__).resolve().parent / "fixtures" / "contract" / "cuad_articles_agency.docx"


@pytest.fixture(scope="module")
def doc():
    return read(DOCX)[0]


def test_reads_a_contract_without_network_and_prints_nothing(monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise AssertionError("the DOCX reader tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    d = read(DOCX)[0]
    assert d.id == "cuad_articles_agency" and d.text.startswith("Exhibit 10.26")
    assert capsys.readouterr().out == ""  # unstructured's usage notice would break --json output


def test_text_keeps_paragraphs_tables_and_leaves_out_the_page_header(doc):
    assert "\n\nARTICLE I GENERAL UNDERTAKING\n\nSection 1.01 Appointment." in doc.text
    assert "Equipment Type | Point-of-sale terminals\nBasic Term | 36 months" in doc.text
    assert "CONFIDENTIAL - AGENCY AGREEMENT" not in doc.text


def test_rendered_page_break_is_a_form_feed_and_a_page_start(doc):
    assert len(doc.page_starts) == 2
    second = doc.page_starts[1]
    assert doc.text[second - 1] == "\f" and doc.text[second:].startswith("ARTICLE II DUTIES OF AGENT")


def test_docx_contract_is_sectioned_by_its_articles(doc):
    assert detect_kind(doc.text) == "contract"
    from dataclasses import replace

    sections = sectionize(replace(doc, kind="contract"), target_tokens=400)
    paths = [s.path for s in sections]
    assert ("ARTICLE II DUTIES OF AGENT",) in paths
    for s in sections:
        assert s.text == doc.text[s.start:s.end]
    article2 = next(s for s in sections if s.path == ("ARTICLE II DUTIES OF AGENT",))
    assert article2.pages == (2,)


def test_unreadable_docx_files_name_the_problem(tmp_path):
    ole = tmp_path / "locked.docx"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(IngestError, match="password-protected DOCX or a legacy Word .doc"):
        read(ole)
    text = tmp_path / "notes.docx"
    text.write_text("just some text pretending to be a Word file")
    with pytest.raises(IngestError, match="not a DOCX file"):
        read(text)
    broken = tmp_path / "broken.docx"
    broken.write_bytes(DOCX.read_bytes()[:2000])
    with pytest.raises(IngestError, match="broken.docx"):
        read(broken)
