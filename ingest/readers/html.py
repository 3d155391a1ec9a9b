"""HTML (EDGAR filings and other pages): block text as lines, table rows as lines of tab-separated
cells, CSS page breaks as form feeds (so page starts are exact offsets), running headers, footers and
page numbers dropped.

Why lxml and not ``unstructured.partition_html``: EDGAR marks its printed pages only with CSS
(``page-break-before/after``) which the partitioner drops, so its elements carry no page boundaries;
it also renders tables as one cell-joined string or as HTML, not rows, and classifies every element
with spaCy, which costs far more than reading the file. A walk over lxml's tree (C parser) keeps
pages, rows and cells, and skips the hidden inline-XBRL header that modern filings carry.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from pathlib import Path

from ingest.errors import IngestError
from ingest.readers.pdf import CELL_SEP, _join_cells, _normal
from pipeline.types import Document, content_hash

_BLOCK = {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd", "table",
          "tr", "hr", "section", "article", "header", "footer", "blockquote", "pre", "center", "title", "body",
          "address", "figure", "figcaption", "nav", "main", "aside", "form", "fieldset", "caption"}
_SKIP = {"script", "style", "head", "noscript", "template", "svg", "object", "iframe", "{http://www.xbrl.org/2013/inlineXBRL}header"}
_BREAK_BEFORE = re.compile(r"(?:page-)?break-before\s*:\s*(?:always|page)", re.I)
_BREAK_AFTER = re.compile(r"(?:page-)?break-after\s*:\s*(?:always|page)", re.I)
_HIDDEN = re.compile(r"display\s*:\s*none", re.I)
_WS = re.compile(r"[ \t\r\n\xa0\u2002\u2003\u2009\u200b\f\v]+")
_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?[-–—(]?\s*(?:[A-Z]{1,2}\s?-\s?)?(?:\d{1,4}|[ivxlcdm]{1,7})\s*[-–—)]?"
                          r"(?:\s+of\s+\d{1,4})?\s*$", re.I)
_MARGIN_LINES = 2
_REPEAT_SHARE = 0.2


class _Writer:
    """Accumulates lines into pages; inline text joins the current line."""

    def __init__(self) -> None:
        self.pages: list[list[str]] = [[]]
        self.line: list[str] = []

    def text(self, s: str | None) -> None:
        if s:
            self.line.append(s)

    def newline(self) -> None:
        if self.line:
            line = _WS.sub(" ", "".join(self.line)).strip()
            if line:
                self.pages[-1].append(line)
            self.line = []

    def emit(self, line: str) -> None:
        self.newline()
        if line:
            self.pages[-1].append(line)

    def page_break(self) -> None:
        self.newline()
        if self.pages[-1]:
            self.pages.append([])


def _tag(el) -> str:
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else ""


def _cell_text(el) -> str:
    return _WS.sub(" ", el.text_content()).strip()


def _row(tr) -> str:
    cells = [_cell_text(td) for td in tr if _tag(td) in ("td", "th")]
    return _join_cells([c for c in cells if c])


def _walk(el, out: _Writer) -> None:
    tag = _tag(el)
    if not tag or tag in _SKIP or tag.endswith(":header"):
        out.text(el.tail)
        return
    style = el.get("style") or ""
    if _HIDDEN.search(style):
        out.text(el.tail)
        return
    if _BREAK_BEFORE.search(style):
        out.page_break()
    block = tag in _BLOCK
    if block:
        out.newline()
    if tag == "tr":
        out.emit(_row(el))
    elif tag == "br":
        pass
    else:
        out.text(el.text)
        for child in el:
            _walk(child, out)
    if block:
        out.newline()
    if _BREAK_AFTER.search(style) or (tag == "hr" and _BREAK_AFTER.search(style or "")):
        out.page_break()
    out.text(el.tail)


def drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Removes page numbers and running headers/footers: the first and last lines of a page that are
    page numbers or repeat (digits ignored) on many pages."""
    margins = [set(range(min(_MARGIN_LINES, len(p)))) | set(range(max(0, len(p) - _MARGIN_LINES), len(p)))
               for p in pages]
    seen: Counter[str] = Counter()
    for lines, idx in zip(pages, margins):
        seen.update({_normal(lines[i]) for i in idx})
    threshold = max(3, _REPEAT_SHARE * len(pages))
    out = []
    for lines, idx in zip(pages, margins):
        drop = {i for i in idx if _PAGE_NUMBER.match(lines[i])
                or (len(pages) >= 3 and seen[_normal(lines[i])] >= threshold)}
        out.append([ln for i, ln in enumerate(lines) if i not in drop])
    return out


def extract_pages(raw: bytes, path: str) -> list[str]:
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.document_fromstring(raw)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise IngestError(path, f"is not readable HTML ({exc})") from None
    out = _Writer()
    _walk(root, out)
    out.newline()
    pages = [p for p in out.pages if p] or [[]]
    pages = drop_running_lines(pages) if len(pages) > 1 else pages
    return ["\n".join(line.replace(CELL_SEP + CELL_SEP, CELL_SEP) for line in lines) for lines in pages]


def read(path: Path) -> list[Document]:
    from ingest.readers.text import binary_reason

    raw = path.read_bytes()
    if not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and (reason := binary_reason(raw)):
        raise IngestError(str(path), reason.replace("not text", "not HTML"))
    pages = extract_pages(raw, str(path))
    starts, pos = [], 0
    for text in pages:
        starts.append(pos)
        pos += len(text) + 1
    return [Document(id=path.stem, source=str(path), text="\f".join(pages), page_starts=tuple(starts),
                     title=path.stem, sha=content_hash(raw))]
