"""Questions answered on many threads of one ``Pipeline`` while another process ingests and deletes documents
in the same store: every answer cites text exactly as one stored version of the store held it, and no error
(a locked database above all) reaches the caller."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import CLI, ROOT, SHARED_DATA

from encoders.reader import EvidenceReader
from pipeline import Pipeline
from pipeline.config import PipelineConfig

CONTRACTS = SHARED_DATA / "cuad" / "contracts"
STABLE = [CONTRACTS / "MSCIINC_02_28_2008-EX-10.10-.txt",
          CONTRACTS / "ScansourceInc_20190822_10-K_EX-10.39_11793959_EX-10.39_Distributor Agreement.txt"]
"""Stored before the questions start and never touched."""
CHURN = [CONTRACTS / "LifewayFoodsInc_20160316_10-K_EX-10.24_9489766_EX-10.24_Endorsement Agreement.txt",
         CONTRACTS / "GluMobileInc_20070319_S-1A_EX-10.09_436630_EX-10.09_Content License Agreement2.txt"]
"""Ingested and deleted in turn by the other process: at most one of them is ever stored."""
QUESTIONS = ["What is the governing law of this agreement?", "Who are the parties to the agreement?",
             "When does the agreement terminate?", "Can the agreement be assigned?",
             "What are the payment terms and royalties?", "What is the effective date?",
             "Is there a non-compete or exclusivity clause?", "What license is granted?",
             # about the churned contracts, so that questions are often reading one when it goes
             "What must the endorser do under the endorsement agreement?", "Which content is licensed to Glu Mobile?"]
HYPOTHESES = ["The agreement is governed by the laws of the State of New York.",
              "Either party may terminate the agreement for convenience."]
THREADS = 8

pytestmark = pytest.mark.skipif(not all(p.exists() for p in STABLE + CHURN), reason="needs ../shared/data/cuad")

# One process that ingests and deletes the churned contracts in turn, `cycles` times each, through the public API.
_CHURN_LOOP = """
import sys
from pipeline import Pipeline
from pipeline.config import PipelineConfig
store, cycles, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
with Pipeline(store, PipelineConfig().replace(synthesize={"llm": "extractive"})) as p:
    for i in range(cycles):
        for path in paths:
            report = p.ingest([path])
            assert report.documents == 1 and not report.failed, report
            ids = p.documents(under=path)
            assert p.delete(ids) > 0
            print("cycle", i, ids, file=sys.stderr, flush=True)
