"""``Pipeline.check``, ``sectionrag check`` and ``sectionrag review`` on real NDAs (ContractNLI dev) with the
shipped reader: exact evidence, one clear error for bad input, a resumable batch review."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from conftest import CLI, ROOT, SHARED_DATA

from encoders.reader import EvidenceReader
from pipeline import NLI_LABELS, Pipeline
from pipeline.review import Playbook

DEV = SHARED_DATA / "contractnli" / "dev.json"
pytestmark = [pytest.mark.skipif(not EvidenceReader.available(), reason="no trained reader weights in data/reader"),
              pytest.mark.skipif(not DEV.exists(), reason="needs ../shared/data/contractnli")]

PLAYBOOK = """
[[hypothesis]]
id = "employees"
text = "Receiving Party may share some Confidential Information with some of Receiving Party's employees."

[[hypothesis]]
id = "return"
text = "Receiving Party shall destroy or return some Confidential Information upon the termination of Agreement."
"""


@pytest.fixture(scope="module")
def ndas(tmp_path_factory):
    """Two dev NDAs as text files in a store of their own."""
    folder = tmp_path_factory.mktemp("ndas")
    docs = json.loads(DEV.read_text())["documents"][:2]
    for d in docs:
        (folder / "files").mkdir(exist_ok=True)
        (folder / "files" / f"nda-{d['id']}.txt").write_text(d["text"])
    with Pipeline(folder / "store") as p:
        assert p.ingest([folder / "files"]).documents == 2
    return folder


def test_check_gives_a_verdict_with_exact_evidence(ndas):
    with Pipeline(ndas / "store") as p:
        doc = p.documents()[0]
        for hyp in Playbook.from_toml(_playbook(ndas)).hypotheses:
            v = p.check(hyp.text, [doc])
            assert v.label in NLI_LABELS and 0.0 <= v.confidence <= 1.0
            assert v.sections and all(s.doc_id == doc for s in v.sections)
            if v.label != "NotMentioned":
                assert v.evidence  # a verdict shows what it rests on
            for c in v.evidence:
                assert c.doc_id == doc and p.document(doc).text[c.start:c.end] == c.quote
        with pytest.raises(ValueError, match="no document 'nope'"):
            p.check("Anything at all.", ["nope"])
        with pytest.raises(ValueError, match="empty"):
            p.check("  ", [doc])


def _playbook(folder):
    path = folder / "playbook.toml"
    path.write_text(PLAYBOOK)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=900)


def test_cli_check_json(ndas):
    with Pipeline(ndas / "store") as p:
        doc = p.documents()[0]
    proc = _run("check", "Receiving Party may share some Confidential Information with its employees.",
                "--store", str(ndas / "store"), "--doc", doc, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert set(out) == {"label", "confidence", "evidence"} and out["label"] in NLI_LABELS
    assert all(set(e) == {"doc_id", "section_id", "start", "end", "quote"} for e in out["evidence"])
    bad = _run("check", "Anything.", "--store", str(ndas / "store"), "--doc", "no-such-nda", "--json")
    assert bad.returncode == 1 and bad.stdout == "" and "no document 'no-such-nda'" in bad.stderr.strip().splitlines()[-1]


def test_review_writes_a_table_and_a_page_and_resumes(ndas, tmp_path):
    playbook = _playbook(ndas)
    out = tmp_path / "review"
    proc = _run("review", "--playbook", str(playbook), str(ndas / "files"), "--store", str(ndas / "store"),
                "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["documents"] == 2 and report["hypotheses"] == 2 and report["checked"] == 4
    assert sum(report["counts"].values()) == 4
    lines = (out / "review.jsonl").read_text().splitlines()
    assert len(lines) == 4
    table = (out / "review.csv").read_text().splitlines()
    assert table[0] == "doc_id,employees,return" and len(table) == 3
    page = (out / "review.html").read_text()
    assert "employees" in page and "<mark>" in page or all(json.loads(x)["label"] == "NotMentioned" for x in lines)
    again = json.loads(_run("review", "--playbook", str(playbook), str(ndas / "files"), "--store",
                            str(ndas / "store"), "--out", str(out), "--json").stdout)
    assert again["checked"] == 0  # every verdict was recorded: nothing is checked twice


@pytest.mark.parametrize(("text", "message"), [
    ("[[hypothesis]]\nid = 'a'\n", "needs a non-empty string id and text"),
    ("[[hypothesis]]\nid = 'a'\ntext = 'x'\n[[hypothesis]]\nid = 'a'\ntext = 'y'\n", "appears twice"),
    ("title = 'no hypotheses'\n", "has no [[hypothesis]] tables"),
    ("[[hypothesis]\n", "is not valid TOML"),
    ("[[hypothesis]]\nid = 'a'\ntext = 'x'\nweight = 2\n", "unknown key"),
])
def test_a_malformed_playbook_is_one_clear_error(tmp_path, ndas, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        Playbook.from_toml(path)
    proc = _run("review", "--playbook", str(path), "x", "--store", str(ndas / "store"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 1 and str(path) in proc.stderr.strip().splitlines()[-1]
