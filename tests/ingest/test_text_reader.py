"""Plain text as filings and notes really arrive: text extracted from PDFs carries a few stray control bytes
(NULs beside a form's check boxes, escape codes), which are kept as text, replaced in place with their count
in the ingest summary's warnings; binaries with a text name are refused with one error saying what they are."""

from __future__ import annotations

import shutil
import zlib

import pytest
from conftest import SAMPLES, SHARED_DATA

from ingest.errors import IngestError
from ingest.readers.text import decode_text
from pipeline import Pipeline

FILINGS = SHARED_DATA / "financebench" / "docs"
EIGHT_K = FILINGS / "FOOTLOCKER_2022_8K_dated-2022-05-20.txt"
CONTRACT = SAMPLES / "contracts" / "BNLFINANCIALCORP-outsourcing-agreement.txt"


def _with_stray_bytes(text: str) -> tuple[bytes, str, int]:
    """The filing's UTF-8 bytes with a NUL after every check box and a few other control bytes spread through;
    the text a reader should keep (each stray byte a space), and how many were planted."""
    planted, kept = [], []
    for i, ch in enumerate(text):
        planted.append(ch)
        kept.append(ch)
        if ch in "☐☒":
            planted.append("\x00")
            kept.append(" ")
        elif i % 997 == 0:
            planted.append("\x1b\x08")
            kept.append("  ")
    raw = "".join(planted).encode("utf-8")
    return raw, "".join(kept), raw.count(b"\x00") + raw.count(b"\x1b") + raw.count(b"\x08")


@pytest.mark.skipif(not EIGHT_K.exists(), reason="FinanceBench is not beside the checkout (../shared/data)")
def test_a_real_filing_with_stray_nul_and_control_bytes_ingests_with_its_text_intact(tmp_path):
    original = EIGHT_K.read_text(encoding="utf-8")
    raw, expected, planted = _with_stray_bytes(original)
    assert raw.count(b"\x00") >= 5 and planted > 10
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / EIGHT_K.name).write_bytes(raw)
    shutil.copy(CONTRACT, inputs / CONTRACT.name)
    with Pipeline(tmp_path / "store") as p:
        report = p.ingest([inputs])
        assert not report.failed
        assert report.documents == 2
        assert len(report.warnings) == 1
        warning = report.warnings[0]
        assert warning.path.endswith(EIGHT_K.name)
        assert f"{planted} stray control characters" in warning.warning
        doc = p.document(EIGHT_K.stem)
        assert doc.text == expected.replace("\r\n", "\n")  # every other character where it was, every offset kept
        assert len(doc.text) == len(expected)
        assert "\x00" not in doc.text and "\x1b" not in doc.text
        for s in p.sections(EIGHT_K.stem):
            assert doc.text[s.start:s.end] == s.text
        assert p.document(CONTRACT.stem).text == CONTRACT.read_text(encoding="utf-8")  # the file beside it: no warning


@pytest.mark.skipif(not (SHARED_DATA / "financebench" / "pdfs").exists(), reason="FinanceBench PDFs are not beside the checkout")
def test_real_binaries_with_a_text_name_are_refused_and_nothing_stored_is_lost(tmp_path):
    pdf = SHARED_DATA / "financebench" / "pdfs" / "FOOTLOCKER_2022_8K_dated-2022-05-20.pdf"
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(pdf, inputs / "filing.txt")
    # a compressed stream has no signature: it is told by its share of control bytes
    (inputs / "deflated.txt").write_bytes(zlib.compress(EIGHT_K.read_bytes(), 9)[2:])
    # a text file with a binary blob in the middle: told by the block that is binary
    text = CONTRACT.read_bytes()
    (inputs / "blob.txt").write_bytes(text + zlib.compress(pdf.read_bytes())[2:6_000] + text)
    with Pipeline(tmp_path / "store") as p:
        p.ingest([CONTRACT])
        report = p.ingest([inputs])
        errors = {f.path.rsplit("/", 1)[-1]: f.error for f in report.failed}
        assert set(errors) == {"filing.txt", "deflated.txt", "blob.txt"}, errors
        assert "is a PDF, not text" in errors["filing.txt"]
        assert "looks binary" in errors["deflated.txt"] and "control bytes" in errors["deflated.txt"]
        assert "binary data at byte" in errors["blob.txt"]
        assert report.documents == 0 and not report.warnings
        assert p.documents() == [CONTRACT.stem]


def test_utf16_text_is_read_with_or_without_its_byte_order_mark():
    text = CONTRACT.read_text(encoding="utf-8")
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        decoded, replaced = decode_text(text.encode(encoding), "contract.txt")
        assert decoded == text and replaced == 0


def test_a_binary_refusal_names_the_file_and_what_it_is():
    with pytest.raises(IngestError, match=r"^archive\.txt: is a ZIP archive"):
        decode_text(b"PK\x03\x04" + bytes(200), "archive.txt")
    with pytest.raises(IngestError, match=r"^noise\.txt: looks binary, not text: .* control bytes"):
        decode_text(bytes(range(32)) * 100, "noise.txt")
    # a handful of stray bytes in a short note is still text
    decoded, replaced = decode_text(b"Assessment:\x00 stable.\x07\nPlan: continue.", "note.txt")
    assert decoded == "Assessment:  stable. \nPlan: continue." and replaced == 2
