"""Checks EHR and clinical-note ingestion against the source data, and prints one JSON summary.

FHIR part (``synthea/fhir``, a bulk export): the export is read through ``ingest.readers.read`` and
sectionized; independently, the raw NDJSON is read here, and every MedicationRequest, Condition,
Procedure, Immunization, AllergyIntolerance and DocumentReference is looked up in its patient's
document. For each fact, with ``name`` its concept's text or any coding display and ``date`` its own
date (authoredOn, onset, …):

* ``in_text``: the name occurs in the document text;
* ``with_date_on_line``: one line of the text holds both the name and the date;
* ``in_dated_section``: a section whose path carries dates spanning the date holds the name and date;
* ``in_encounter_section``: for facts linked to an encounter, a section whose path names encounters
  spanning the encounter's date holds the name.

Notes part: the note sectionizer on ACI-BENCH notes (headers such as ``CHIEF COMPLAINT``) and on the
Synthea ``notes.jsonl`` texts (``# Chief Complaint``): detected kind, headings per note, recall of
the header lines a reference vocabulary names, and whether sections split at headings when forced
to split (a small target and maximum).

    python eval/ingest_ehr.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

from ingest.readers import read
from ingest.sectionizers import detect_kind, sectionize
from ingest.sectionizers.note import note_headings
from pipeline.types import Document, Section

_DATE = re.compile(r"\d{4}-\d\d-\d\d")
# header lines named by ACI-BENCH's own section tagger (wyim/aci-bench, baselines/sectiontagger.py),
# the reference the note sectionizer's recall is measured against
_ACI_HEADERS = {
    "cc", "chief complaint", "reason for visit", "history", "history of present illness", "hpi", "hpi notes",
    "interval history", "interval hx", "subjective", "ros", "review of system", "review of systems",
    "social history", "past history", "physical exam", "physical examination", "pe", "physical findings",
    "examination", "exam", "vitals reviewed", "results", "findings", "assessment", "plan", "plan of care",
    "ap", "a / p", "assessment and plan", "assessment & plan", "disposition / plan", "impression",
}
_FACT_KINDS = {
    "MedicationRequest": ("medications", ("medicationCodeableConcept",), ("authoredOn",)),
    "Condition": ("conditions", ("code",), ("onsetDateTime", "recordedDate")),
    "Procedure": ("procedures", ("code",), ("performedDateTime", "performedPeriod")),
    "Immunization": ("immunizations", ("vaccineCode",), ("occurrenceDateTime",)),
    "AllergyIntolerance": ("allergies", ("code",), ("recordedDate", "onsetDateTime")),
}


def _names(concept: dict | None) -> list[str]:
    concept = concept or {}
    names = [concept.get("text", "")] + [c.get("display", "") for c in concept.get("coding", [])]
    return [n for n in dict.fromkeys(names) if n]


def _date_of(r: dict, keys: tuple[str, ...]) -> str:
    for k in keys:
        v = r.get(k)
        if isinstance(v, dict):
            v = v.get("start")
        if isinstance(v, str) and v:
            return v[:10]
    return ""


def _ref(ref: dict | None) -> str:
    return ((ref or {}).get("reference") or "").rsplit("/", 1)[-1].removeprefix("urn:uuid:")


def _span(path: tuple[str, ...], kind: str = "") -> tuple[str, str] | None:
    """The dates a section path spans (of its ``kind`` titles only, when given)."""
    text = " … ".join(path)
    if kind:
        dates = re.findall(rf"{kind} (\d{{4}}-\d\d-\d\d)", text)
    else:
        dates = _DATE.findall(text)
    return (min(dates), max(dates)) if dates else None


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _stats(values: list[int]) -> dict:
    if not values:
        return {}
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "total": sum(values)}


def _check_sections(doc: Document, secs: list[Section]) -> dict:
    exact = all(s.text == doc.text[s.start:s.end] for s in secs)
    ordered = all(a.end <= b.start for a, b in pairwise(secs))
    covered = sum(len(s.text) - sum(c.isspace() for c in s.text) for s in secs)
    total = len(doc.text) - sum(c.isspace() for c in doc.text)
    return {"exact": exact, "ordered": ordered, "coverage": covered / max(total, 1)}


def check_fhir(folder: Path, target: int, maximum: int, examples: int = 5) -> dict:
    t0 = time.perf_counter()
    docs = read(folder)
    t_read = time.perf_counter() - t0
    sections = {d.id: sectionize(d, target_tokens=target, max_tokens=maximum) for d in docs}
    t_sec = time.perf_counter() - t0 - t_read
    by_patient: dict[str, list[Document]] = defaultdict(list)
    for d in docs:
        by_patient[dict(d.metadata).get("patient_id", "")].append(d)

    resources: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(folder.glob("*.ndjson")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    resources[r["resourceType"]].append(r)
    patients = [r["id"] for r in resources["Patient"]]
    enc_date = {r["id"]: _date_of(r, ("period",)) for r in resources["Encounter"]}
    enc_patient = {r["id"]: _ref(r.get("subject")) for r in resources["Encounter"]}

    checks = [_check_sections(d, sections[d.id]) for d in docs]
    all_secs = [s for d in docs for s in sections[d.id]]
    out: dict = {
        "source": str(folder),
        "patients": len(patients),
        "documents": len(docs),
        "one_document_per_patient": all(len(by_patient.get(p, [])) == 1 for p in patients) and len(docs) == len(patients),
        "kinds": dict(Counter(d.kind for d in docs)),
        "sections": len(all_secs),
        "sections_per_patient": _stats([len(sections[d.id]) for d in docs]),
        "section_tokens": _stats([s.tokens for s in all_secs]),
        "sections_over_max": sum(s.tokens > maximum for s in all_secs),
        "sections_with_dated_path": _share([_span(s.path) is not None for s in all_secs]),
        "offsets_exact": all(c["exact"] for c in checks),
        "sections_ordered": all(c["ordered"] for c in checks),
        "coverage_min": round(min(c["coverage"] for c in checks), 4),
        "document_chars": _stats([len(d.text) for d in docs]),
        "document_tokens": _stats([sum(s.tokens for s in sections[d.id]) for d in docs]),
        "seconds": {"read": round(t_read, 2), "sectionize": round(t_sec, 2)},
    }
    missing: list[dict] = []
    for kind, (label, concept_keys, date_keys) in _FACT_KINDS.items():
        flags: dict[str, list[bool]] = defaultdict(list)
        for r in resources.get(kind, []):
            pid = _ref(r.get("subject") or r.get("patient"))
            docs_of = by_patient.get(pid, [])
            if len(docs_of) != 1:
                flags["in_text"].append(False)
                continue
            doc, secs = docs_of[0], sections[docs_of[0].id]
            names = [n for k in concept_keys for n in _names(r.get(k))]
            date = _date_of(r, date_keys)
            in_text = any(n in doc.text for n in names)
            on_line = bool(date) and any(n in line and date in line for line in doc.text.splitlines() for n in names if n in doc.text)
            dated = bool(date) and any((sp := _span(s.path)) and sp[0] <= date <= sp[1] and date in s.text
                                       and any(n in s.text for n in names) for s in secs)
            flags["in_text"].append(in_text)
            flags["with_date_on_line"].append(on_line)
            flags["in_dated_section"].append(dated)
            enc = _ref(r.get("encounter"))
            if enc in enc_date and enc_patient.get(enc) == pid:
                ed = enc_date[enc]
                flags["in_encounter_section"].append(any(
                    (sp := _span(s.path, "Encounter")) and sp[0] <= ed <= sp[1] and any(n in s.text for n in names)
                    for s in secs))
            if not (in_text and on_line and dated) and len(missing) < examples:
                missing.append({"kind": kind, "id": r.get("id"), "names": names, "date": date, "patient": pid,
                                "in_text": in_text, "with_date_on_line": on_line, "in_dated_section": dated})
        out[label] = {"total": len(resources.get(kind, [])), **{k: _share(v) for k, v in flags.items()}}

    note_flags: dict[str, list[bool]] = defaultdict(list)
    for r in resources.get("DocumentReference", []):
        pid = _ref(r.get("subject"))
        doc = by_patient.get(pid, [None])[0]
        text = base64.b64decode(r["content"][0]["attachment"]["data"]).decode("utf-8").replace("\r\n", "\n").strip()
        date = (r.get("date") or "")[:10]
        note_flags["verbatim_in_text"].append(doc is not None and text in doc.text)
        note_flags["in_section_dated_to_it"].append(doc is not None and any(
            (sp := _span(s.path)) and sp[0] <= date <= sp[1] and text[:200] in s.text for s in sections[doc.id]))
    out["notes"] = {"total": len(resources.get("DocumentReference", [])), **{k: _share(v) for k, v in note_flags.items()}}
    jsonl = folder.parent / "notes.jsonl"
    if jsonl.exists():
        found = []
        for line in jsonl.open(encoding="utf-8"):
            n = json.loads(line)
            doc = by_patient.get(n["patient_id"], [None])[0]
            found.append(doc is not None and n["text"].strip() in doc.text)
        out["notes_jsonl"] = {"total": len(found), "verbatim_in_patient_document": _share(found)}
    out["not_found_examples"] = missing
    return out


def _line_starts(text: str) -> list[tuple[int, str]]:
    pos, out = 0, []
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def check_notes(name: str, texts: list[str], reference: str) -> dict:
    """The note sectionizer on plain notes; ``reference`` picks which header lines are expected."""
    per_note, level1, kinds, titles = [], [], Counter(), Counter()
    expected = found = 0
    exact, forced_total, forced_at_heading, forced_at_line = True, 0, 0, 0
    for i, text in enumerate(texts):
        heads = note_headings(text)
        starts = {h.start for h in heads}
        per_note.append(len(heads))
        level1.append(sum(h.level == 1 for h in heads))
        titles.update(h.title for h in heads)
        kinds[detect_kind(text)] += 1
        for pos, line in _line_starts(text):
            s = line.strip()
            if reference == "markdown":
                is_header = bool(re.match(r"#{1,6} \S", s))
            else:
                is_header = s.rstrip(":").strip().lower() in _ACI_HEADERS
            if is_header:
                expected += 1
                found += (pos + len(line) - len(line.lstrip())) in starts
        doc = Document(id=f"{name}-{i}", source=name, text=text, kind="note")
        for target, maximum in ((4000, 32000), (64, 128)):
            secs = sectionize(doc, target_tokens=target, max_tokens=maximum)
            exact &= all(s.text == text[s.start:s.end] for s in secs)
            if maximum == 128:
                # a forced split falls on a heading, else on a paragraph or line break, never mid-line
                for s in secs[1:]:
                    forced_total += 1
                    forced_at_heading += s.start in starts
                    forced_at_line += not text[text.rfind("\n", 0, s.start) + 1:s.start].strip()
    return {
        "notes": len(texts),
        "detected_kind": dict(kinds),
        "headings_per_note": _stats(per_note),
        "level1_headings_per_note": _stats(level1),
        "notes_with_2plus_level1": _share([n >= 2 for n in level1]),
        "reference_header_lines": expected,
        "reference_header_recall": round(found / expected, 4) if expected else None,
        "offsets_exact": exact,
        "forced_split_boundaries": forced_total,
        "forced_split_boundaries_at_headings": round(forced_at_heading / forced_total, 4) if forced_total else None,
        "forced_split_boundaries_at_line_starts": round(forced_at_line / forced_total, 4) if forced_total else None,
        "top_titles": titles.most_common(40),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data")
    ap.add_argument("--target-tokens", type=int, default=4000)
    ap.add_argument("--max-tokens", type=int, default=32000)
    ap.add_argument("--json", action="store_true", help="accepted for the CLI contract; output is always JSON")
    args = ap.parse_args(argv)
    fhir = args.data / "synthea" / "fhir"
    if not fhir.is_dir():
        print(f"{fhir}: no Synthea FHIR export there; pass --data", file=sys.stderr)
        return 2
    result = {"fhir": check_fhir(fhir, args.target_tokens, args.max_tokens)}
    aci = [r["note"] for f in sorted((args.data / "aci_bench").glob("*.csv")) if "metadata" not in f.name
           for r in csv.DictReader(f.open(encoding="utf-8")) if r.get("note")]
    result["aci_bench_notes"] = check_notes("aci", aci, "aci") if aci else None
    jsonl = args.data / "synthea" / "notes.jsonl"
    synthea = [json.loads(line)["text"] for line in jsonl.open(encoding="utf-8")] if jsonl.exists() else []
    result["synthea_notes"] = check_notes("synthea", synthea, "markdown") if synthea else None
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