"""


def _cli_churn(store: Path, cycles: int, paths: list[Path]) -> None:
    """The same churn through the command line: a fresh ``sectionrag`` process per ingest and per delete."""
    for _ in range(cycles):
        for path in paths:
            subprocess.run(CLI + ["ingest", str(path), "--store", str(store), "--json"], check=True, cwd=ROOT,
                           capture_output=True, timeout=300)
            subprocess.run(CLI + ["delete", path.stem, "--store", str(store), "--json"], check=True, cwd=ROOT,
                           capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    """Every document the store can ever hold, as it is stored: ``{doc_id: text}``."""
    with Pipeline(ROOT / "no-store") as p:
        return {d.id: d.text for path in STABLE + CHURN for d in p.read(path)}


def _store(tmp_path: Path) -> Path:
    with Pipeline(tmp_path / "store") as p:
        report = p.ingest(STABLE)
    assert report.documents == 2 and not report.failed
    return tmp_path / "store"


def _hammer(p: Pipeline, writer_done, texts: dict[str, str], with_check: bool) -> tuple[list, list, int]:
    """Asks on THREADS threads until ``writer_done()``; returns (problems, errors, questions answered)."""
    problems: list[str] = []
    errors: list[BaseException] = []
    answered = [0]
    count_lock = threading.Lock()
    churned = {path.stem for path in CHURN}

    def cited(doc_ids: set[str], what: str) -> None:
        if len(doc_ids & churned) > 1:
            problems.append(f"{what} drew on two churned documents that were never stored together: {doc_ids}")

    def work(n: int) -> None:
        i = n
        while not writer_done():
            try:
                if with_check and i % 4 == 3:
                    verdict = p.check(HYPOTHESES[i % len(HYPOTHESES)])
                    quotes, docs = verdict.evidence, {s.doc_id for s in verdict.sections}
                else:
                    answer = p.ask(QUESTIONS[i % len(QUESTIONS)])
                    quotes, docs = answer.citations, {s.doc_id for s in answer.sections}
            except BaseException as exc:  # every error counts, a locked database first of all
                errors.append(exc)
                return
            for c in quotes:
                if c.doc_id not in texts or texts[c.doc_id][c.start:c.end] != c.quote:
                    problems.append(f"citation {c.doc_id}[{c.start}:{c.end}] is not the stored text: {c.quote[:60]!r}")
            cited(docs | {c.doc_id for c in quotes}, f"question {i}")
            with count_lock:
                answered[0] += 1
            i += THREADS

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return problems, errors, answered[0]


def _pipeline(store: Path) -> Pipeline:
    p = Pipeline(store, PipelineConfig().replace(synthesize={"llm": "extractive"}))
    p.ask(QUESTIONS[0])  # load the models before the clock starts
    return p


def test_questions_on_eight_threads_while_another_process_ingests_and_deletes(tmp_path, texts):
    store = _store(tmp_path)
    with _pipeline(store) as p:
        writer = subprocess.Popen([sys.executable, "-c", _CHURN_LOOP, str(store), "1", *map(str, CHURN)], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True)
        try:
            problems, errors, answered = _hammer(p, lambda: writer.poll() is not None, texts,
                                                 with_check=EvidenceReader.available())
        finally:
            _, stderr = writer.communicate(timeout=300)
        assert writer.returncode == 0, stderr[-2000:]
        assert stderr.count("cycle") == len(CHURN)  # the writer was never turned away
        assert not errors, "".join(f"{type(e).__name__}: {e}\n" for e in errors)
        assert not problems, "\n".join(problems[:10])
        assert answered >= THREADS
        # after the churn the store holds the stable documents only, and answers come from them
        assert sorted(p.documents()) == sorted(path.stem for path in STABLE)
        assert {c.doc_id for c in p.ask(QUESTIONS[0]).citations} <= {path.stem for path in STABLE}


@pytest.mark.slow
def test_questions_while_sectionrag_commands_ingest_and_delete(tmp_path, texts):
    store = _store(tmp_path)
    with _pipeline(store) as p:
        done = threading.Event()
        failure: list[BaseException] = []

        def churn() -> None:
            try:
                _cli_churn(store, 2, CHURN)
            except BaseException as exc:
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=churn).start()
        t0 = time.monotonic()
        problems, errors, answered = _hammer(p, done.is_set, texts, with_check=EvidenceReader.available())
        assert not failure, failure
        assert not errors, "".join(f"{type(e).__name__}: {e}\n" for e in errors)
        assert not problems, "\n".join(problems[:10])
        assert answered >= THREADS, f"{answered} answers in {time.monotonic() - t0:.0f} s"
        assert sorted(p.documents()) == sorted(path.stem for path in STABLE)


def test_a_document_deleted_by_another_process_mid_question_stays_whole_for_that_question(tmp_path, texts):
    store = _store(tmp_path)
    churned = CHURN[0].stem
    with Pipeline(store) as p:
        assert p.ingest([CHURN[0]]).documents == 1
    deleted = []

    def delete_after_retrieval(step) -> None:
        if step.node == "retrieve" and not deleted:
            deleted.append(subprocess.run(CLI + ["delete", churned, "--store", str(store), "--json"], cwd=ROOT,
                                          capture_output=True, text=True, timeout=300))

    with _pipeline(store) as p:
        answer = p.ask(QUESTIONS[-2], [churned], on_step=delete_after_retrieval)
        assert deleted and deleted[0].returncode == 0, deleted and deleted[0].stderr[-2000:]
        assert answer.sections and {s.doc_id for s in answer.sections} == {churned}
        assert answer.citations
        for c in answer.citations:
            assert c.doc_id == churned and texts[churned][c.start:c.end] == c.quote
        assert churned not in p.documents()  # the next question sees the store without it
        with pytest.raises(ValueError, match="no document"):
            p.ask(QUESTIONS[-2], [churned])
