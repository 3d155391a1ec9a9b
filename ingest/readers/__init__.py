"""Readers: one file → one or more ``Document``s with exact text and page starts.

``read(path)`` picks the reader by suffix (and, for JSON, by content) and raises ``IngestError`` with
one sentence for any file it cannot use: missing, empty, too large, binary, wrongly encoded,
encrypted, corrupt or of an unsupported type.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document

# suffix → module under ingest.readers exposing ``read(path: Path) -> list[Document]``
READERS: dict[str, str] = {
    ".txt": "ingest.readers.text",
    ".text": "ingest.readers.text",
    ".md": "ingest.readers.text",
    ".pdf": "ingest.readers.pdf",
    ".htm": "ingest.readers.html",
    ".html": "ingest.readers.html",
    ".docx": "ingest.readers.docx",
    ".json": "ingest.readers.fhir",
    ".ndjson": "ingest.readers.fhir",
}

SUPPORTED = tuple(sorted(READERS))


def is_fhir_bulk_export(path: Path) -> bool:
    """A folder holding FHIR bulk-export NDJSON files is read as one unit (resources span its files)."""
    return path.is_dir() and any(path.glob("*.ndjson"))


def read(path: str | Path, *, max_bytes: int = 200 * 1024 * 1024) -> list[Document]:
    path = Path(path)
    if not path.exists():
        raise IngestError(str(path), "file does not exist")
    if is_fhir_bulk_export(path):
        from ingest.readers import fhir

        return fhir.read_bulk(path, max_bytes=max_bytes)
    if not path.is_file():
        raise IngestError(str(path), "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise IngestError(str(path), "file is empty")
    if size > max_bytes:
        raise IngestError(str(path), f"file is {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit")
    module = READERS.get(path.suffix.lower())
    if module is None:
        raise IngestError(str(path), f"unsupported file type {path.suffix or '(none)'}; supported: {', '.join(SUPPORTED)}")
    try:
        docs = importlib.import_module(module).read(path)
    except IngestError:
        raise
    except MemoryError:
        raise  # the job names the memory limit it ran under
    except RecursionError:
        raise IngestError(str(path), "is nested too deeply to parse") from None
    except Exception as exc:  # a parser's own failure on a corrupt file becomes one line naming the file
        raise IngestError(str(path), f"could not be parsed as {path.suffix.lstrip('.').upper()}: {exc}".strip()) from None
    docs = [d for d in docs if d.text.strip()]
    if not docs:
        raise IngestError(str(path), "no text could be extracted")
    return docs
