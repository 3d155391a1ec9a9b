"""Plain text: UTF-8 (with or without BOM), UTF-16 (with a BOM, or told by its NUL bytes), or Windows-1252; a form
feed is a page break.

The form feeds are kept in the stored text, so the offsets of the original file's pages survive
exactly; they are whitespace to every later stage.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document, content_hash

_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\v\f\r") + b"\x7f"
_CONTROL_CHARS = {b: " " for b in _CONTROL}
_SIGNATURES = (  # the leading bytes of the binary formats most often misnamed .txt
    (b"%PDF-", "a PDF"), (b"PK\x03\x04", "a ZIP archive (DOCX, XLSX or similar)"), (b"\x7fELF", "an executable"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"), (b"\x1f\x8b", "a gzip archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"), (b"SQLite format 3\x00", "an SQLite database"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Office file (.doc, .xls)"),
)
BINARY_SHARE = 0.01
"""A file is binary when more than this share of its bytes are control bytes (NUL and the C0 controls
other than tab, line feed, vertical tab, form feed and carriage return) …"""
BINARY_BLOCK_SHARE = 0.05
"""… or when any 4 KiB block of it is more than this share control bytes (an embedded binary blob; compressed or
encrypted data is about 11% control bytes, text extracted from forms well under 1%)."""
_BLOCK = 1 << 12


def _controls(raw: bytes) -> int:
    return len(raw) - len(raw.translate(None, _CONTROL))


def _utf16_without_bom(raw: bytes) -> str | None:
    """``"utf-16-le"`` / ``"utf-16-be"`` when NUL bytes sit at one parity of the file, as in mostly-ASCII UTF-16."""
    sample = raw[:1 << 16] if len(raw) % 2 == 0 else None
    if not sample or len(sample) < 64:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd > 0.4 * half and even < 0.02 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.02 * half:
        return "utf-16-be"
    return None


def binary_reason(raw: bytes) -> str | None:
    """Why ``raw`` (not UTF-16) is binary data rather than text — its signature, or its share of control bytes
    overall or in one 4 KiB block — or ``None``."""
    for signature, what in _SIGNATURES:
        if raw.startswith(signature):
            return f"is {what}, not text (give it its own extension, or convert it to text)"
    controls = _controls(raw)
    if controls > max(16, BINARY_SHARE * len(raw)):
        return (f"looks binary, not text: {controls:,} of its {len(raw):,} bytes "
                f"({100 * controls / len(raw):.1f}%) are control bytes")
    for at in range(0, len(raw), _BLOCK):
        block = raw[at:at + _BLOCK]
        if len(block) >= 512 and _controls(block) > BINARY_BLOCK_SHARE * len(block):
            return f"holds binary data at byte {at:,} ({_controls(block):,} control bytes in {len(block):,}), not text"
    return None


def decode_text(raw: bytes, path: str) -> tuple[str, int]:
    """Bytes → ``(text, control characters replaced)``.

    Binary data is told by its signature and by proportion: a file that starts like a known binary format,
    or whose bytes are more than ``BINARY_SHARE`` control bytes overall (``BINARY_BLOCK_SHARE`` in any 4 KiB
    block), is refused with one error naming what it looks like. Otherwise the few stray control bytes text
    extracted from PDFs and forms carries (NULs beside check boxes, escape codes) are each replaced by a space
    in place, so every offset of the file's text is kept, and their count is returned for the ingest summary.
    """
    bom = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if encoding := "utf-16" if bom else _utf16_without_bom(raw):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise IngestError(path, "looks like UTF-16 text but is not valid UTF-16") from None
        kept = text.translate(_CONTROL_CHARS)
        return kept, sum(a != b for a, b in zip(text, kept, strict=True))
    if reason := binary_reason(raw):
        raise IngestError(path, reason)
    controls = _controls(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise IngestError(path, f"is not valid UTF-8 (bad byte at offset {exc.start}) nor Windows-1252 text") from None
    return (text.translate(_CONTROL_CHARS), controls) if controls else (text, 0)


def page_starts(text: str) -> tuple[int, ...]:
    """Page ``i + 1`` starts after the ``i``-th form feed."""
    starts = [0]
    pos = text.find("\f")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\f", pos + 1)
    return tuple(starts)


def read(path: Path) -> list[Document]:
    raw = path.read_bytes()
    text, replaced = decode_text(raw, str(path))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    warnings = (replaced_warning(replaced),) if replaced else ()
    return [Document(id=path.stem, source=str(path), text=text, page_starts=page_starts(text),
                     title=path.stem, sha=content_hash(raw), warnings=warnings)]


def replaced_warning(count: int) -> str:
    """The ingest summary's line for stray control characters kept as text."""
    return (f"{count:,} stray control character{'s' if count != 1 else ''} (NUL and the like) replaced by spaces; "
            f"the text and its offsets are otherwise as in the file")
