"""The HTML reader on an EDGAR-style excerpt of a real 10-K (see fixtures/filing/README.md): CSS page
breaks become exact page starts, tables become rows of separated cells, page numbers and the
"Table of Contents" link are dropped, hidden inline XBRL is skipped, Items and notes are found."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.readers import read
from ingest.readers.pdf import CELL_SEP
from ingest.sectionizers import sectionize

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EXCERPT = Path(__file__).resolve().parent / "fixtures" / "filing" / "nike_2019_10k_excerpt.htm"


@pytest.fixture(scope="module")
def doc():
    return read(EXCERPT)[0]


def test_page_breaks_are_page_starts(doc):
    pages = doc.text.split("\f")
    assert doc.pages == len(pages) == 5  # five <hr style="page-break-after:always"> separated pages
    for i, start in enumerate(doc.page_starts):
        assert doc.text[start:].startswith(pages[i])
    assert pages[1].startswith("ITEM 1B. UNRESOLVED STAFF COMMENTS")
    assert pages[3].startswith("NOTE 2 — INVENTORIES")


def test_tables_are_rows_of_separated_cells(doc):
    sheet = doc.text.split("\f")[2]
    rows = {line.split(CELL_SEP)[0]: line.split(CELL_SEP)[1:] for line in sheet.splitlines()}
    assert rows["Total current assets"] == ["16,525", "15,134"]  # spacer cells dropped
    assert rows["Cash and equivalents"] == ["$ 4,466", "$ 4,249"]  # "$" cell joined to its number
    assert rows["(Dollars in millions)"] == ["2019", "2018"]


def test_page_numbers_and_running_links_dropped_hidden_xbrl_skipped(doc):
    raw = EXCERPT.read_text()
    assert raw.count("Table of Contents</a>") == 4 and '<p style="text-align:center">19</p>' in raw
    assert "Table of Contents" not in doc.text
    for page in doc.text.split("\f"):
        last = page.rstrip().splitlines()[-1]
        assert not last.strip().isdigit(), last
    assert "HIDDEN XBRL FACT" not in doc.text
    assert "Not applicable." in doc.text  # body text at a page's end survives


def test_items_and_notes_become_sections(doc):
    sections = sectionize(doc)
    assert doc.kind == "generic"  # the sectionizer detects the filing itself
    for item in ("Item 1B", "Item 2", "Item 3", "Item 4"):
        assert any(s.path[0] == item and s.text.upper().startswith(f"ITEM {item[5:]}.") for s in sections), item
    notes = [t for s in sections for t in s.path if t.startswith("Note ")]
    assert [n.split(" — ")[0] for n in notes] == ["Note 2", "Note 3", "Note 5"]
    assert not any("Item 1" in s.path for s in sections)  # the table of contents is no Item
    for s in sections:
        assert doc.text[s.start:s.end] == s.text


def test_unreadable_html_names_the_file(tmp_path):
    bad = tmp_path / "empty-body.htm"
    bad.write_bytes(b"<html><body><script>var x = 1;</script></body></html>")
    with pytest.raises(IngestError, match=r"empty-body\.htm.*no text"):
        read(bad)
