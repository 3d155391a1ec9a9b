"""Evaluation datasets → typed items: CUAD, FinanceBench, ContractNLI and Synthea (questions from FHIR).

Each loader reads a folder laid out like ``../shared/data`` (the datasets' own file names) and returns
a ``Suite``: its items (one question each, with ground truth) and the files to ingest so that every
item's document is in the store. Gold evidence is given as character spans into the *source file's*
text; ``align_spans`` maps them onto the text as stored.

``--limit N`` takes a fixed, seeded sample spread across documents (``sample_items``): documents are
shuffled with the seed and visited round-robin, one item per visit, so N items come from up to N
different documents; within a document the item is drawn at random from the stratum (answerable vs
impossible for CUAD, the gold label for ContractNLI, the question kind for Synthea) that is furthest
below an equal share. A full run (no limit) takes every item in file order.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SEED = 20240601
QA_SUITES = ("cuad", "financebench", "contractnli", "synthea")
SUITES = (*QA_SUITES, "faithbench")


@dataclass(frozen=True, slots=True)
class Item:
    """One question with its ground truth.

    ``spans`` are gold evidence spans ``(start, end)`` into the source file's text (``source_text``
    of the suite); ``pages`` are 1-based gold evidence pages (FinanceBench); ``answers`` are gold
    answer strings (CUAD clauses, FinanceBench answer, Synthea names or a date).
    """

    id: str
    suite: str
    doc_id: str
    question: str
    answers: tuple[str, ...] = ()
    spans: tuple[tuple[int, int], ...] = ()
    pages: tuple[int, ...] = ()
    impossible: bool = False
    label: str = ""
    """CUAD category, FinanceBench question type, ContractNLI gold label, Synthea question kind."""
    stratum: str = ""
    """What ``sample_items`` balances within the sample."""


@dataclass
class Suite:
    name: str
    items: list[Item]
    sources: Callable[[Sequence[Item], Path], list[Path]]
    """``(items, staging folder) → paths to ingest`` so that every item's document gets stored."""
    source_text: Callable[[str], str]
    """The source file's text of a document (what gold spans index into)."""
    notes: list[str] = field(default_factory=list)
    bulk: bool = False
    """The documents come from one bulk export, staged per sample (a subset is a new source unit to the
    ingester): the harness then stages and ingests only the sampled documents the store lacks."""


# -- sampling ------------------------------------------------------------------------------------
def sample_items(items: Sequence[Item], limit: int | None, seed: int = SEED) -> list[Item]:
    """All items (``limit`` None) or a seeded sample spread across documents and balanced over strata."""
    if limit is None or limit >= len(items):
        return list(items)
    rng = random.Random(seed)
    by_doc: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_doc[it.doc_id].append(it)
    docs = sorted(by_doc)
    rng.shuffle(docs)
    for d in docs:
        rng.shuffle(by_doc[d])
    strata = sorted({it.stratum for it in items})
    taken: dict[str, int] = dict.fromkeys(strata, 0)
    out: list[Item] = []
    while len(out) < limit:
        progressed = False
        for d in docs:
            pool = by_doc[d]
            if not pool or len(out) >= limit:
                continue
            # the stratum furthest below an equal share that this document can supply
            have = {it.stratum for it in pool}
            want = min((s for s in strata if s in have), key=lambda s: (taken[s], strata.index(s)))
            pick = next(it for it in pool if it.stratum == want)
            pool.remove(pick)
            taken[want] += 1
            out.append(pick)
            progressed = True
        if not progressed:
            break
    return out


