"""FHIR R4 (Bundle JSON, a single resource, or bulk-export NDJSON) → one longitudinal document per patient.

The document is rendered text: a patient header, structured summaries (conditions with onset and
abatement dates, medications with dates, allergies, immunizations, procedures), then each encounter
in date order with its clinical notes (DocumentReference attachments, base64-decoded) verbatim.
Block headings are upper-case lines the EHR sectionizer recognises (``ENCOUNTER 1987-11-19 — …``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from ingest.errors import IngestError
from pipeline.types import Document, content_hash

SUMMARY_BLOCKS = ("CONDITIONS", "MEDICATIONS", "ALLERGIES", "IMMUNIZATIONS", "PROCEDURES")


def _date(value: str | None) -> str:
    return (value or "")[:10]


def _concept(c: dict | None) -> str:
    if not c:
        return ""
    if c.get("text"):
        return c["text"]
    for coding in c.get("coding", []):
        if coding.get("display"):
            return coding["display"]
    return ""


def _status(r: dict, key: str) -> str:
    v = r.get(key)
    if isinstance(v, dict):
        return _concept(v) or next((c.get("code", "") for c in v.get("coding", [])), "")
    return v or ""


def _ref_id(ref: dict | None) -> str:
    ref = (ref or {}).get("reference", "")
    return ref.split("/", 1)[1] if ref.startswith(("Patient/", "Encounter/")) else ref.removeprefix("urn:uuid:")


def _patient_of(r: dict) -> str:
    if r.get("resourceType") == "Patient":
        return r.get("id", "")
    return _ref_id(r.get("subject") or r.get("patient"))


def _when(r: dict) -> str:
    for key in ("onsetDateTime", "authoredOn", "occurrenceDateTime", "recordedDate", "date"):
        if r.get(key):
            return _date(r[key])
    for key in ("performedPeriod", "period", "onsetPeriod"):
        if isinstance(r.get(key), dict) and r[key].get("start"):
            return _date(r[key]["start"])
    return _date(r.get("performedDateTime"))


def _line(r: dict) -> str:
    kind = r["resourceType"]
    if kind == "Condition":
        parts = [_concept(r.get("code")), f"onset {_when(r) or 'unknown'}"]
        if r.get("abatementDateTime"):
            parts.append(f"abated {_date(r['abatementDateTime'])}")
        parts.append(f"status {_status(r, 'clinicalStatus') or 'unknown'}")
    elif kind == "MedicationRequest":
        med = _concept(r.get("medicationCodeableConcept")) or (r.get("medicationReference") or {}).get("display", "")
        parts = [med, f"prescribed {_when(r) or 'unknown'}", f"status {r.get('status', 'unknown')}"]
        reasons = [x.get("display", "") for x in r.get("reasonReference", [])] + [_concept(x) for x in r.get("reasonCode", [])]
        if any(reasons):
            parts.append("for " + ", ".join(x for x in reasons if x))
        dosage = [d.get("text", "") for d in r.get("dosageInstruction", []) if d.get("text")]
        if dosage:
            parts.append("dosage " + "; ".join(dosage))
    elif kind == "AllergyIntolerance":
        parts = [_concept(r.get("code")), f"recorded {_when(r) or 'unknown'}",
                 f"criticality {r.get('criticality', 'unknown')}", f"status {_status(r, 'clinicalStatus') or 'unknown'}"]
        reactions = [_concept(m) for x in r.get("reaction", []) for m in x.get("manifestation", [])]
        if any(reactions):
            parts.append("reaction " + ", ".join(x for x in reactions if x))
    elif kind == "Immunization":
        parts = [_concept(r.get("vaccineCode")), f"given {_when(r) or 'unknown'}"]
    elif kind == "Procedure":
        parts = [_concept(r.get("code")), f"performed {_when(r) or 'unknown'}"]
        reasons = [_concept(x) for x in r.get("reasonCode", [])] + [x.get("display", "") for x in r.get("reasonReference", [])]
        if any(reasons):
            parts.append("for " + ", ".join(x for x in reasons if x))
    else:
        return ""
    return "- " + "; ".join(p for p in parts if p)


def _note_text(r: dict, source: str) -> str:
    texts = []
    for content in r.get("content", []):
        att = content.get("attachment", {})
        if "data" in att:
            try:
                texts.append(base64.b64decode(att["data"], validate=False).decode("utf-8", errors="replace"))
            except (binascii.Error, ValueError):
                raise IngestError(source, f"DocumentReference {r.get('id', '?')} has an attachment that is not base64") from None
    return "\n".join(t.strip("\n") for t in texts)


def _patient_header(p: dict | None, patient_id: str) -> tuple[str, str]:
    if not p:
        return f"PATIENT {patient_id}", patient_id
    name = next(iter(p.get("name", [])), {})
    full = " ".join([*name.get("prefix", []), *name.get("given", []), name.get("family", "")]).strip() or patient_id
    bits = [f"PATIENT {full}", f"gender {p.get('gender', 'unknown')}", f"born {p.get('birthDate', 'unknown')}"]
    if p.get("deceasedDateTime"):
        bits.append(f"died {_date(p['deceasedDateTime'])}")
    return "; ".join(bits), full


def render_patient(patient_id: str, resources: list[dict]) -> tuple[str, str]:
    """A patient's resources → (document text, patient display name)."""
    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in resources:
        by_type[r["resourceType"]].append(r)
    header, name = _patient_header(next(iter(by_type.get("Patient", [])), None), patient_id)
    out = [header, ""]
    for block, kind in zip(SUMMARY_BLOCKS, ("Condition", "MedicationRequest", "AllergyIntolerance", "Immunization", "Procedure")):
        items = sorted(by_type.get(kind, []), key=lambda r: (_when(r), _line(r)))
        lines = [ln for ln in (_line(r) for r in items) if ln]
        out += [f"{block} ({len(lines)})", *(lines or ["- none recorded"]), ""]
    notes_by_enc: dict[str, list[dict]] = defaultdict(list)
    for doc in by_type.get("DocumentReference", []):
        enc = next((_ref_id(e) for e in (doc.get("context") or {}).get("encounter", [])), "")
        notes_by_enc[enc].append(doc)
    encounters = sorted(by_type.get("Encounter", []), key=lambda e: _when(e))
    known = {e.get("id") for e in encounters}
    for enc in encounters:
        title = _concept(next(iter(enc.get("type", [])), None)) or (enc.get("class") or {}).get("code", "encounter")
        reasons = ", ".join(x for x in (_concept(c) for c in enc.get("reasonCode", [])) if x)
        out.append(f"ENCOUNTER {_when(enc) or 'undated'} — {title}" + (f" (reason: {reasons})" if reasons else ""))
        for note in sorted(notes_by_enc.get(enc.get("id", ""), []), key=_when):
            out += [_note_text(note, patient_id), ""]
        out.append("")
    orphans = [n for enc_id, ns in notes_by_enc.items() if enc_id not in known for n in ns]
    for note in sorted(orphans, key=_when):
        out += [f"NOTE {_when(note) or 'undated'} — {_concept(note.get('type')) or 'clinical note'}", _note_text(note, patient_id), ""]
    return "\n".join(out).strip() + "\n", name


