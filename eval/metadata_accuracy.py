"""How well the cover-page reader knows whose filing it is, which form, and which fiscal year.

Every development filing of FinanceBench, in both forms the dataset gives (the text extraction under
``financebench/docs`` and the PDF under ``financebench/pdfs``), is read as ingestion would read it
(``Pipeline.read``: nothing is stored) and its metadata compared with ``document_information.jsonl``:

* **company**: every significant word of the dataset's company name is in the name read ("Coca-Cola" in
  "The Coca-Cola Company"). The dataset names Block's 2016 and 2020 10-Ks by the registrant's later name; the
  filings themselves are Square, Inc.'s (renamed in December 2021), so "Square" also counts for "Block" — the
  figure without that is printed beside it.
* **form**: 10-K, 10-Q, 8-K or an earnings release.
* **fiscal year**: the dataset's period, the calendar year in which the fiscal year ends (a 10-Q's quarter
  belongs to the fiscal year it falls in: Amcor's quarter ended December 31, 2022 is fiscal 2023).

Each field's accuracy comes with a Wilson 95% interval, per source (text, PDF) and in all. The one threshold the
reader has (``[ingest] metadata_min_confidence``: below it a company read gives way to a surer one) is also
chosen leave-one-company-out: for each company, the threshold that reads the other companies' filings best
(ties: the shipped default) reads the held-out company's, so a rule that fits one company's layout only shows.

    python -m eval.metadata_accuracy [--data ../shared/data] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from pipeline import Pipeline, PipelineConfig

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FIELDS = ("company", "form", "fiscal_year")
FORMS = {"10k": "10-K", "10q": "10-Q", "8k": "8-K", "earnings": "earnings"}
RENAMED = {"block": {"square"}}
"""Registrants the dataset names by a later name: Square, Inc. became Block, Inc. in December 2021."""
THRESHOLDS = (0.3, 0.5, 0.65, 0.75, 0.9)
DEFAULT = PipelineConfig().ingest.metadata_min_confidence
_SUFFIXES = {"inc", "incorporated", "corp", "corporation", "co", "company", "plc", "ltd", "the", "and", "of"}


def words(name: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", name.lower().replace("-", " ")) if w not in _SUFFIXES}


def company_ok(gold: str, read: str, renamed: bool = True) -> bool:
    got = words(read)
    want = words(gold)
    if want and want <= got:
        return True
    return renamed and any(alias <= got for w in want for alias in [RENAMED.get(w, set())] if alias)


def wilson(k: int, n: int) -> list[float]:
    if not n:
        return [0.0, 0.0]
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)]


def files(data: Path) -> list[tuple[Path, str]]:
    root = data / "financebench"
    return ([(p, "text") for p in sorted((root / "docs").glob("*.txt"))]
            + [(p, "pdf") for p in sorted((root / "pdfs").glob("*.pdf"))])


def read_all(data: Path, threshold: float) -> list[dict]:
    """One row per filing: its gold, what was read, and whether each field is right."""
    gold = {r["doc_name"]: r for r in map(json.loads, (data / "financebench" / "document_information.jsonl").open())}
    cfg = PipelineConfig().replace(ingest={"metadata_min_confidence": threshold})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        pipe = Pipeline(Path(tmp) / "unused-store", cfg)
        for path, source in files(data):
            g = gold[path.stem]
            doc = pipe.read(path)[0]
            meta = dict(doc.metadata)
            read = {"company": meta.get("company", ""), "form": meta.get("form", ""),
                    "fiscal_year": meta.get("fiscal_year", "")}
            ok = {"company": company_ok(g["company"], read["company"]),
                  "company_no_rename": company_ok(g["company"], read["company"], renamed=False),
                  "form": read["form"] == FORMS[g["doc_type"].lower()],
                  "fiscal_year": read["fiscal_year"] == str(g["doc_period"])}
            rows.append({"doc": path.stem, "source": source, "company_gold": g["company"], "read": read, "ok": ok,
                         "from": {f: meta.get(f"{f}_from", "") for f in FIELDS},
                         "confidence": {f: meta.get(f"{f}_confidence", "") for f in FIELDS}})
    return rows


def accuracy(rows: list[dict]) -> dict:
    out = {}
    for source in ("text", "pdf", "all"):
        sel = [r for r in rows if source in ("all", r["source"])]
        out[source] = {"n": len(sel)}
        for f in (*FIELDS, "company_no_rename"):
            k = sum(r["ok"][f] for r in sel)
            out[source][f] = {"accuracy": round(k / len(sel), 4) if sel else None, "ci95": wilson(k, len(sel)), "k": k}
    return out


def leave_one_company_out(by_threshold: dict[float, list[dict]]) -> dict:
    """Each company read with the threshold chosen on the others; accuracy per field over all filings."""
    companies = sorted({r["company_gold"] for r in by_threshold[DEFAULT]})
    held: list[dict] = []
    chosen: dict[str, float] = {}
    for company in companies:
        def score(t: float, company: str = company) -> int:
            return sum(sum(r["ok"][f] for f in FIELDS) for r in by_threshold[t] if r["company_gold"] != company)
        best = max(score(t) for t in by_threshold)
        pick = DEFAULT if score(DEFAULT) == best else min(t for t in by_threshold if score(t) == best)
        chosen[company] = pick
        held += [r for r in by_threshold[pick] if r["company_gold"] == company]
    result = accuracy(held)["all"]
    result["thresholds_chosen"] = dict(sorted(defaultdict(int, {str(t): sum(v == t for v in chosen.values())
                                                               for t in set(chosen.values())}).items()))
    return result


def run(data: Path) -> dict:
    thresholds = sorted({DEFAULT, *THRESHOLDS})
    by_threshold = {t: read_all(data, t) for t in thresholds}
    rows = by_threshold[DEFAULT]
    return {"filings": len(rows), "default_threshold": DEFAULT, "accuracy": accuracy(rows),
            "by_threshold": {str(t): accuracy(by_threshold[t])["all"] for t in thresholds},
            "leave_one_company_out": leave_one_company_out(by_threshold),
            "misses": [r for r in rows if not all(r["ok"][f] for f in FIELDS) or not r["ok"]["company_no_rename"]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not (args.data / "financebench" / "document_information.jsonl").exists():
        ap.error(f"{args.data}: no financebench/document_information.jsonl there (--data)")
    result = run(args.data)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{result['filings']} filings, threshold {result['default_threshold']}")
    for source, m in result["accuracy"].items():
        print(f"{source:5s} n={m['n']:3d} " + "  ".join(
            f"{f}={m[f]['accuracy']:.3f} {m[f]['ci95']}" for f in (*FIELDS, "company_no_rename")))
    loco = result["leave_one_company_out"]
    print("leave one company out: " + "  ".join(f"{f}={loco[f]['accuracy']:.3f} {loco[f]['ci95']}" for f in FIELDS)
          + f"  thresholds chosen {loco['thresholds_chosen']}")
    for r in result["misses"]:
        print(f"miss {r['doc']} ({r['source']}): read {r['read']} ({r['from']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
