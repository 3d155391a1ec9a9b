"""PDF: the text of each page (pypdf), pages joined by form feeds so page starts are exact offsets."""

from __future__ import annotations

from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document, content_hash


def read(path: Path) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    raw = path.read_bytes()
    if not raw.lstrip()[:5].startswith(b"%PDF"):
        raise IngestError(str(path), "is not a PDF (no %PDF header)")
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise IngestError(str(path), "is encrypted with a password; decrypt it first")
            except (NotImplementedError, PdfReadError):
                raise IngestError(str(path), "is encrypted with a password; decrypt it first") from None
        pages = [(page.extract_text() or "") for page in reader.pages]
    except PdfReadError as exc:
        raise IngestError(str(path), f"is a corrupt PDF: {exc}") from None
    starts, parts, pos = [], [], 0
    for text in pages:
        text = text.replace("\f", " ")
        starts.append(pos)
        parts.append(text)
        pos += len(text) + 1
    return [Document(id=path.stem, source=str(path), text="\f".join(parts), page_starts=tuple(starts),
                     title=path.stem, sha=content_hash(raw))]
