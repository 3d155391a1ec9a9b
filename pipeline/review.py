"""``sectionrag review``: a playbook of hypotheses checked over many contracts, as one resumable batch job.

A playbook is a TOML file with one table per hypothesis::

    [[hypothesis]]
    id = "no-reverse-engineering"            # a short name, unique in the playbook
    text = "Receiving Party shall not reverse engineer any objects which embody Confidential Information."

Every (document, hypothesis) verdict (``Pipeline.check``) is appended to ``OUT/review.jsonl`` as soon as it
exists, so a stopped review continues where it stopped; at the end ``OUT/review.csv`` (one row per document,
one column per hypothesis) and ``OUT/review.html`` (each verdict with its evidence highlighted in context)
are written from every verdict recorded.

>>> playbook = Playbook.from_toml("nda.toml")
>>> report = run_review(pipeline, playbook, ["nda-17", "nda-18"], Path("out/review"))
"""

from __future__ import annotations

import csv
import html
import json
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.types import NLI_LABELS

RESULTS = "review.jsonl"
TABLE = "review.csv"
PAGE = "review.html"
CONTEXT_CHARS = 160


@dataclass(frozen=True)
class Hypothesis:
    id: str
    text: str


@dataclass(frozen=True)
class Playbook:
    path: Path
    hypotheses: tuple[Hypothesis, ...]

    @classmethod
    def from_toml(cls, path: str | Path) -> Playbook:
        """Reads a playbook; a file that is missing, not TOML, or not a list of ``[[hypothesis]]`` tables with a
        unique ``id`` and a non-empty ``text`` is one clear ``ValueError`` naming the file."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"playbook {path} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"playbook {path} is not valid TOML: {exc}") from None
        rows = data.get("hypothesis")
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"playbook {path} has no [[hypothesis]] tables (each with an id and a text)")
        out, seen = [], set()
        for n, row in enumerate(rows, 1):
            if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row["id"].strip() \
                    or not isinstance(row.get("text"), str) or not row["text"].strip():
                raise ValueError(f"playbook {path}: hypothesis {n} needs a non-empty string id and text")
            unknown = set(row) - {"id", "text"}
            if unknown:
                raise ValueError(f"playbook {path}: hypothesis {row['id']!r} has unknown key(s) {sorted(unknown)}")
            if row["id"] in seen:
                raise ValueError(f"playbook {path}: hypothesis id {row['id']!r} appears twice")
            seen.add(row["id"])
            out.append(Hypothesis(row["id"].strip(), row["text"].strip()))
        return cls(path, tuple(out))


@dataclass(frozen=True)
class ReviewReport:
    documents: int
    hypotheses: int
    checked: int
    """Verdicts made by this run (the others were recorded by an earlier one)."""
    counts: dict[str, int]
    files: dict[str, str]


def run_review(pipeline, playbook: Playbook, doc_ids: Sequence[str], out_dir: Path, progress: bool = True
               ) -> ReviewReport:
    """Checks every hypothesis of ``playbook`` on every document (``pipeline``: a ``pipeline.Pipeline``)."""
    from tqdm import tqdm

    if not doc_ids:
        raise ValueError("nothing to review: name stored document ids, or files and folders to ingest")
    known = set(pipeline.documents())
    unknown = [d for d in doc_ids if d not in known]
    if unknown:
        raise ValueError(f"no document {', '.join(map(repr, unknown[:5]))} in store {pipeline.folder}; "
                         f"`sectionrag sections --store {pipeline.folder}` lists what is there")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = _load(out_dir / RESULTS)
    todo = [(d, h) for d in doc_ids for h in playbook.hypotheses if (d, h.id, h.text) not in done]
    with open(out_dir / RESULTS, "a") as fh, tqdm(total=len(todo), desc="review", unit="check", disable=not progress,
                                                   file=sys.stderr) as bar:
        for doc_id, hyp in todo:
            v = pipeline.check(hyp.text, [doc_id])
            rec = {"doc_id": doc_id, "hypothesis": hyp.id, "text": hyp.text, "label": v.label,
                   "confidence": v.confidence,
                   "evidence": [{"doc_id": c.doc_id, "section_id": c.section_id, "start": c.start, "end": c.end,
                                 "quote": c.quote} for c in v.evidence]}
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            done[(doc_id, hyp.id, hyp.text)] = rec
            bar.update(1)
    wanted = [done[(d, h.id, h.text)] for d in doc_ids for h in playbook.hypotheses]
    _write_table(out_dir / TABLE, doc_ids, playbook, wanted)
    _write_page(out_dir / PAGE, pipeline, playbook, wanted)
    counts = {label: sum(r["label"] == label for r in wanted) for label in NLI_LABELS}
    return ReviewReport(documents=len(doc_ids), hypotheses=len(playbook.hypotheses), checked=len(todo), counts=counts,
                        files={k: str(out_dir / f) for k, f in (("results", RESULTS), ("table", TABLE), ("page", PAGE))})


def _load(path: Path) -> dict[tuple[str, str, str], dict]:
    """Verdicts recorded before, by (document, hypothesis id, text): an edited hypothesis is checked again."""
    out: dict[tuple[str, str, str], dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
                out[(rec["doc_id"], rec["hypothesis"], rec["text"])] = rec
            except (ValueError, KeyError):
                continue  # a line cut short by a stopped run: that check is simply made again
    return out


def _write_table(path: Path, doc_ids: Sequence[str], playbook: Playbook, records: list[dict]) -> None:
    by = {(r["doc_id"], r["hypothesis"]): r for r in records}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["doc_id", *(h.id for h in playbook.hypotheses)])
        for d in doc_ids:
            w.writerow([d, *(f"{by[(d, h.id)]['label']} ({by[(d, h.id)]['confidence']:.2f})" for h in playbook.hypotheses)])


def _write_page(path: Path, pipeline, playbook: Playbook, records: list[dict]) -> None:
    texts: dict[str, str] = {}
    parts = [f"<!doctype html><meta charset='utf-8'><title>Review: {html.escape(playbook.path.name)}</title>",
             "<style>body{font-family:sans-serif;max-width:70em}mark{background:#ffe08a}.v{margin:1em 0}"
             ".Entailment{color:#176a2c}.Contradiction{color:#a61b1b}.NotMentioned{color:#666}</style>",
             f"<h1>Review: {html.escape(playbook.path.name)}</h1>"]
    for r in records:
        parts.append(f"<div class='v'><b>{html.escape(r['doc_id'])}</b> — {html.escape(r['hypothesis'])}: "
                     f"<span class='{r['label']}'>{r['label']}</span> ({r['confidence']:.2f})"
                     f"<br><i>{html.escape(r['text'])}</i>")
        for e in r["evidence"]:
            if e["doc_id"] not in texts:
                texts[e["doc_id"]] = pipeline.document(e["doc_id"]).text
            t = texts[e["doc_id"]]
            before = t[max(0, e["start"] - CONTEXT_CHARS):e["start"]]
            after = t[e["end"]:e["end"] + CONTEXT_CHARS]
            parts.append(f"<p>… {html.escape(before)}<mark>{html.escape(e['quote'])}</mark>{html.escape(after)} … "
                         f"<small>[{e['start']}:{e['end']}]</small></p>")
        parts.append("</div>")
    path.write_text("\n".join(parts))
