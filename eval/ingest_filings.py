"""How well filings are read and sectionized: FinanceBench 10-K/10-Q/8-K/earnings (PDF and text).

For every filing: the Items and notes found as sections, section sizes, exact offsets. For every
FinanceBench evidence item (``doc_name``, 0-based ``evidence_page_num``): whether the gold page lies
inside one section ("whole page"), and whether its ``evidence_text``, located on that page, does
("evidence"). Both on the text files (page *n* = ``text.split('\\f')[n]``) and, where the filing has
one, on the PDF read by ``ingest.readers.pdf``. Prints one JSON object.

    python -m eval.ingest_filings [--data ../shared/data/financebench] [--workers 2] [--details]
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "financebench"
_WORD = re.compile(r"[A-Za-z0-9]+")
_ITEM = re.compile(r"^Item \d")
_NOTE = re.compile(r"^Note (\d+)")


def _words(text: str, base: int = 0) -> list[tuple[str, int, int]]:
    return [(m.group().lower(), base + m.start(), base + m.end()) for m in _WORD.finditer(text)]


def locate(page_text: str, base: int, evidence: str) -> tuple[int, int, str] | None:
    """The span of ``evidence`` in the page: exact word sequence first, else the best fuzzy alignment.

    Matching is on alphanumeric words, so whitespace, table cell separators and punctuation do not
    matter. Returns ``(start, end, how)`` with ``how`` in {"exact", "fuzzy"}, or None when under 70% of
    the evidence's words align.
    """
    page = _words(page_text, base)
    ev = [w for w, _, _ in _words(evidence)]
    if not ev or not page:
        return None
    pw = [w for w, _, _ in page]
    n = len(ev)
    first = ev[0]
    for i, w in enumerate(pw):
        if w == first and pw[i:i + n] == ev:
            return page[i][1], page[i + n - 1][2], "exact"
    sm = difflib.SequenceMatcher(None, pw, ev, autojunk=False)
    blocks = [b for b in sm.get_matching_blocks() if b.size]
    matched = sum(b.size for b in blocks)
    if matched < 0.7 * n:
        return None
    lo = min(b.a for b in blocks)
    hi = max(b.a + b.size for b in blocks) - 1
    return page[lo][1], page[hi][2], "fuzzy"


def _inside_one(sections, start: int, end: int) -> bool:
    return any(s.start <= start and end <= s.end for s in sections)


def _page_span(doc, n: int) -> tuple[int, int]:
    from pipeline.text import trim_span

    starts = doc.page_starts
    end = starts[n + 1] if n + 1 < len(starts) else len(doc.text)
    return trim_span(doc.text, starts[n], end)


def _measure(job: tuple[str, str, list[dict]]) -> dict:
    from ingest.readers import read
    from ingest.sectionizers import detect_kind, sectionize

    path, fmt, evidence = job
    t0 = time.perf_counter()
    doc = read(Path(path))[0]
    t1 = time.perf_counter()
    kind = detect_kind(doc.text)
    sections = sectionize(doc)
    t2 = time.perf_counter()
    items = sorted({p for s in sections for p in s.path if _ITEM.match(p)},
                   key=lambda p: [int(x) if x.isdigit() else x for x in re.findall(r"\d+|[A-Z]$", p[5:])])
    notes = {int(m.group(1)) for s in sections for p in s.path if (m := _NOTE.match(p))}
    exact = all(doc.text[s.start:s.end] == s.text for s in sections)
    ordered = all(a.end <= b.start for a, b in zip(sections, sections[1:]))
    rows = []
    for ev in evidence:
        n = ev["evidence_page_num"]
        row = {"doc": ev["doc_name"], "page": n, "format": fmt}
        if n >= doc.pages:
            row.update(page_exists=False, whole_page=False, located=None, evidence_inside=False)
            rows.append(row)
            continue
        ps, pe = _page_span(doc, n)
        row["page_exists"] = True
        row["whole_page"] = _inside_one(sections, ps, pe)
        loc = locate(doc.text[ps:pe], ps, ev["evidence_text"])
        row["located"] = loc[2] if loc else None
        row["evidence_inside"] = bool(loc) and _inside_one(sections, loc[0], loc[1])
        if not row["whole_page"]:
            row["cut_by"] = [list(s.path) for s in sections if s.end > ps and s.start < pe]
        rows.append(row)
    return {
        "doc": Path(path).stem, "format": fmt, "kind": kind, "pages": doc.pages, "chars": len(doc.text),
        "sections": len(sections), "max_section_tokens": max((s.tokens for s in sections), default=0),
        "items": items, "notes": len(notes), "offsets_exact": exact and ordered,
        "read_s": round(t1 - t0, 3), "sectionize_s": round(t2 - t1, 3), "evidence": rows,
    }


def _rates(rows: list[dict]) -> dict:
    n = len(rows)
    located = [r for r in rows if r.get("located")]
    return {
        "evidence_items": n,
        "whole_page_inside_one_section": round(sum(r["whole_page"] for r in rows) / n, 4) if n else None,
        "evidence_located": len(located),
        "evidence_located_exact": sum(r["located"] == "exact" for r in located),
        "evidence_inside_one_section_of_all": round(sum(r["evidence_inside"] for r in rows) / n, 4) if n else None,
        "evidence_inside_one_section_of_located":
            round(sum(r["evidence_inside"] for r in located) / len(located), 4) if located else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=_DATA)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--details", action="store_true", help="include every evidence row and cut page")
    args = ap.parse_args(argv)
    if not (args.data / "questions.jsonl").exists():
        print(json.dumps({"error": f"no FinanceBench data at {args.data}"}))
        return 1
    evidence: dict[str, list[dict]] = defaultdict(list)
    for line in (args.data / "questions.jsonl").read_text().splitlines():
        for ev in json.loads(line)["evidence"]:
            evidence[ev["doc_name"]].append(ev)
    jobs = [(str(p), "txt", evidence.get(p.stem, [])) for p in sorted((args.data / "docs").glob("*.txt"))]
    jobs += [(str(p), "pdf", evidence.get(p.stem, [])) for p in sorted((args.data / "pdfs").glob("*.pdf"))]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_measure, jobs))
    out: dict = {"seconds": round(time.perf_counter() - t0, 1)}
    for fmt in ("txt", "pdf"):
        res = [r for r in results if r["format"] == fmt]
        rows = [row for r in res for row in r["evidence"]]
        tenk = [r for r in res if "10K" in r["doc"]]
        out[fmt] = {
            "documents": len(res),
            "pages": sum(r["pages"] for r in res),
            "offsets_exact": all(r["offsets_exact"] for r in res),
            "ten_k_with_items": sum(bool(r["items"]) for r in tenk),
            "ten_k": len(tenk),
            **_rates(rows),
            "per_document": {r["doc"]: {"kind": r["kind"], "pages": r["pages"], "sections": r["sections"],
                                        "max_section_tokens": r["max_section_tokens"], "notes": r["notes"],
                                        "items": r["items"], "read_s": r["read_s"],
                                        "sectionize_s": r["sectionize_s"]} for r in res},
        }
        if args.details:
            out[fmt]["misses"] = [row for row in rows if not (row["whole_page"] and row["evidence_inside"])]
    # The same evidence items measured on both formats, for a like-for-like comparison.
    pdf_docs = {r["doc"] for r in results if r["format"] == "pdf"}
    for fmt in ("txt", "pdf"):
        rows = [row for r in results if r["format"] == fmt and r["doc"] in pdf_docs for row in r["evidence"]]
        out[f"{fmt}_on_docs_with_pdf"] = _rates(rows)
    json.dump(out, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