# -- span alignment ------------------------------------------------------------------------------
def align_spans(source: str, stored: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Gold spans into the source text → the same text's spans in the stored text (nearest occurrence).

    Readers keep text verbatim except line endings (CRLF → LF), so the span text is searched for near
    its original offset; a span that cannot be found is dropped.
    """
    out = []
    same = source == stored
    for s, e in spans:
        if same:
            out.append((s, e))
            continue
        needle = source[s:e].replace("\r\n", "\n").replace("\r", "\n")
        if not needle:
            continue
        hint = max(0, s - source.count("\r", 0, s))
        best = None
        for start in (stored.rfind(needle, 0, hint + len(needle)), stored.find(needle, hint)):
            if start >= 0 and (best is None or abs(start - hint) < abs(best - hint)):
                best = start
        if best is not None:
            out.append((best, best + len(needle)))
    return out


# -- CUAD ----------------------------------------------------------------------------------------
def load_cuad(data: Path) -> Suite:
    folder = data / "cuad"
    items = []
    with open(folder / "cuad_qa.jsonl") as fh:
        for line in fh:
            r = json.loads(line)
            spans = tuple((a["answer_start"], a["answer_start"] + len(a["text"])) for a in r["answers"])
            items.append(Item(id=r["id"], suite="cuad", doc_id=r["doc_id"], question=r["question"],
                              answers=tuple(a["text"] for a in r["answers"]), spans=spans,
                              impossible=bool(r["is_impossible"]), label=r["category"],
                              stratum="impossible" if r["is_impossible"] else "answerable"))

    def sources(chosen: Sequence[Item], staging: Path) -> list[Path]:
        return [folder / "contracts" / f"{d}.txt" for d in sorted({it.doc_id for it in chosen})]

    def source_text(doc_id: str) -> str:
        return (folder / "contracts" / f"{doc_id}.txt").read_bytes().decode("utf-8-sig", errors="replace")

    return Suite("cuad", items, sources, source_text,
                 notes=["questions are CUAD's own ('Highlight the parts (if any) of this contract related to ...'), "
                        "asked of the one contract they are about"])


# -- FinanceBench --------------------------------------------------------------------------------
def load_financebench(data: Path) -> Suite:
    folder = data / "financebench"
    items = []
    with open(folder / "questions.jsonl") as fh:
        for line in fh:
            r = json.loads(line)
            pages = sorted({int(e["evidence_page_num"]) + 1 for e in r["evidence"] if e.get("doc_name", r["doc_name"]) == r["doc_name"]})
            items.append(Item(id=r["financebench_id"], suite="financebench", doc_id=r["doc_name"], question=r["question"],
                              answers=(str(r["answer"]),), pages=tuple(pages),
                              label=(r.get("question_type") or "") + (" numerical" if "Numerical" in (
                                  r.get("question_reasoning") or "") else ""),
                              stratum=r.get("question_type") or ""))

    def sources(chosen: Sequence[Item], staging: Path) -> list[Path]:
        return [folder / "docs" / f"{d}.txt" for d in sorted({it.doc_id for it in chosen})]

    def source_text(doc_id: str) -> str:
        return (folder / "docs" / f"{doc_id}.txt").read_bytes().decode("utf-8-sig", errors="replace")

    return Suite("financebench", items, sources, source_text,
                 notes=["each question is asked of its own filing (doc filter); evidence is the gold page(s)"])


# -- ContractNLI ---------------------------------------------------------------------------------
LABELS = ("Entailment", "Contradiction", "NotMentioned")


def hypothesis_question(hypothesis: str) -> str:
    """'Receiving Party shall not ...' → 'Does the agreement state that receiving party shall not ...?'"""
    h = hypothesis.strip().rstrip(".")
    return f"Does the agreement state that {h[0].lower()}{h[1:]}?"


def load_contractnli(data: Path) -> Suite:
    path = data / "contractnli" / "dev.json"
    raw = json.loads(path.read_text())
    hyps = {k: v["hypothesis"] for k, v in raw["labels"].items()}
    texts: dict[str, str] = {}
    items = []
    for doc in raw["documents"]:
        doc_id = f"contractnli-{doc['id']}"
        texts[doc_id] = doc["text"]
        ann = doc["annotation_sets"][0]["annotations"]
        for key in sorted(ann, key=lambda k: int(k.split("-")[1])):
            a = ann[key]
            spans = tuple(tuple(doc["spans"][i]) for i in a["spans"])
            items.append(Item(id=f"{doc_id}__{key}", suite="contractnli", doc_id=doc_id,
                              question=hypothesis_question(hyps[key]), answers=(hyps[key],), spans=spans,
                              impossible=a["choice"] == "NotMentioned", label=a["choice"], stratum=a["choice"]))

    def sources(chosen: Sequence[Item], staging: Path) -> list[Path]:
        staging.mkdir(parents=True, exist_ok=True)
        out = []
        for d in sorted({it.doc_id for it in chosen}):
            p = staging / f"{d}.txt"
            if not p.exists() or p.read_text() != texts[d]:
                tmp = p.with_suffix(".tmp")
                tmp.write_text(texts[d])
                tmp.replace(p)
            out.append(p)
        return out

    return Suite("contractnli", items, sources, lambda d: texts[d],
                 notes=["each hypothesis is asked as 'Does the agreement state that <hypothesis>?' of its NDA; "
                        "abstained → NotMentioned, an answer whose negation differs from the hypothesis's → "
                        "Contradiction, otherwise Entailment"])


# -- Synthea -------------------------------------------------------------------------------------
def _ref_id(ref: dict | None) -> str:
    r = (ref or {}).get("reference", "")
    return r.split("/")[-1].removeprefix("urn:uuid:")


def _display(concept: dict | None) -> str:
    concept = concept or {}
    return concept.get("text") or next((c.get("display", "") for c in concept.get("coding", [])), "")


def _fhir_lines(folder: Path, kind: str) -> Iterable[dict]:
    for path in sorted(folder.glob(f"{kind}.*ndjson")):
        with open(path) as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def synthea_facts(fhir: Path) -> dict[str, dict]:
    """Per patient id: name and the ground-truth facts (first onset/start dates, medications, allergies)."""
    patients: dict[str, dict] = {}
    for r in _fhir_lines(fhir, "Patient"):
        n = (r.get("name") or [{}])[0]
        name = " ".join([*n.get("given", []), n.get("family", "")]).strip()
        patients[r["id"]] = {"name": name, "conditions": {}, "medications": {}, "allergies": set(), "procedures": {}}

    def first(table: dict, key: str, date: str) -> None:
        if key and date and (key not in table or date < table[key]):
            table[key] = date

    for r in _fhir_lines(fhir, "Condition"):
        p = patients.get(_ref_id(r.get("subject")))
        name = _display(r.get("code"))
        if p is not None and name.endswith("(disorder)"):
            first(p["conditions"], name, (r.get("onsetDateTime") or "")[:10])
    for r in _fhir_lines(fhir, "MedicationRequest"):
        p = patients.get(_ref_id(r.get("subject")))
        if p is not None:
            first(p["medications"], _display(r.get("medicationCodeableConcept")), (r.get("authoredOn") or "")[:10])
    for r in _fhir_lines(fhir, "AllergyIntolerance"):
        p = patients.get(_ref_id(r.get("patient")))
        if p is not None and _display(r.get("code")):
            p["allergies"].add(_display(r.get("code")))
    for r in _fhir_lines(fhir, "Procedure"):
        p = patients.get(_ref_id(r.get("subject")))
        date = (r.get("performedPeriod", {}).get("start") or r.get("performedDateTime") or "")[:10]
        if p is not None:
            first(p["procedures"], _display(r.get("code")), date)
    return patients


def load_synthea(data: Path) -> Suite:
    fhir = data / "synthea" / "fhir"
    patients = synthea_facts(fhir)
    items = []
    for pid in sorted(patients):
        p = patients[pid]
        doc_id, who = f"patient-{pid}", p["name"]

        def add(kind: str, key: str, question: str, answers: Iterable[str], doc_id: str = doc_id) -> None:
            items.append(Item(id=f"{doc_id}__{kind}__{key}", suite="synthea", doc_id=doc_id, question=question,
                              answers=tuple(answers), label=kind, stratum=kind))

        if p["medications"]:
            add("medications", "all", f"Which medications have been prescribed to {who}?", sorted(p["medications"]))
        if p["allergies"]:
            add("allergies", "all", f"Which allergies does {who} have?", sorted(p["allergies"]))
        for cond, date in sorted(p["conditions"].items()):
            add("condition_onset", cond, f"When was the onset of {cond.removesuffix(' (disorder)')} for {who}?", [date])
        for med, date in sorted(p["medications"].items()):
            add("medication_start", med, f"When was {who} first prescribed {med}?", [date])
        for proc, date in sorted(p["procedures"].items()):
            add("procedure_date", proc, f"When did {who} first have the procedure {proc.removesuffix(' (procedure)')}?",
                [date])

    def sources(chosen: Sequence[Item], staging: Path) -> list[Path]:
        wanted = {it.doc_id.removeprefix("patient-") for it in chosen}
        if wanted == set(patients):
            return [fhir]
        # a bulk export is read as one unit: stage one holding only the sampled patients' resources
        folder = staging / ("fhir-" + "-".join(sorted(w[:8] for w in wanted)))
        if not folder.exists():
            tmp = folder.with_name(folder.name + ".tmp")
            tmp.mkdir(parents=True, exist_ok=True)
            for path in sorted(fhir.glob("*.ndjson")):
                with open(path) as src:
                    lines = [line for line in src if any(w in line for w in wanted)]
                if lines:  # the reader refuses empty files
                    (tmp / path.name).write_text("".join(lines))
            tmp.rename(folder)
        return [folder]

    return Suite("synthea", items, sources, lambda d: "", bulk=True,
                 notes=["questions are generated from each patient's FHIR resources (first onset of each disorder, "
                        "first prescription of each medication, first date of each procedure, the medication and "
                        "allergy lists) and asked of that patient's record (the rendered summary, encounters and "
                        "notes); a date answer matches when the gold date appears in it, a list answer scores the "
                        "share of gold names it mentions"])


LOADERS = {"cuad": load_cuad, "financebench": load_financebench, "contractnli": load_contractnli,
           "synthea": load_synthea}


def load_suite(name: str, data: Path) -> Suite:
    if name not in LOADERS:
        raise ValueError(f"unknown suite {name!r}; use one of {', '.join(SUITES)} or all")
    try:
        return LOADERS[name](Path(data))
    except FileNotFoundError as exc:
        raise ValueError(f"the {name} data is not where it should be under {data}: {exc.filename} is missing") from None

