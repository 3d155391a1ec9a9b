"""How well the contract sectionizer finds structure: CUAD contracts (``.txt``) and ContractNLI NDAs.

Prints one JSON object: the share of contracts with >= 5 sections, the median section length in tokens,
distributions, how often the Article/Section hierarchy was found, offset checks and example heading paths.

    python -m eval.ingest_contracts --data ../shared/data/cuad/contracts --workers 2
    python -m eval.ingest_contracts --contractnli ../shared/data/contractnli/dev.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class DocStats:
    doc_id: str
    detected_kind: str
    tokens: int
    section_tokens: tuple[int, ...]
    paths: tuple[tuple[str, ...], ...]
    numbered_headings: int
    max_depth: int
    recitals: bool
    signatures: bool
    exhibits: int
    offsets_exact: bool
    covers_text: bool


def _measure(item: tuple[str, str]) -> DocStats:
    from ingest.sectionizers import contract, detect_kind, sectionize
    from ingest.tokens import TokenCounter
    from pipeline.types import Document

    doc_id, text = item
    detected = detect_kind(text)
    doc = Document(id=doc_id, source=doc_id, text=text, kind="contract", title=doc_id)
    heads = contract.find_headings(doc)
    sections = sectionize(doc)
    numbered = [h for h in heads if not h.hard and h.title not in ("Preamble", "Recitals", "Signatures")]
    covered = sum(len(s.text) for s in sections)
    non_ws = len(text) - sum(c.isspace() for c in text)
    inside = sum(len(s.text) - sum(c.isspace() for c in s.text) for s in sections)
    return DocStats(
        doc_id=doc_id,
        detected_kind=detected,
        tokens=TokenCounter(text).total,
        section_tokens=tuple(s.tokens for s in sections),
        paths=tuple(s.path for s in sections),
        numbered_headings=len(numbered),
        max_depth=max((h.level for h in numbered), default=0),
        recitals=any(h.title == "Recitals" for h in heads),
        signatures=any(h.title == "Signatures" for h in heads),
        exhibits=sum(h.hard for h in heads),
        offsets_exact=all(s.text == text[s.start:s.end] for s in sections)
        and all(a.end <= b.start for a, b in itertools.pairwise(sections)) and covered <= len(text),
        covers_text=inside == non_ws,
    )


def _quantiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    qs = statistics.quantiles(values, n=10, method="inclusive") if len(values) > 1 else [values[0]] * 9
    return {"min": min(values), "p10": qs[0], "p25": statistics.quantiles(values, n=4, method="inclusive")[0]
            if len(values) > 1 else values[0], "median": statistics.median(values), "p90": qs[8], "max": max(values)}


def summarize(stats: list[DocStats], seconds: float, examples: int = 6) -> dict:
    all_tokens = [t for s in stats for t in s.section_tokens]
    counts = [len(s.section_tokens) for s in stats]
    n = len(stats)
    hist: dict[str, int] = {}
    for c in counts:
        key = str(c) if c < 10 else "10+"
        hist[key] = hist.get(key, 0) + 1
    over_target = [s for s in stats if s.tokens > 4000]
    rich = sorted(stats, key=lambda s: -len(s.section_tokens))
    step = max(1, len(rich) // examples)
    return {
        "documents": n,
        "seconds": round(seconds, 1),
        "share_ge5_sections": round(sum(c >= 5 for c in counts) / n, 3) if n else 0.0,
        "share_ge5_sections_among_docs_over_20k_tokens": (
            round(sum(len(s.section_tokens) >= 5 for s in stats if s.tokens > 20000)
                  / max(1, sum(s.tokens > 20000 for s in stats)), 3)),
        "share_gt1_section_among_docs_over_target": round(
            sum(len(s.section_tokens) > 1 for s in over_target) / max(1, len(over_target)), 3),
        "median_section_tokens": statistics.median(all_tokens) if all_tokens else 0,
        # exhibits are hard boundaries and often a page or less (EDGAR omits their contents)
        "median_section_tokens_excluding_exhibits": statistics.median(body) if (body := [
            t for s in stats for t, p in zip(s.section_tokens, s.paths, strict=True)
            if not re.match(r"(?:EXHIBIT|SCHEDULE|APPENDIX|ANNEX|ATTACHMENT|ADDENDUM)\b", p[0], re.IGNORECASE)]) else 0,
        "section_tokens": _quantiles(all_tokens),
        "sections_per_document": _quantiles(counts),
        "sections_per_document_histogram": dict(sorted(hist.items(), key=lambda kv: (len(kv[0]), kv[0]))),
        "document_tokens": _quantiles([s.tokens for s in stats]),
        "share_hierarchy_found": round(sum(s.numbered_headings >= 3 for s in stats) / n, 3) if n else 0.0,
        "share_nested_hierarchy": round(sum(s.max_depth >= 2 for s in stats) / n, 3) if n else 0.0,
        "share_with_recitals": round(sum(s.recitals for s in stats) / n, 3) if n else 0.0,
        "share_with_signature_block": round(sum(s.signatures for s in stats) / n, 3) if n else 0.0,
        "share_with_exhibits": round(sum(s.exhibits > 0 for s in stats) / n, 3) if n else 0.0,
        "share_detected_as_contract": round(sum(s.detected_kind == "contract" for s in stats) / n, 3) if n else 0.0,
        "offsets_exact": all(s.offsets_exact for s in stats),
        "sections_cover_all_text": sum(s.covers_text for s in stats),
        "no_hierarchy_examples": [s.doc_id for s in stats if s.numbered_headings < 3][:10],
        "example_paths": {s.doc_id: [list(p) for p in s.paths] for s in rich[::step][:examples]},
    }


def _cuad(folder: Path, limit: int | None) -> list[tuple[str, str]]:
    from ingest.readers import read

    files = sorted(folder.glob("*.txt"))[:limit]
    return [(f.stem, read(f)[0].text) for f in files]


def _contractnli(path: Path, limit: int | None) -> list[tuple[str, str]]:
    docs = json.loads(path.read_text(encoding="utf-8"))["documents"][:limit]
    return [(Path(d["file_name"]).stem or str(d["id"]), d["text"]) for d in docs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=_DATA / "cuad" / "contracts", help="folder of contract .txt files")
    ap.add_argument("--contractnli", type=Path, help="ContractNLI JSON (dev.json): measure its NDAs instead")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="accepted for symmetry; the output is always JSON")
    args = ap.parse_args(argv)
    source = args.contractnli or args.data
    if not source.exists():
        print(f"{source} does not exist; pass --data or --contractnli", file=sys.stderr)
        return 2
    items = _contractnli(source, args.limit) if args.contractnli else _cuad(source, args.limit)
    t0 = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            stats = list(pool.map(_measure, items, chunksize=4))
    else:
        stats = [_measure(i) for i in items]
    out = summarize(stats, time.perf_counter() - t0)
    out["source"] = str(source)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