def documents_from_resources(resources: Iterable[dict], source: str, sha: str, stem: str) -> list[Document]:
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for r in resources:
        if not isinstance(r, dict) or "resourceType" not in r:
            raise IngestError(source, "holds JSON that is not a FHIR resource (no resourceType)")
        pid = _patient_of(r)
        if pid:
            by_patient[pid].append(r)
    if not by_patient:
        raise IngestError(source, "holds no patient-linked FHIR resources")
    docs = []
    for pid, items in sorted(by_patient.items()):
        text, name = render_patient(pid, items)
        doc_id = stem if len(by_patient) == 1 else f"patient-{pid}"
        docs.append(Document(id=doc_id, source=source, text=text, kind="ehr", title=name,
                             sha=content_hash(sha, pid), metadata=(("patient_id", pid),)))
    return docs


def _resources_from_json(data: object, source: str) -> list[dict]:
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        return [e["resource"] for e in data.get("entry", []) if isinstance(e, dict) and "resource" in e]
    if isinstance(data, dict) and "resourceType" in data:
        return [data]
    raise IngestError(source, "is JSON but not a FHIR Bundle or resource")


def parse_ndjson(raw: bytes, source: str) -> list[dict]:
    out = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise IngestError(source, f"line {n} is not valid JSON ({exc.msg})") from None
    return out


def read(path: Path) -> list[Document]:
    raw = path.read_bytes()
    try:
        if path.suffix.lower() == ".ndjson":
            resources = parse_ndjson(raw, str(path))
        else:
            resources = _resources_from_json(json.loads(raw), str(path))
    except UnicodeDecodeError:
        raise IngestError(str(path), "is not valid UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise IngestError(str(path), f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return documents_from_resources(resources, str(path), content_hash(raw), path.stem)
