"""Hostile and broken inputs, each a real file made here: every one ends as one line in the job's ``failed`` (or is
read whole), within the per-file time and memory limits, and the files beside it are stored."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import CLI, ROOT, SAMPLES, SHARED_DATA

from ingest.job import run_local
from pipeline import Pipeline
from pipeline.config import IngestConfig, PipelineConfig

CONTRACT = SAMPLES / "contracts" / "BNLFINANCIALCORP-outsourcing-agreement.txt"
FILING_PDF = SAMPLES / "filings" / "ULTABEAUTY_2023Q4_EARNINGS.pdf"
PATIENTS = SHARED_DATA / "synthea" / "fhir" / "Patient.000.ndjson"
WORDS = "licensee licensor territory royalty warranty indemnity term notice assignment audit payment delivery".split()


def long_pdf(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` pages, six distinct lines of text on each."""
    from pypdf import PageObject, PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    w = PdfWriter()
    font = w._add_object(DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"):
                                           NameObject("/Type1"), NameObject("/BaseFont"): NameObject("/Helvetica")}))
    for i in range(pages):
        page = PageObject.create_blank_page(width=612, height=792)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        lines = [f"{i + 1}.{k} The {WORDS[(i + k) % 12]} clause binds the {WORDS[(i * 7 + k) % 12]} for {i + k} days."
                 for k in range(6)]
        stream = DecodedStreamObject()
        stream.set_data("".join(f"BT /F1 11 Tf 72 {700 - 20 * k} Td ({t}) Tj ET\n" for k, t in enumerate(lines)).encode())
        page[NameObject("/Contents")] = w._add_object(stream)
        w.add_page(page)
    w.write(path)
    return path


