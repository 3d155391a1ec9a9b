"""Named collections in one store: a question in one never sees another's sections."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import CLI, ROOT, SAMPLES

from pipeline import Pipeline
from pipeline.config import PipelineConfig

CONTRACTS = SAMPLES / "contracts"
EHR = SAMPLES / "ehr"


def test_a_question_in_one_collection_never_sees_another(tmp_path):
    store = tmp_path / "store"
    cfg = PipelineConfig().replace(synthesize={"llm": "extractive"})
    with Pipeline(store, cfg, collection="legal") as legal:
        assert legal.ingest([CONTRACTS]).documents == 1
    with Pipeline(store, cfg, collection="clinic") as clinic:
        assert clinic.ingest([EHR]).documents == 1
    assert Pipeline.collections(store) == ["clinic", "legal"]

    with Pipeline(store, cfg, collection="legal") as legal:
        docs = set(legal.documents())
        # a clinical question asked of the contracts: only contract sections come back, whatever they score
        found = legal.retrieve("What medications is the patient taking?", top_sections=10)
        assert found and {s.doc_id for s in found} <= docs
        answer = legal.ask("What medications is the patient taking?")
        assert {c.doc_id for c in answer.citations} <= docs
    with Pipeline(store, cfg, collection="clinic") as clinic:
        ehr_docs = set(clinic.documents())
        assert ehr_docs.isdisjoint(docs)
        found = clinic.retrieve("How can the agreement be terminated?", top_sections=10)
        assert found and {s.doc_id for s in found} <= ehr_docs
        assert clinic.delete(sorted(ehr_docs)) > 0 and clinic.documents() == []
    with Pipeline(store, cfg, collection="legal") as legal:  # deleting in one left the other whole
        assert set(legal.documents()) == docs
    assert not Pipeline.is_store(store)  # the default collection was never written


def test_cli_collection_and_bad_names(tmp_path):
    store = str(tmp_path / "store")
    ingest = subprocess.run([*CLI, "ingest", str(CONTRACTS), "--store", store, "--collection", "legal", "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    listed = subprocess.run([*CLI, "sections", "--store", store, "--collection", "legal", "--json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert {s["doc_id"] for s in json.loads(listed.stdout)["sections"]} == {"BNLFINANCIALCORP-outsourcing-agreement"}
    other = subprocess.run([*CLI, "sections", "--store", store, "--collection", "clinic", "--json"],
                           capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert other.returncode == 1 and other.stdout == "" and "no sectionrag store" in other.stderr
    bad = subprocess.run([*CLI, "sections", "--store", store, "--collection", "../legal", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert bad.returncode == 1 and bad.stdout == "" and "collection name '../legal' is not allowed" in bad.stderr


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "x" * 65, "a..b"])
def test_collection_names_cannot_leave_the_store(tmp_path, name):
    with pytest.raises(ValueError, match="is not allowed"):
        Pipeline(tmp_path, collection=name)
