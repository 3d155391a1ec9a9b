"""FHIR R4 (bulk-export NDJSON folder, an NDJSON file, a Bundle or a single resource) → one document per patient.

A patient's document is rendered text, laid out so that ``ingest.sectionizers.ehr`` finds its structure:

    PATIENT SUMMARY — <name>, record <first date> to <last date>
    <demographics>
    CONDITIONS — 21 records, onset 1960-01-19 to 2001-02-03
    - Sepsis (disorder): onset 1976-01-19, abated 1976-02-02, resolved
    MEDICATIONS — 40 prescriptions of 12 medications, 1989-05-27 to 2020-01-01
    - lisinopril 10 MG Oral Tablet: 12 prescriptions 1989-05-27 to 2020-01-01, latest stopped; for …; dates 1989-05-27, …
    ALLERGIES — … / IMMUNIZATIONS — … / PROCEDURES — … / DEVICES — … (only when the patient has devices)

    ENCOUNTER 1987-11-19 — Encounter for problem (procedure)
    <period, class, reason, place, clinician; the conditions, prescriptions, procedures, immunizations
     and allergies recorded at this encounter>
    NOTE 1987-11-19 — History and physical note; Evaluation + Plan note
    <the DocumentReference attachment, base64-decoded, verbatim>

Encounters follow in date order; a note whose encounter is not in the export becomes an
``UNLINKED NOTE <date> — <type>`` block at its date. Dates are the resources' own local dates
(``YYYY-MM-DD``). Resources the document does not render (Observation, DiagnosticReport — whose
Synthea ``presentedForm`` repeats the DocumentReference notes —, Practitioner, Organization, …) are
skipped; ``Medication`` resources are used to name ``medicationReference`` prescriptions.

Document ids: a bulk-export folder gives ``patient-<Patient.id>`` per patient; a single file gives
its stem when it holds one patient, ``patient-<Patient.id>`` per patient otherwise. Each document has
kind ``"ehr"``, the patient's name as title, and ``patient_id``, ``encounters``, ``notes``,
``first_date``, ``last_date`` in its metadata. ``sha`` hashes the rendered text, so re-reading an
unchanged patient gives the same document.

Reading streams NDJSON line by line and keeps only compact records per patient (the decoded notes
and one-line facts), never the raw JSON of the whole export.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import IngestError
from ingest.readers.text import replaced_warning
from pipeline.types import Document, content_hash

# kind → the summary block it is listed in (in this order)
SUMMARY_BLOCKS: dict[str, str] = {
    "Condition": "CONDITIONS",
    "MedicationRequest": "MEDICATIONS",
    "AllergyIntolerance": "ALLERGIES",
    "Immunization": "IMMUNIZATIONS",
    "Procedure": "PROCEDURES",
    "Device": "DEVICES",
}
# the encounter line that lists the facts of each kind recorded at that encounter
_AT_ENCOUNTER = {
    "Condition": "Conditions recorded",
    "MedicationRequest": "Prescribed",
    "Procedure": "Procedures",
    "Immunization": "Immunizations",
    "AllergyIntolerance": "Allergies recorded",
}
_ENCOUNTER_CLASS = {
    "AMB": "ambulatory", "EMER": "emergency", "IMP": "inpatient", "ACUTE": "inpatient acute",
    "NONAC": "inpatient non-acute", "OBSENC": "observation", "PRENC": "pre-admission", "SS": "short stay",
    "VR": "virtual", "HH": "home health", "FLD": "field",
}
_BULK_LOG = "log.ndjson"  # a bulk-data client's export log, not FHIR resources
_WS = re.compile(r"\s+")
# NUL and the other C0 controls but tab, line feed, vertical tab, form feed and carriage return; DEL
_STRAY_CONTROLS = {c: " " for c in [*range(32), 127] if chr(c) not in "\t\n\v\f\r"}


# ---------------------------------------------------------------- small, defensive accessors

def _date(value: object) -> str:
    """The local calendar date of a FHIR date/dateTime (``1987-11-19T00:22:16-05:00`` → ``1987-11-19``)."""
    return value[:10] if isinstance(value, str) and re.match(r"\d{4}(-\d\d){0,2}", value) else ""


def _one_line(s: str) -> str:
    return _WS.sub(" ", s).strip()


def _concept(c: object) -> str:
    """The human name of a CodeableConcept (its text, else the first coding's display, else its code)."""
    if not isinstance(c, dict):
        return ""
    if isinstance(c.get("text"), str) and c["text"].strip():
        return _one_line(c["text"])
    codings = [x for x in c.get("coding") or [] if isinstance(x, dict)]
    for coding in codings:
        if isinstance(coding.get("display"), str) and coding["display"].strip():
            return _one_line(coding["display"])
    return next((str(x["code"]) for x in codings if x.get("code")), "")


def _concepts(values: object) -> list[str]:
    return [n for n in map(_concept, values) if n] if isinstance(values, list) else []


def _status(r: dict, key: str) -> str:
    v = r.get(key)
    return _concept(v) if isinstance(v, dict) else (v if isinstance(v, str) else "")


def _ref_id(ref: object, kind: str = "") -> str:
    """The id a Reference points at: ``Patient/x``, ``https://…/Patient/x/_history/2``, ``urn:uuid:x`` → ``x``.

    Conditional references (``Patient?identifier=…``) cannot be resolved and give ``""``.
    """
    s = ref.get("reference", "") if isinstance(ref, dict) else ""
    if not isinstance(s, str) or not s or "?" in s:
        return ""
    if s.startswith(("urn:uuid:", "urn:oid:")):
        return s.split(":", 2)[2]
    parts = s.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and (not kind or parts[-2] == kind):
        return parts[-1]
    return ""


def _displays(refs: object) -> list[str]:
    return [_one_line(x["display"]) for x in refs if isinstance(x, dict) and isinstance(x.get("display"), str)] \
        if isinstance(refs, list) else []


def _first(values: object) -> dict:
    return values[0] if isinstance(values, list) and values and isinstance(values[0], dict) else {}


def _period(r: dict, *keys: str) -> tuple[str, str]:
    for key in keys:
        v = r.get(key)
        if isinstance(v, dict) and (v.get("start") or v.get("end")):
            return _date(v.get("start")), _date(v.get("end"))
        if isinstance(v, str) and _date(v):
            return _date(v), ""
    return "", ""


def _join(parts: Iterable[str]) -> str:
    return ", ".join(p for p in parts if p)


# ---------------------------------------------------------------- compact records

@dataclass(frozen=True, slots=True)
class _Fact:
    """One clinical fact (a condition, a prescription, …) reduced to what the document shows."""

    kind: str
    id: str
    encounter: str
    date: str
    name: str
    detail: str  # the rest of its summary line, without the name
    status: str = ""
    reasons: str = ""
    med_ref: str = ""  # a MedicationRequest's medicationReference, named at render time


@dataclass(frozen=True, slots=True)
class _Encounter:
    id: str
    start: str
    end: str
    title: str
    detail: str


@dataclass(frozen=True, slots=True)
class _Note:
    id: str
    encounter: str
    date: str
    title: str
    text: str


@dataclass
class _PatientRecord:
    id: str
    header: str = ""
    name: str = ""
    facts: list[_Fact] = field(default_factory=list)
    encounters: dict[str, _Encounter] = field(default_factory=dict)
    notes: list[_Note] = field(default_factory=list)


def _patient_of(r: dict) -> str:
    if r.get("resourceType") == "Patient":
        return str(r.get("id") or "")
    for key in ("subject", "patient"):
        if pid := _ref_id(r.get(key), "Patient"):
            return pid
    return ""


def _fact(r: dict) -> _Fact | None:
    kind = r["resourceType"]
    rid, enc = str(r.get("id") or ""), _ref_id(r.get("encounter"), "Encounter")
    if kind == "Condition":
        onset, _ = _period(r, "onsetDateTime", "onsetPeriod", "recordedDate")
        abated, _ = _period(r, "abatementDateTime", "abatementPeriod")
        if not abated and isinstance(r.get("abatementPeriod"), dict):
            abated = _date(r["abatementPeriod"].get("end"))
        status = _status(r, "clinicalStatus")
        detail = _join([f"onset {onset or 'unknown'}", f"abated {abated}" if abated else "", status,
                        _status(r, "verificationStatus") if _status(r, "verificationStatus") not in ("", "confirmed") else ""])
        return _Fact(kind, rid, enc, onset, _concept(r.get("code")) or "unnamed condition", detail, status)
    if kind == "MedicationRequest":
        name = _concept(r.get("medicationCodeableConcept")) or next(iter(_displays([r.get("medicationReference")])), "")
        authored, _ = _period(r, "authoredOn")
        reasons = _join([*_concepts(r.get("reasonCode")), *_displays(r.get("reasonReference"))])
        dosage = "; ".join(_dosage(d) for d in r.get("dosageInstruction") or [] if isinstance(d, dict) and _dosage(d))
        status = r.get("status") if isinstance(r.get("status"), str) else ""
        detail = _join([f"prescribed {authored or 'unknown'}", status, f"for {reasons}" if reasons else "",
                        f"dosage {dosage}" if dosage else ""])
        return _Fact(kind, rid, enc, authored, name, detail, status, reasons,
                     med_ref="" if name else _ref_id(r.get("medicationReference"), "Medication"))
    if kind == "AllergyIntolerance":
        recorded, _ = _period(r, "onsetDateTime", "onsetPeriod", "recordedDate")
        cats = r.get("category") if isinstance(r.get("category"), list) else []
        reactions = _join(m for x in r.get("reaction") or [] if isinstance(x, dict) for m in _concepts(x.get("manifestation")))
        detail = _join([f"recorded {recorded or 'unknown'}", " ".join(str(c) for c in cats),
                        f"criticality {r['criticality']}" if r.get("criticality") else "", _status(r, "clinicalStatus"),
                        f"reaction {reactions}" if reactions else ""])
        return _Fact(kind, rid, enc, recorded, _concept(r.get("code")) or "unnamed allergy", detail)
    if kind == "Immunization":
        given, _ = _period(r, "occurrenceDateTime", "occurrenceString", "recorded")
        status = r.get("status") if isinstance(r.get("status"), str) else ""
        return _Fact(kind, rid, enc, given, _concept(r.get("vaccineCode")) or "unnamed vaccine",
                     _join([f"given {given or 'unknown'}", status if status != "completed" else ""]), status)
    if kind == "Procedure":
        performed, _ = _period(r, "performedDateTime", "performedPeriod")
        reasons = _join([*_concepts(r.get("reasonCode")), *_displays(r.get("reasonReference"))])
        status = r.get("status") if isinstance(r.get("status"), str) else ""
        return _Fact(kind, rid, enc, performed, _concept(r.get("code")) or "unnamed procedure",
                     _join([f"performed {performed or 'unknown'}", status if status != "completed" else "",
                            f"for {reasons}" if reasons else ""]), status, reasons)
    if kind == "Device":
        names = [_one_line(n["name"]) for n in r.get("deviceName") or [] if isinstance(n, dict) and isinstance(n.get("name"), str)]
        name = _concept(r.get("type")) or (names[0] if names else "unnamed device")
        status = r.get("status") if isinstance(r.get("status"), str) else ""
        return _Fact(kind, rid, enc, "", name, _join([status, f"UDI {_first(r.get('udiCarrier')).get('deviceIdentifier')}"
                                                              if _first(r.get("udiCarrier")).get("deviceIdentifier") else ""]), status)
    return None


def _dosage(d: dict) -> str:
    if isinstance(d.get("text"), str) and d["text"].strip():
        return _one_line(d["text"])
    bits = []
    dose = _first(d.get("doseAndRate")).get("doseQuantity")
    if isinstance(dose, dict) and dose.get("value") is not None:
        bits.append(f"{dose['value']:g} {dose.get('unit', '')}".strip() if isinstance(dose["value"], (int, float))
                    else str(dose["value"]))
    rep = (d.get("timing") or {}).get("repeat") if isinstance(d.get("timing"), dict) else None
    if isinstance(rep, dict) and rep.get("frequency") and rep.get("period") and rep.get("periodUnit"):
        bits.append(f"{rep['frequency']} times per {rep['period']:g} {rep['periodUnit']}"
                    if isinstance(rep["period"], (int, float)) else "")
    if d.get("asNeededBoolean") is True:
        bits.append("as needed")
    return " ".join(b for b in bits if b)


def _encounter(r: dict) -> _Encounter:
    start, end = _period(r, "period")
    cls = r.get("class") if isinstance(r.get("class"), dict) else {}
    code = cls.get("code", "") if isinstance(cls.get("code"), str) else ""
    title = _concept(_first(r.get("type"))) or _ENCOUNTER_CLASS.get(code, code) or "encounter"
    reasons = _join([*_concepts(r.get("reasonCode")), *_displays(r.get("reasonReference"))])
    place = _displays([x.get("location") for x in r.get("location") or [] if isinstance(x, dict)])
    people = _displays([x.get("individual") for x in r.get("participant") or [] if isinstance(x, dict)])
    provider = _displays([r.get("serviceProvider")])
    detail = _join([
        f"{start} to {end}" if end and end != start else start,
        f"{_ENCOUNTER_CLASS.get(code, code)} ({code})" if code else "",
        f"reason: {reasons}" if reasons else "",
        f"at {_join(place or provider)}" if place or provider else "",
        f"with {_join(people)}" if people else "",
        f"status {r['status']}" if isinstance(r.get("status"), str) and r["status"] != "finished" else "",
    ])
    return _Encounter(str(r.get("id") or ""), start, end, title, detail)


def _note(r: dict, source: str) -> _Note:
    """A DocumentReference with its first text attachment decoded; a broken attachment is an error."""
    rid = str(r.get("id") or "?")
    ctx = r.get("context") if isinstance(r.get("context"), dict) else {}
    enc = next((e for e in (_ref_id(x, "Encounter") for x in ctx.get("encounter") or []) if e), "")
    date = _date(r.get("date")) or _period(ctx, "period")[0]
    type_names = [d for d in (_one_line(c.get("display", "")) for c in (r.get("type") or {}).get("coding") or []
                              if isinstance(c, dict)) if d] if isinstance(r.get("type"), dict) else []
    title = "; ".join(dict.fromkeys(type_names)) or _concept(r.get("type")) or "clinical note"
    if authors := _displays(r.get("author")):
        title += f" — {_join(authors)}"
    attachments = [c["attachment"] for c in r.get("content") or [] if isinstance(c, dict) and isinstance(c.get("attachment"), dict)]
    texts = [a for a in attachments if str(a.get("contentType", "text/plain")).startswith("text/") and "data" in a]
    if not texts:
        kinds = _join(str(a.get("contentType", "unknown type")) + (f" at {a['url']}" if a.get("url") else "") for a in attachments)
        return _Note(rid, enc, date, title, f"[no text attachment in this DocumentReference: {kinds or 'no content'}]")
    att = next((a for a in texts if str(a.get("contentType", "text/plain")).startswith("text/plain")), texts[0])
    data = att["data"]
    if not isinstance(data, str):
        raise IngestError(source, f"DocumentReference {rid} has attachment data that is not a base64 string")
    try:
        raw = base64.b64decode(_WS.sub("", data), validate=True)
    except (binascii.Error, ValueError):
        raise IngestError(source, f"DocumentReference {rid} has an attachment that is not valid base64") from None
    m = re.search(r"charset=([\w-]+)", str(att.get("contentType", "")))
    charset = m.group(1) if m else "utf-8"
    try:
        text = raw.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise IngestError(source, f"DocumentReference {rid} has an attachment that is not valid {charset} text") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return _Note(rid, enc, date, title, text or "[empty note]")


def _header(r: dict) -> tuple[str, str]:
    """Patient resource → (demographics line, display name)."""
    pid = str(r.get("id") or "")
    name = next((n for n in r.get("name") or [] if isinstance(n, dict) and n.get("use") in ("official", "usual", None)),
                _first(r.get("name")))
    full = _one_line(name.get("text") or " ".join(
        str(x) for x in [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family", "")] if x)) or pid
    addr = _first(r.get("address"))
    place = _join(str(addr[k]) for k in ("city", "state", "country") if addr.get(k))
    lang = _concept(_first(r.get("communication")).get("language"))
    bits = [f"patient id {pid}", str(r.get("gender") or "gender unknown"), f"born {_date(r.get('birthDate')) or 'unknown'}",
            f"died {_date(r['deceasedDateTime'])}" if _date(r.get("deceasedDateTime")) else "",
            f"marital status {_concept(r.get('maritalStatus'))}" if _concept(r.get("maritalStatus")) else "",
            f"lives in {place}" if place else "", f"language {lang}" if lang else ""]
    return "; ".join(b for b in bits if b), full


# ---------------------------------------------------------------- collecting resources by patient

class _Collector:
    """Takes resources one at a time and keeps compact per-patient records."""

    def __init__(self) -> None:
        self.patients: dict[str, _PatientRecord] = {}
        self.medications: dict[str, str] = {}  # Medication.id → name, for medicationReference
        self.aliases: dict[str, str] = {}  # a Bundle entry's fullUrl id → the resource's id

    def add(self, r: object, source: str, where: str) -> None:
        if not isinstance(r, dict) or not isinstance(r.get("resourceType"), str):
            raise IngestError(source, f"{where} is not a FHIR resource (no resourceType)")
        kind = r["resourceType"]
        try:
            if kind == "Medication":
                self.medications[str(r.get("id") or "")] = _concept(r.get("code"))
                return
            pid = _patient_of(r)
            if not pid or kind not in (*SUMMARY_BLOCKS, "Patient", "Encounter", "DocumentReference"):
                return
            rec = self.patients.setdefault(pid, _PatientRecord(pid))
            if kind == "Patient":
                rec.header, rec.name = _header(r)
            elif kind == "Encounter":
                enc = _encounter(r)
                rec.encounters[enc.id] = enc
            elif kind == "DocumentReference":
                rec.notes.append(_note(r, source))
            elif fact := _fact(r):
                rec.facts.append(fact)
        except IngestError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise IngestError(source, f"{where}: {kind} {r.get('id', '?')} is malformed ({type(exc).__name__}: {exc})") from None

    def documents(self, source: str, single_stem: str | None) -> list[Document]:
        """One document per patient; ``single_stem`` names the document of a file holding one patient."""
        if not self.patients:
            raise IngestError(source, "holds no patient-linked FHIR resources")
        for pid in [p for p in self.patients if p in self.aliases and self.aliases[p] != p]:
            self._merge_alias(pid, self.aliases[pid])
        docs = []
        for pid in sorted(self.patients):
            rec = self.patients[pid]
            rendered, first, last = render_patient(rec, self.medications, self.aliases)
            # stray control characters (a NUL in a note or a name) become spaces, as in plain text: a NUL would
            # also cut SQLite's substr() short, so a stored section would no longer be the document's text
            text = rendered.translate(_STRAY_CONTROLS)
            replaced = sum(a != b for a, b in zip(rendered, text, strict=True)) if text != rendered else 0
            doc_id = single_stem if single_stem and len(self.patients) == 1 else f"patient-{pid}"
            docs.append(Document(id=doc_id, source=source, text=text, kind="ehr", title=rec.name or pid,
                                 sha=content_hash(text), warnings=(replaced_warning(replaced),) if replaced else (),
                                 metadata=(("patient_id", pid), ("encounters", str(len(rec.encounters))),
                                           ("notes", str(len(rec.notes))), ("first_date", first), ("last_date", last))))
        return docs

    def _merge_alias(self, alias: str, pid: str) -> None:
        rec = self.patients.pop(alias)
        target = self.patients.setdefault(pid, _PatientRecord(pid))
        target.header, target.name = target.header or rec.header, target.name or rec.name
        target.facts += rec.facts
        target.encounters.update(rec.encounters)
        target.notes += rec.notes


# ---------------------------------------------------------------- rendering

def _range(dates: Iterable[str]) -> str:
    ds = sorted(d for d in dates if d)
    return "" if not ds else ds[0] if ds[0] == ds[-1] else f"{ds[0]} to {ds[-1]}"


def _grouped_lines(facts: list[_Fact], noun: str) -> list[str]:
    """Facts of one kind grouped by name: one line per name with every date (prescriptions, procedures, …)."""
    groups: dict[str, list[_Fact]] = defaultdict(list)
    for f in facts:
        groups[f.name].append(f)
    lines = []
    for name, fs in sorted(groups.items(), key=lambda kv: (min(f.date or "9999" for f in kv[1]), kv[0])):
        if len(fs) == 1:
            lines.append(f"- {name}: {fs[0].detail}")
            continue
        fs.sort(key=lambda f: (f.date or "9999", f.id))
        reasons = list(dict.fromkeys(f.reasons for f in fs if f.reasons))
        dosage = fs[-1].detail.split("dosage ", 1)[1] if "dosage " in fs[-1].detail else ""
        shown = (f.date + (f" ({f.status})" if noun != "prescription" and f.status not in ("", "completed") else "")
                 for f in fs if f.date)
        lines.append(f"- {name}: " + _join([
            f"{len(fs)} {noun}s" + (f" {_range(f.date for f in fs)}" if any(f.date for f in fs) else ""),
            f"latest {fs[-1].status}" if noun == "prescription" and fs[-1].status else "",
            f"for {'; '.join(reasons)}" if reasons else "",
            f"dosage {dosage}" if dosage else "",
        ]) + f"; dates {', '.join(shown)}")
    return lines


def _summary_block(kind: str, facts: list[_Fact]) -> list[str]:
    label = SUMMARY_BLOCKS[kind]
    if not facts:
        return [f"{label} — none recorded"]
    span = _range(f.date for f in facts)
    if kind == "Condition":
        head = f"{len(facts)} record{'s' if len(facts) > 1 else ''}" + (f", onset {span}" if span else "")
        lines = [f"- {f.name}: {f.detail}" for f in sorted(facts, key=lambda f: (f.date or "9999", f.name, f.id))]
    elif kind == "MedicationRequest":
        n_meds = len({f.name for f in facts})
        head = f"{len(facts)} prescription{'s' if len(facts) > 1 else ''} of {n_meds} medication{'s' if n_meds > 1 else ''}" \
               + (f", {span}" if span else "")
        lines = _grouped_lines(facts, "prescription")
    elif kind in ("Procedure", "Immunization"):
        noun = "procedure" if kind == "Procedure" else "dose"
        kinds = len({f.name for f in facts})
        head = f"{len(facts)} {noun}{'s' if len(facts) > 1 else ''} of {kinds} kind{'s' if kinds > 1 else ''}" \
               + (f", {span}" if span else "")
        lines = _grouped_lines(facts, "time")
    else:  # allergies, devices: few, one line each
        head = f"{len(facts)} record{'s' if len(facts) > 1 else ''}" + (f", {span}" if span else "")
        lines = [f"- {f.name}: {f.detail}" if f.detail else f"- {f.name}"
                 for f in sorted(facts, key=lambda f: (f.date or "9999", f.name, f.id))]
    return [f"{label} — {head}", *lines]


def render_patient(rec: _PatientRecord, medications: dict[str, str] | None = None,
                   aliases: dict[str, str] | None = None) -> tuple[str, str, str]:
    """A patient's records → (document text, first date, last date)."""
    medications, aliases = medications or {}, aliases or {}
    facts = [f if f.name or not f.med_ref else _with_name(f, medications.get(f.med_ref, "")) for f in rec.facts]
    facts = [f if f.name else _with_name(f, "unnamed medication") for f in facts]
    by_kind: dict[str, list[_Fact]] = defaultdict(list)
    for f in facts:
        by_kind[f.kind].append(f)
    encounters = {aliases.get(k, k): e for k, e in rec.encounters.items()}
    dates = [d for d in [*(f.date for f in facts), *(e.start for e in encounters.values()), *(n.date for n in rec.notes)] if d]
    first, last = (min(dates), max(dates)) if dates else ("", "")
    name = rec.name or rec.id
    out = [f"PATIENT SUMMARY — {name}" + (f", record {_range(dates)}" if dates else ""),
           rec.header or f"patient id {rec.id} (no Patient resource in the export)",
           f"{len(encounters)} encounters, {len(rec.notes)} clinical notes", ""]
    for kind in SUMMARY_BLOCKS:
        if kind == "Device" and not by_kind.get(kind):
            continue
        out += [*_summary_block(kind, by_kind.get(kind, [])), ""]

    at_encounter: dict[str, list[_Fact]] = defaultdict(list)
    for f in facts:
        if f.encounter:
            at_encounter[aliases.get(f.encounter, f.encounter)].append(f)
    notes_at: dict[str, list[_Note]] = defaultdict(list)
    timeline: list[tuple[str, str, list[str]]] = []  # (date, tie-break id, lines)
    for n in rec.notes:
        enc = aliases.get(n.encounter, n.encounter)
        if enc in encounters:
            notes_at[enc].append(n)
        else:
            timeline.append((n.date, n.id, [f"UNLINKED NOTE {n.date or 'undated'} — {n.title}", n.text, ""]))
    for enc_id, e in encounters.items():
        lines = [f"ENCOUNTER {e.start or 'undated'} — {e.title}", e.detail or "no details recorded"]
        here = at_encounter.get(enc_id, [])
        for kind, label in _AT_ENCOUNTER.items():
            items = [f for f in here if f.kind == kind]
            if items:
                lines.append(f"{label}: " + "; ".join(
                    f"{f.name} ({f.detail})" for f in sorted(items, key=lambda f: (f.date or "9999", f.name, f.id))))
        for n in sorted(notes_at.get(enc_id, []), key=lambda n: (n.date or "9999", n.id)):
            lines += ["", f"NOTE {n.date or e.start or 'undated'} — {n.title}", n.text]
        timeline.append((e.start, e.id, [*lines, ""]))
    for _, _, lines in sorted(timeline, key=lambda t: (not t[0], t[0], t[1])):
        out += lines
    return "\n".join(out).strip() + "\n", first, last


def _with_name(f: _Fact, name: str) -> _Fact:
    return _Fact(f.kind, f.id, f.encounter, f.date, name, f.detail, f.status, f.reasons, f.med_ref)


# ---------------------------------------------------------------- files

def _decode_line(raw: bytes, source: str, n: int) -> str:
    if b"\x00" in raw:
        raise IngestError(source, f"line {n} holds NUL bytes: the file is binary or UTF-16, not UTF-8 NDJSON")
    try:
        return raw.decode("utf-8-sig" if n == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(source, f"line {n} is not valid UTF-8 (bad byte at column {exc.start + 1})") from None


def _ndjson_resources(path: Path, max_bytes: int) -> Iterator[tuple[object, str]]:
    """Streams ``(resource, "line n")`` from an NDJSON file, line by line."""
    source = str(path)
    size = path.stat().st_size
    if size == 0:
        raise IngestError(source, "file is empty")
    if size > max_bytes:
        raise IngestError(source, f"file is {size / 2**20:.0f} MB, over the {max_bytes / 2**20:.0f} MB limit")
    seen = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            line = _decode_line(raw, source, n)
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as exc:
                raise IngestError(source, f"line {n} is not valid JSON ({exc.msg} at column {exc.colno})") from None
            except RecursionError:
                raise IngestError(source, f"line {n} is JSON nested too deeply to read") from None
            seen += 1
            yield resource, f"line {n}"
    if not seen:
        raise IngestError(source, "holds no FHIR resources (only blank lines)")


def read_bulk(folder: Path, max_bytes: int = 200 * 1024 * 1024) -> list[Document]:
    """A FHIR bulk-export folder (``<Type>.000.ndjson`` files) → one document per patient.

    A patient's resources are spread over the per-type files; they are grouped by patient across all
    of them. Every ``*.ndjson`` file but the export log must be valid FHIR NDJSON within ``max_bytes``:
    a bad one fails the export with its name, since a record missing a whole resource type would read
    as a patient without, say, medications.

    >>> docs = read_bulk(Path("../shared/data/synthea/fhir"))  # doctest: +SKIP
    >>> docs[0].id, docs[0].kind
    ('patient-129c6ac7-8d06-89de-ad63-0204a93e76c3', 'ehr')
    """
    files = sorted(p for p in folder.glob("*.ndjson") if p.name != _BULK_LOG and p.is_file())
    if not files:
        raise IngestError(str(folder), "holds no FHIR NDJSON files")
    collector = _Collector()
    for path in files:
        for resource, where in _ndjson_resources(path, max_bytes):
            collector.add(resource, str(path), where)
    return collector.documents(str(folder), single_stem=None)


def read(path: Path, max_bytes: int = 200 * 1024 * 1024) -> list[Document]:
    """One FHIR file (a Bundle, a single resource, or NDJSON) → one document per patient in it."""
    source = str(path)
    collector = _Collector()
    if path.suffix.lower() == ".ndjson":
        for resource, where in _ndjson_resources(path, max_bytes):
            collector.add(resource, source, where)
        return collector.documents(source, single_stem=path.stem)
    raw = path.read_bytes()
    if not raw.strip():
        raise IngestError(source, "file is empty")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw[:8192]:
        raise IngestError(source, "is binary or UTF-16, not UTF-8 JSON")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise IngestError(source, f"is not valid UTF-8 (bad byte at offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise IngestError(source, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    for resource, where in _json_resources(data, source, collector):
        collector.add(resource, source, where)
    return collector.documents(source, single_stem=path.stem)


def _json_resources(data: object, source: str, collector: _Collector) -> Iterator[tuple[object, str]]:
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        entries = data.get("entry") or []
        if not isinstance(entries, list):
            raise IngestError(source, "is a FHIR Bundle whose entry is not a list")
        for i, e in enumerate(entries):
            if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                rid, full = e["resource"].get("id"), e.get("fullUrl")
                alias = _ref_id({"reference": full}) if isinstance(full, str) else ""
                if rid and alias and alias != rid:
                    collector.aliases[alias] = str(rid)
                yield e["resource"], f"entry {i}"
        return
    if isinstance(data, dict) and isinstance(data.get("resourceType"), str):
        yield data, "the resource"
        return
    raise IngestError(source, "is JSON but not a FHIR Bundle or resource (no resourceType)")