def docx_bomb(path: Path, mb: int = 64) -> Path:
    """A DOCX whose document.xml is ``mb`` MB of one letter, deflated to about a thousandth of that."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                                          'package/2006/content-types"><Default Extension="xml" '
                                          'ContentType="application/xml"/></Types>')
        with z.open("word/document.xml", "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/'
                     b'2006/main"><w:body><w:p><w:r><w:t>')
            for _ in range(mb):
                fh.write(b"A" * 2**20)
            fh.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return path


def ingest_json(*args: str) -> tuple[int, dict]:
    proc = subprocess.run([*CLI, "ingest", *args, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.stdout, proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def test_documents_beside_a_broken_fhir_export_are_stored(tmp_path):
    """A folder holding a malformed Patient.ndjson beside a contract, a PDF and an HTML file: the export fails as one
    item naming its file and line; the three documents beside it are stored; the exit code says some failed."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    first = PATIENTS.read_text(encoding="utf-8").splitlines()[0]
    (folder / "Patient.ndjson").write_text(first + "\n" + first[: len(first) // 2] + "\n", encoding="utf-8")
    (folder / CONTRACT.name).write_bytes(CONTRACT.read_bytes())
    (folder / FILING_PDF.name).write_bytes(FILING_PDF.read_bytes())
    body = CONTRACT.read_text(encoding="utf-8")[:20_000].replace("&", "&amp;").replace("<", "&lt;")
    (folder / "agreement.html").write_text(f"<html><body><pre>{body}</pre></body></html>", encoding="utf-8")

    code, out = ingest_json(str(folder), "--store", str(tmp_path / "store"))
    assert code == 3, out
    assert out["documents"] == 3
    assert len(out["failed"]) == 1
    failed = out["failed"][0]
    assert failed["path"] == str(folder.resolve()) and failed["error"].startswith("Patient.ndjson: line 2 is not valid JSON")
    with Pipeline(tmp_path / "store") as p:
        sources = sorted(Path(p.document(d).source).name for d in p.documents())
    assert sources == sorted([CONTRACT.name, FILING_PDF.name, "agreement.html"])


def test_exit_codes_say_what_happened(tmp_path):
    store = str(tmp_path / "store")
    code, out = ingest_json(str(tmp_path / "nonexistent"), "--store", store)
    assert code == 4 and out["failed"] == [{"path": str(tmp_path / "nonexistent"), "error": "path does not exist"}]
    (tmp_path / "empty").mkdir()
    assert ingest_json(str(tmp_path / "empty"), "--store", store)[0] == 4  # no files: nothing was read
    assert ingest_json(str(CONTRACT), "--store", store)[0] == 0
    assert ingest_json(str(CONTRACT), "--store", store)[0] == 0  # unchanged, skipped: still everything is stored
    (tmp_path / "zero.pdf").write_bytes(b"")
    code, out = ingest_json(str(CONTRACT), str(tmp_path / "zero.pdf"), "--store", store)
    assert code == 3 and out["failed"][0]["error"] == "file is empty"


def test_decompression_bombs_and_malformed_packages_are_named(tmp_path):
    bomb = docx_bomb(tmp_path / "bomb.docx")
    assert bomb.stat().st_size < 2**20
    types = tmp_path / "types.docx"  # a [Content_Types].xml python-docx cannot use
    with zipfile.ZipFile(types, "w") as z:
        z.writestr("[Content_Types].xml", "<?xml version='1.0'?><Other/>")
        z.writestr("word/document.xml", "<w:document xmlns:w='x'/>")
    junk = tmp_path / "junk.docx"
    junk.write_bytes(b"PK\x03\x04" + os.urandom(4000))
    with Pipeline(tmp_path / "store") as p:
        report = p.ingest([bomb, types, junk, CONTRACT])
    errors = {Path(f.path).name: f.error for f in report.failed}
    assert errors["bomb.docx"].startswith("is a decompression bomb: word/document.xml expands from")
    assert "MB" in errors["bomb.docx"] and "lxml" not in errors["bomb.docx"]
    assert errors["types.docx"] == "has a [Content_Types].xml that is not an Open XML content-types list"
    assert errors["junk.docx"].startswith("is a corrupt ZIP package")
    assert report.documents == 1


def test_links_that_loop_or_point_nowhere_are_named(tmp_path):
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / CONTRACT.name).write_bytes(CONTRACT.read_bytes())
    (folder / "sub" / "back").symlink_to(folder, target_is_directory=True)  # a folder inside itself
    (folder / "self").symlink_to(folder / "self")  # a link to itself
    (folder / "gone.txt").symlink_to(tmp_path / "deleted.txt")
    os.mkfifo(folder / "pipe.txt")  # reading it would block the job for ever
    with Pipeline(tmp_path / "store") as p:
        report = p.ingest([folder, folder / "pipe.txt"])
    errors = {Path(f.path).name: f.error for f in report.failed}
    assert report.documents == 1
    assert errors["back"].startswith("symbolic link loop (back to ")
    assert errors["self"] == "symbolic link loop; skipped"
    assert errors["gone.txt"].startswith("broken symbolic link (its target ") and "deleted.txt" in errors["gone.txt"]
    assert errors["pipe.txt"] == "not a regular file (a device, pipe or socket); skipped"


def test_a_file_past_the_time_limit_is_stopped_and_the_job_goes_on(tmp_path):
    """A 5,000-page PDF read within a one-second limit is stopped (its worker killed); the contract after it is
    stored. With no limit the same PDF is read whole, every page."""
    big = long_pdf(tmp_path / "long.pdf", 5000)
    cfg = PipelineConfig().replace(ingest={"file_timeout_s": 1.0})
    with Pipeline(tmp_path / "store", cfg) as p:
        report = p.ingest([big, CONTRACT])
        assert [Path(f.path).name for f in report.failed] == ["long.pdf"]
        assert report.failed[0].error == "took longer than 1 s to read (the limit per file, ingest.file_timeout_s); stopped"
        assert report.documents == 1
    stored = []
    counts, failed, _ = run_local([big], stored_sha=lambda key: None, sink=lambda pf: stored.append(pf) or (0, 0),
                                  cfg=IngestConfig(file_timeout_s=0), progress=False)
    assert not failed and len(stored[0].documents[0][0].page_starts) == 5000


def test_a_file_past_the_memory_limit_is_stopped(tmp_path):
    """A PDF whose one content stream inflates from 1 MB to 1 GB, read within a 768 MB limit: a failure naming the
    limit; the contract beside it is stored."""
    import zlib

    from pypdf import PageObject, PdfWriter
    from pypdf.generic import NameObject, StreamObject

    w = PdfWriter()
    page = PageObject.create_blank_page(width=612, height=792)
    deflate = zlib.compressobj(9)
    stream = StreamObject()
    stream._data = b"".join(deflate.compress(b" " * 2**20) for _ in range(1024)) + deflate.flush()
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    page[NameObject("/Contents")] = w._add_object(stream)
    w.add_page(page)
    bomb = tmp_path / "bomb.pdf"
    w.write(bomb)
    stored = []
    _, failed, _ = run_local([bomb, CONTRACT], stored_sha=lambda key: None, sink=lambda pf: stored.append(pf) or (0, 0),
                             cfg=IngestConfig(file_memory_mb=768), progress=False)
    assert [Path(f.path).name for f in failed] == ["bomb.pdf"]
    assert "768 MB" in failed[0].error and "ingest.file_memory_mb" in failed[0].error
    assert [Path(pf.path).name for pf in stored] == [CONTRACT.name]


def test_a_file_that_vanishes_before_it_is_read(tmp_path):
    """Files deleted after the job planned them: a one-line failure each, and what was read is stored."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(CONTRACT.read_bytes())
    b.write_bytes(CONTRACT.read_bytes())

    def sink(parsed):  # storing the first file deletes the second, which the job has planned but not yet read
        b.unlink()
        return (0, 0)

    _, failed, _ = run_local([a, b], stored_sha=lambda key: None, sink=sink, cfg=IngestConfig(file_timeout_s=0,
                             file_memory_mb=0), progress=False)
    assert [(Path(f.path).name, f.error) for f in failed] == [("b.txt", "vanished before it could be read")]


def test_a_file_changed_after_it_was_planned_is_stored_as_it_was_read(tmp_path):
    """A file rewritten after the job planned it (and hashed the old content): what is stored is the new text, under
    the new content's hash, so the next run skips it rather than storing it again."""
    from ingest.job import unit_sha

    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(CONTRACT.read_bytes())
    b.write_bytes(CONTRACT.read_bytes())
    old = unit_sha(b)
    stored = []

    def sink(parsed):  # storing the first file rewrites the second, which the job has planned but not yet read
        if not stored:
            b.write_text(CONTRACT.read_text(encoding="utf-8") + "\nSection 99. Amendment. Added later.\n",
                         encoding="utf-8")
        stored.append(parsed)
        return (0, 0)

    _, failed, _ = run_local([a, b], stored_sha=lambda key: None, sink=sink, cfg=IngestConfig(), progress=False)
    assert not failed and [Path(pf.path).name for pf in stored] == ["a.txt", "b.txt"]
    assert stored[1].sha == unit_sha(b) != old
    assert "Section 99. Amendment. Added later." in stored[1].documents[0][0].text


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("zero.pdf", b"", "file is empty"),
    ("zero.docx", b"", "file is empty"),
    ("zero.html", b"", "file is empty"),
    ("random.pdf", os.urandom(5000), "is not a PDF"),
    ("random.docx", os.urandom(5000), "is not a DOCX file"),
    ("random.html", b"\x00\x01\x02\xff" * 2000, "binary"),
    ("nopages.pdf", None, "is a corrupt PDF or one without pages"),
    ("nested.html", b"<div>" * 200_000 + b"Section 1. Term." + b"</div>" * 200_000, None),
    ("latin1.html", "<p>Section 1. Térm of the agreement, naïve café.</p>".encode("latin-1") * 50, None),
    ("truncated.pdf", FILING_PDF.read_bytes()[:40_000], "corrupt"),
])
def test_broken_documents_give_one_line(tmp_path, name, content, needle):
    """Each broken file is refused with a one-line reason (or read, where it is readable); never a crash."""
    path = tmp_path / name
    if content is None:
        from pypdf import PdfWriter

        PdfWriter().write(path)
    else:
        path.write_bytes(content)
    _, failed, _ = run_local([path], stored_sha=lambda key: None, sink=lambda pf: (0, 0),
                             cfg=IngestConfig(file_timeout_s=60), progress=False)
    if needle is None:
        assert not failed or "\n" not in failed[0].error  # read, or refused in one line
    else:
        assert len(failed) == 1 and needle in failed[0].error and "\n" not in failed[0].error, failed


