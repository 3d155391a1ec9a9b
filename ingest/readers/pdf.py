"""PDF: each page's text as lines, table rows as lines of tab-separated cells, running headers,
footers and page numbers dropped, pages joined by form feeds so page starts are exact offsets.

Why PDFium (``pypdfium2``, Apache-2.0/BSD) and not ``unstructured.partition_pdf(strategy="fast")``:
the fast strategy runs pdfminer.six in pure Python and then classifies every element with spaCy, at
a few pages per second; PDFium is C++ and reads a 150-page 10-K in well under a second, which is what
ingesting thousands of filings needs (``python -m ingest.bench_pdf`` measures the ratio). PDFium
already orders characters into lines in reading order; what it does not give is the table structure,
so this module adds it from character boxes: a run of spaces wider than the font size between two
glyphs on one line is a column gap, and becomes a tab. Headers and footers are found from
geometry and repetition, not from any particular filer's layout.

    >>> docs = read(Path("10k.pdf"))
    >>> docs[0].text.split("\\f")[52]          # page 53, as stored
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document, content_hash

CELL_SEP = "\t"
# A gap between two glyphs on one line wider than this many glyph heights separates table cells.
# Glyph boxes are ~0.7 em high for capitals and digits; a word space is ~0.25 em and justified text
# stretches it to well under 1 em, while table columns sit several em apart.
_CELL_GAP = 1.5
# The topmost and bottommost lines of a page (this many each) are where headers and footers live.
_MARGIN_LINES = 2
# A margin line repeated (digits ignored) on at least this share of pages is a running header/footer.
_REPEAT_SHARE = 0.2
_PAGE_NUMBER = re.compile(
    r"^\s*(?:page\s+)?[-–—(]?\s*(?:[A-Z]{1,2}\s?-\s?)?(?:\d{1,4}|[ivxlcdm]{1,7})\s*[-–—)]?"
    r"(?:\s+of\s+\d{1,4})?\s*$", re.I)
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r" +")
_CURRENCY = {"$", "€", "£", "¥", "US$", "C$", "A$"}
_CLOSERS = {")", "%", ")%", "%)", "pts", "bps"}


@dataclass(slots=True)
class _Line:
    text: str
    top: float  # distance of the line's top from the page's top edge, as a share of page height
    bottom: float  # the same for the line's bottom


def _join_cells(cells: list[str]) -> str:
    """Tab-joins cells, keeping a lone currency sign with its number and a lone ')' or '%' with its own."""
    out: list[str] = []
    pending = ""
    for cell in cells:
        if pending:
            cell = f"{pending} {cell}"
            pending = ""
        head, _, last = cell.rpartition(" ")
        if head and last in _CURRENCY:  # "4,466 $" + "4,249": the sign belongs to the next column
            out.append(head)
            pending = last
            continue
        if cell in _CURRENCY:
            pending = cell
            continue
        if out and cell in _CLOSERS:
            out[-1] += cell
            continue
        out.append(cell)
    if pending:
        out.append(pending)
    return CELL_SEP.join(out)


def _page_lines(page, raw) -> list[_Line]:
    textpage = page.get_textpage()
    try:
        n = textpage.count_chars()
        if n <= 0:
            return []
        text = textpage.get_text_range(0, n)
        height = page.get_height() or 1.0
        tp = textpage.raw
        left, right, bottom, top = (ctypes.c_double() for _ in range(4))

        def box(i: int) -> tuple[float, float, float, float]:
            raw.FPDFText_GetCharBox(tp, i, ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom),
                                    ctypes.byref(top))
            return left.value, right.value, bottom.value, top.value

        # PDFium's text is one char per char index (generated spaces and \r\n included) as long as
        # the counts agree; if they ever do not, fall back to the text without cell detection.
        aligned = len(text) == n
        lines: list[_Line] = []
        pos = 0
        for raw_line in text.split("\r\n"):
            a, b = pos, pos + len(raw_line)
            pos = b + 2
            stripped = raw_line.strip()
            if not stripped:
                continue
            if not aligned:
                lines.append(_Line(stripped, 0.5, 0.5))
                continue
            first = a + (len(raw_line) - len(raw_line.lstrip()))
            _, _, fb, ft = box(first)
            line_height = ft - fb
            cells: list[str] = []
            cell_start = first
            for m in _SPACES.finditer(raw_line, first - a, len(raw_line.rstrip())):
                s, e = a + m.start(), a + m.end()
                _, prev_right, pb, pt = box(s - 1)
                next_left, _, nb, nt = box(e)
                size = max(line_height, pt - pb, nt - nb) or 7.0
                if next_left - prev_right > _CELL_GAP * size:
                    cells.append(text[cell_start:s])
                    cell_start = e
                ft, fb = max(ft, nt), min(fb, nb)
            cells.append(text[cell_start:a + len(raw_line.rstrip())])
            line = _join_cells(cells) if len(cells) > 1 else cells[0]
            lines.append(_Line(line, (height - ft) / height, (height - fb) / height))
        return lines
    finally:
        textpage.close()


def _normal(line: str) -> str:
    return " ".join(_DIGITS.sub("#", line.lower()).split())


def _margin_lines(lines: list[_Line]) -> list[int]:
    """Indices of the topmost and bottommost lines of the page (where headers and footers live).

    By position, not by stream order (a footer is often drawn first), and relative to the page's own
    text, not to its edges (filers place footers anywhere in the lower margin).
    """
    by_top = sorted(range(len(lines)), key=lambda i: lines[i].top)
    by_bottom = sorted(range(len(lines)), key=lambda i: -lines[i].bottom)
    return sorted(set(by_top[:_MARGIN_LINES]) | set(by_bottom[:_MARGIN_LINES]))


def drop_headers_footers(pages: list[list[_Line]]) -> list[list[str]]:
    """Removes page numbers and running headers/footers: margin lines that repeat across pages."""
    margins = [_margin_lines(lines) for lines in pages]
    seen = Counter()
    for lines, idx in zip(pages, margins):
        seen.update({_normal(lines[i].text) for i in idx})
    threshold = max(3, _REPEAT_SHARE * len(pages))
    out = []
    for lines, idx in zip(pages, margins):
        drop = {i for i in idx
                if _PAGE_NUMBER.match(lines[i].text) or (len(pages) >= 3 and seen[_normal(lines[i].text)] >= threshold)}
        out.append([ln.text for i, ln in enumerate(lines) if i not in drop])
    return out


def _clean(line: str) -> str:
    # PDFium marks a hyphen that ends a line as U+FFFE, and some PDFs carry stray control characters.
    return line.replace("\ufffe", "-").replace("\x02", "-").replace("\f", " ").replace("\x00", "")


def extract_pages(path: Path) -> list[str]:
    """The text of each page (headers/footers dropped, table rows as tab-separated cells)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_raw

    raw = path.read_bytes()
    if not raw[:1024].lstrip().startswith(b"%PDF"):
        raise IngestError(str(path), "is not a PDF (no %PDF header)")
    try:
        pdf = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise IngestError(str(path), "is encrypted with a password; decrypt it first") from None
        # PDFium's message ends with its error code's name, which is "Success" for a file it could not make sense of
        reason = re.sub(r"\s*\(PDFium: Success\)", "", str(exc)).strip().rstrip(".")
        raise IngestError(str(path), f"is a corrupt PDF or one without pages ({reason})") from None
    try:
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            try:
                pages.append(_page_lines(page, pdfium_raw))
            finally:
                page.close()
    finally:
        pdf.close()
    if not pages:
        raise IngestError(str(path), "is a PDF without pages")
    return ["\n".join(_clean(t) for t in lines) for lines in drop_headers_footers(pages)]


def read(path: Path) -> list[Document]:
    pages = extract_pages(path)
    starts, pos = [], 0
    for text in pages:
        starts.append(pos)
        pos += len(text) + 1
    return [Document(id=path.stem, source=str(path), text="\f".join(pages), page_starts=tuple(starts),
                     title=path.stem, sha=content_hash(path.read_bytes()))]
