"""Passages: windows of at most ``passage_tokens`` tokens over a section, with exact char offsets.

Windows are cut on token boundaries from the embedder's own tokenizer, so each passage fits the
embedder without truncation, and overlap by ``overlap`` tokens so a sentence on a boundary is whole
in at least one window.
"""

from __future__ import annotations

from pipeline.text import trim_span
from pipeline.types import Document, Passage, Section, content_hash


def passage_windows(offsets: list[tuple[int, int]], max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """Token offsets ``[(s, e)]`` → char windows covering them, each spanning ≤ ``max_tokens`` tokens."""
    if not offsets:
        return []
    windows = []
    step = max_tokens - overlap
    i = 0
    while True:
        j = min(i + max_tokens, len(offsets))
        windows.append((offsets[i][0], offsets[j - 1][1]))
        if j == len(offsets):
            return windows
        i += step


def make_passages(section: Section, tokenizer, max_tokens: int = 256, overlap: int = 32) -> list[Passage]:
    """Cuts a section into passages; offsets are into the document (``section.start`` based)."""
    enc = tokenizer(section.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = [(s, e) for s, e in enc["offset_mapping"] if e > s]
    out = []
    for s, e in passage_windows(offsets, max_tokens, overlap):
        s, e = trim_span(section.text, s, e)
        if e <= s:
            continue
        start, end = section.start + s, section.start + e
        text = section.text[s:e]
        out.append(Passage(id=content_hash(section.id, str(start), str(end)), doc_id=section.doc_id,
                           section_id=section.id, start=start, end=end, text=text))
    return out


_FORM_NAMES = {"10-K": "annual report 10-K", "10-Q": "quarterly report 10-Q", "8-K": "current report 8-K",
               "earnings": "earnings release"}


def context_header(doc: Document, section: Section) -> str:
    """The line a passage is embedded after: what its document is and where in it the passage sits
    ("Adobe Systems Incorporated, annual report 10-K, fiscal 2015 — Item 7 › Liquidity and Capital Resources")."""
    meta = dict(doc.metadata)
    what = [meta.get("company") or meta.get("title") or doc.title]
    if form := meta.get("form"):
        what.append(_FORM_NAMES.get(form, form))
    if year := meta.get("fiscal_year"):
        what.append(f"fiscal {year}")
    head = ", ".join(w for w in what if w)
    path = " › ".join(section.path)
    return f"{head} — {path}" if head and path else head or path