def test_html_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.html"
    with open(huge, "wb") as fh:  # 201 MB, mostly a hole: the size is known without reading it
        fh.write(b"<html><body><p>Section 1. Term.</p>")
        fh.truncate(201 * 2**20)
    _, failed, _ = run_local([huge, CONTRACT], stored_sha=lambda key: None, sink=lambda pf: (0, 0),
                             cfg=IngestConfig(), progress=False)
    assert [(Path(f.path).name, f.error) for f in failed] == [("huge.html", "file is 201 MB, over the 200 MB limit")]


@pytest.mark.slow
def test_a_150_mb_html_file_is_read_or_stopped_in_one_line(tmp_path):
    """A 150 MB HTML table (under the size limit) within a 120 s limit: read, or stopped by the clock — one line, and
    the contract after it is stored either way."""
    big = tmp_path / "big.html"
    row = "".join(f"<td>{WORDS[i % 12]} {i}</td>" for i in range(12))
    with open(big, "w", encoding="utf-8") as fh:
        fh.write("<html><body><table>")
        while fh.tell() < 150 * 2**20:
            fh.write(f"<tr>{row}</tr>\n" * 1000)
        fh.write("</table></body></html>")
    stored = []
    _, failed, _ = run_local([big, CONTRACT], stored_sha=lambda key: None, sink=lambda pf: stored.append(pf) or (0, 0),
                             cfg=IngestConfig(file_timeout_s=120), progress=False)
    assert CONTRACT.name in [Path(pf.path).name for pf in stored]
    assert all("\n" not in f.error for f in failed) and len(failed) + len(stored) == 2
