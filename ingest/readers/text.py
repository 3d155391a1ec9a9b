"""Plain text: UTF-8 (with or without BOM), UTF-16 with BOM, or Windows-1252; a form feed is a page break.

The form feeds are kept in the stored text, so the offsets of the original file's pages survive
exactly; they are whitespace to every later stage.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document, content_hash


def decode_text(raw: bytes, path: str) -> str:
    """Bytes → str, refusing binary data and text that no supported encoding reads cleanly."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise IngestError(path, "starts with a UTF-16 byte-order mark but is not valid UTF-16") from None
    if b"\x00" in raw[:8192]:
        raise IngestError(path, "looks binary (NUL bytes), not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise IngestError(path, f"is not valid UTF-8 (bad byte at offset {exc.start}) nor Windows-1252 text") from None
    sample = text[:20000]
    control = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f\v")
    if control > max(8, len(sample) // 100):
        raise IngestError(path, "looks binary (control characters), not text")
    return text


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
    text = decode_text(raw, str(path)).replace("\r\n", "\n").replace("\r", "\n")
    return [Document(id=path.stem, source=str(path), text=text, page_starts=page_starts(text),
                     title=path.stem, sha=content_hash(raw))]
