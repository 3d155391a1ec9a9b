"""The PDF reader on real FinanceBench filings: exact pages, table rows with separated cells, running
headers/footers and page numbers dropped, and one-sentence errors for corrupt and encrypted files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ingest.errors import IngestError
from ingest.readers import read
from ingest.readers.pdf import CELL_SEP

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def financebench() -> Path:
    root = SHARED_DATA / "financebench"
    if not (root / "pdfs").is_dir():
        pytest.skip(f"FinanceBench data not found at {root} (the repository's sibling shared/data)")
    return root


@pytest.fixture(scope="module")
def nike(financebench: Path):
    return read(financebench / "pdfs" / "NIKE_2019_10K.pdf")[0]


def _words(text: str) -> str:
    return " ".join(text.split())


def test_pages_are_exact_offsets(nike):
    pypdf = pytest.importorskip("pypdf")
    pages = nike.text.split("\f")
    assert nike.pages == len(pages) == len(pypdf.PdfReader(nike.source).pages)
    for i, start in enumerate(nike.page_starts):
        assert nike.text[start:].startswith(pages[i])


def test_balance_sheet_rows_have_separated_cells(nike):
    page = next(p for p in nike.text.split("\f") if "CONSOLIDATED BALANCE SHEETS" in p and "Total current assets" in p)
    rows = {line.split(CELL_SEP)[0]: line.split(CELL_SEP)[1:] for line in page.splitlines()}
    assert rows["Total current assets"] == ["16,525", "15,134"]
    assert rows["Cash and equivalents"] == ["$ 4,466", "$ 4,249"]  # the sign stays with its number
    assert rows["Accumulated other comprehensive income (loss)"] == ["231", "(92)"]


def test_running_headers_footers_and_page_numbers_dropped(nike, financebench):
    # The PyMuPDF text of the same PDF keeps them: "Table of Contents" atop each page, "52 NIKE, INC."
    # or "2019 FORM 10-K 19" at the foot.
    raw = (financebench / "docs" / "NIKE_2019_10K.txt").read_text().split("\f")
    assert sum(p.lstrip().startswith("Table of Contents") for p in raw) > 50
    pages = nike.text.split("\f")
    assert not any(p.lstrip().startswith("Table of Contents") for p in pages[2:])
    footer = re.compile(r"(?:^|(?<=\f))(?:\d+ NIKE, INC\.|2019 FORM 10-K \d+)(?=[\n\f]|\Z)", re.M)
    assert len(footer.findall("\f".join(raw))) > 50
    assert not footer.search(nike.text)
    # ...while body text of the same pages survives.
    assert "TOTAL LIABILITIES AND SHAREHOLDERS' EQUITY" in nike.text


def test_text_is_faithful_to_the_reference_extraction(nike, financebench):
    """Most FinanceBench evidence passages for this filing are found word for word on their page."""
    import json

    evidence = [ev for line in (financebench / "questions.jsonl").read_text().splitlines()
                for ev in json.loads(line)["evidence"] if ev["doc_name"] == "NIKE_2019_10K"]
    assert evidence
    pages = nike.text.split("\f")
    for ev in evidence:
        page_words = set(re.findall(r"[A-Za-z0-9,.()$%]+", pages[ev["evidence_page_num"]]))
        ev_words = re.findall(r"[A-Za-z0-9,.()$%]+", ev["evidence_text"])
        assert sum(w in page_words for w in ev_words) >= 0.9 * len(ev_words)


def test_corrupt_pdf_names_the_file(tmp_path, financebench):
    bad = tmp_path / "truncated.pdf"
    bad.write_bytes((financebench / "pdfs" / "FOOTLOCKER_2022_8K_dated-2022-05-20.pdf").read_bytes()[:3000])
    with pytest.raises(IngestError, match=r"truncated\.pdf.*corrupt"):
        read(bad)
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    with pytest.raises(IngestError, match=r"garbage\.pdf"):
        read(garbage)
    not_pdf = tmp_path / "letter.pdf"
    not_pdf.write_text("Dear shareholder, this is not a PDF.")
    with pytest.raises(IngestError, match=r"letter\.pdf.*not a PDF"):
        read(not_pdf)


def test_encrypted_pdf_names_the_file(tmp_path, financebench):
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=financebench / "pdfs" / "FOOTLOCKER_2022_8K_dated-2022-05-20.pdf")
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="AES-128")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as f:
        writer.write(f)
    with pytest.raises(IngestError, match=r"locked\.pdf.*encrypted"):
        read(locked)


def test_owner_only_encryption_is_read(tmp_path, financebench):
    """A PDF with an empty user password (permissions only) opens like any other."""
    pypdf = pytest.importorskip("pypdf")
    src = financebench / "pdfs" / "FOOTLOCKER_2022_8K_dated-2022-05-20.pdf"
    writer = pypdf.PdfWriter(clone_from=src)
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    path = tmp_path / "permissions.pdf"
    with path.open("wb") as f:
        writer.write(f)
    assert _words(read(path)[0].text) == _words(read(src)[0].text)
