"""Smoke evaluation on the real development data: run_eval with a small limit and the extractive writer.

The quick test runs one suite with the two headline systems (CI runs it); the slow one runs every
suite with every default system. Both check the report's structure, not its numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from eval.datasets import load_suite
from eval.harness import config_changes, parse_shard, run_eval, shard_items
from pipeline.host import cpu

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / ".." / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not here")


def check_suite_report(out: Path, result: dict, systems: list[str]) -> None:
    assert result["report"] == str(out / "report.html")
    assert set(result["systems"]) == set(systems)
    for name in systems:
        m = result["systems"][name]
        assert m["items"] == result["items"] and m["errors"] == 0
        assert {"quality", "headline", "hallucination_rate", "retrieval", "citations", "abstention",
                "latency_s"} <= m.keys()
        assert m["headline"]["metric"] == result["headline_metric"]
        assert m["latency_s"]["p50"] > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["systems"].keys() == result["systems"].keys()
    md = (out / "report.md").read_text()
    assert "## Headline" in md and all(f"| {name} |" in md for name in systems)
    page = (out / "report.html").read_text()
    # the retrieval plot only where the suite has gold evidence spans (Synthea has none)
    spans = any(m["retrieval"]["recall_at_k"]["mean"] is not None for m in result["systems"].values())
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") == 3 + spans
    for png in ("quality_hallucination", "retrieval", "latency", "throughput"):
        if png != "retrieval" or spans:
            assert (out / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "plots" / "retrieval.png").exists() == spans
    assert ("No retrieval plot" in md) == (not spans)
    lines = (out / "items.jsonl").read_text().splitlines()
    assert len(lines) == result["items"] * len(systems)


def test_smoke_contractnli_resumes(tmp_path):
    out, stores = tmp_path / "run", tmp_path / "stores"
    systems = ["sectionrag", "chunk_baseline"]
    result = run_eval("contractnli", DATA, out, limit=2, llm="extractive", systems=systems, progress=False,
                      store_root=stores)
    assert result["suite"] == "contractnli" and result["items"] == 2
    check_suite_report(out, result, systems)
    assert result["throughput"]["ingest"]["documents"] == 2
    enc = result["throughput"]["encoder"]  # the long encoder read the two NDAs' longest sections whole
    assert enc["sections"] == 2 and enc["tokens"] > 100 and enc["tokens_per_s"] > 0
    assert "encoder tokens/s" in (out / "report.md").read_text()
    digest = result["throughput"]["digest"]  # what sectionrag's encoder read for its answers' digests
    assert set(digest) == {"sectionrag"} and digest["sectionrag"]["tokens"] > 100
    assert "digest: sections read by sectionrag's encoder" in (out / "report.md").read_text()
    # a second run finds every answer in items.jsonl and recomputes nothing
    before = (out / "items.jsonl").read_text()
    again = run_eval("contractnli", DATA, out, limit=2, llm="extractive", systems=systems, progress=False,
                     store_root=stores)
    assert (out / "items.jsonl").read_text().splitlines()[: len(before.splitlines())] == before.splitlines()
    for what in ("ingest", "encoder", "embedding", "digest"):  # what was measured is kept, and said to be kept
        assert again["throughput"][what] == {**result["throughput"][what], "earlier_run": True}
    assert again["throughput"]["peak_rss_mb"] == result["throughput"]["peak_rss_mb"]
    assert "measured by an earlier run into this folder" in (out / "report.md").read_text()
    assert again["systems"]["sectionrag"]["headline"] == result["systems"]["sectionrag"]["headline"]


def test_first_question_on_a_document_is_flagged_and_reported(tmp_path):
    """A --data folder of the same layout with one NDA: three hypotheses about it, so each system answers the
    document once cold and twice with its sentences cached; the report gives the cold latency apart."""
    raw = json.loads((DATA / "contractnli" / "dev.json").read_text())
    raw["documents"] = raw["documents"][:1]
    (tmp_path / "data" / "contractnli").mkdir(parents=True)
    (tmp_path / "data" / "contractnli" / "dev.json").write_text(json.dumps(raw))
    systems = ["sectionrag", "chunk_baseline"]
    out = tmp_path / "run"
    result = run_eval("contractnli", tmp_path / "data", out, limit=3, llm="extractive", systems=systems,
                      progress=False, store_root=tmp_path / "stores")
    assert result["items"] == 3 and result["items_total"] == len(raw["labels"])
    recs = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    for name in systems:
        flags = [r["first_on_doc"] for r in recs if r["system"] == name]
        assert flags == [True, False, False]
        cold = result["systems"][name]["latency_first_on_doc_s"]
        first = next(r["seconds"] for r in recs if r["system"] == name and r["first_on_doc"])
        assert cold["n"] == 1 and cold["p50"] == pytest.approx(first)
    assert "| latency p50, a process's first question on a document (s) |" in (out / "report.md").read_text()
    # every answer says which CPU wrote it; answers from several machines are named in the notes
    assert {r["cpu"] for r in recs} == {cpu()}
    assert not any("more than one machine" in n for n in result["notes"])
    recs[0]["cpu"] = "Other CPU, 64 CPUs"
    del recs[1]["cpu"]
    (out / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    again = run_eval("contractnli", tmp_path / "data", out, limit=3, llm="extractive", systems=systems,
                     progress=False, store_root=tmp_path / "stores")
    note = next(n for n in again["notes"] if "more than one machine" in n)
    assert f"{cpu()} (4)" in note and "Other CPU, 64 CPUs (1)" in note and "1 recorded before" in note


def test_cli_prints_one_json_object(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "eval.harness", "--suite", "cuad", "--limit", "1", "--llm", "extractive",
                           "--systems", "sectionrag,chunk_baseline", "--out", str(out), "--store-root",
                           str(tmp_path / "stores"), "--no-progress", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["suite"] == "cuad" and set(result["systems"]) == {"sectionrag", "chunk_baseline"}
    assert result["report"] == str(out / "report.html") and (out / "report.html").exists()
    bad = subprocess.run([sys.executable, "-m", "eval.harness", "--suite", "cuad", "--out", str(out), "--data",
                          str(tmp_path / "nope"), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and bad.stdout == "" and "data folder" in bad.stderr
    # the sectionrag CLI: the same sample (the harness's seed), and a report-only look at what is recorded
    sr = Path(sys.executable).with_name("sectionrag")
    again = subprocess.run([str(sr), "eval", "--suite", "cuad", "--limit", "1", "--llm", "extractive", "--systems",
                            "sectionrag,chunk_baseline", "--out", str(out), "--store-root", str(tmp_path / "stores"),
                            "--report-only", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    looked = json.loads(again.stdout)
    assert looked["seed"] == result["seed"] and looked["items"] == 1 and looked["notes"] == result["notes"]
    assert (out / "items.jsonl").read_text().count("\n") == 2  # nothing answered again


def test_shards_split_whole_documents_evenly_and_cover_every_item():
    items = load_suite("contractnli", DATA).items
    parts = [shard_items(items, k, 3) for k in (1, 2, 3)]
    assert sorted(it.id for p in parts for it in p) == sorted(it.id for it in items)  # each item in one part
    docs = [{it.doc_id for it in p} for p in parts]
    assert all(not (docs[i] & docs[j]) for i in range(3) for j in range(i + 1, 3))  # whole documents
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= max(Counter(it.doc_id for it in items).values())
    position = {it.id: i for i, it in enumerate(items)}
    assert all([position[it.id] for it in p] == sorted(position[it.id] for it in p) for p in parts)
    assert shard_items(items, 1, 1) == list(items)
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "a/b", "2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_shard(bad)


def test_shards_run_at_once_then_the_plain_run_reports_them_all(tmp_path):
    out, stores = tmp_path / "run", tmp_path / "stores"
    systems = ["sectionrag", "chunk_baseline"]
    cmd = [sys.executable, "-m", "eval.harness", "--suite", "contractnli", "--limit", "4", "--llm", "extractive",
           "--systems", ",".join(systems), "--out", str(out), "--store-root", str(stores), "--no-progress", "--json"]
    # both parts at once, into one store (they ingest their own documents one after the other)
    procs = [subprocess.Popen([*cmd, "--shard", f"{k}/2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=ROOT) for k in (1, 2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
    parts = [json.loads(o) for o, _ in outs]
    assert [p["shard"] for p in parts] == ["1/2", "2/2"] and sum(p["items"] for p in parts) == 4
    assert all(p["answers"] == p["recorded"] == 2 * p["items"] for p in parts)
    assert not (out / "report.html").exists() and not (out / "items.jsonl").exists()
    recs = [json.loads(line) for k in (1, 2) for line in (out / f"items.shard-{k}-of-2.jsonl").read_text().splitlines()]
    assert len({(r["system"], r["item"]) for r in recs}) == len(recs) == 8
    # an interim look while part 2 is still running (only part 1's answers there): nothing is answered
    interim = tmp_path / "interim"
    interim.mkdir()
    shutil.copy(out / "items.shard-1-of-2.jsonl", interim)
    res = run_eval("contractnli", DATA, interim, limit=4, llm="extractive", systems=systems, progress=False,
                   store_root=stores, report_only=True)
    assert res["items"] == parts[0]["items"] and all(m["items"] == parts[0]["items"] for m in res["systems"].values())
    assert any(n.startswith(f"interim report (--report-only): {parts[0]['items']} of 4 ") for n in res["notes"])
    assert "interim report" in (interim / "report.md").read_text()
    assert len((interim / "items.jsonl").read_text().splitlines()) == 2 * parts[0]["items"]
    assert not (interim / "throughput.json").exists()  # the final run still measures throughput
    with pytest.raises(ValueError, match="no sampled contractnli item has an answer from every system"):
        run_eval("contractnli", DATA, tmp_path / "empty", limit=4, llm="extractive", systems=systems,
                 progress=False, store_root=stores, report_only=True)
    with pytest.raises(ValueError, match="--report-only answers nothing"):
        run_eval("contractnli", DATA, interim, limit=4, llm="extractive", systems=systems, store_root=stores,
                 shard=(1, 2), report_only=True)
    # the plain run answers nothing again: it reads both parts, writes items.jsonl and the report
    result = run_eval("contractnli", DATA, out, limit=4, llm="extractive", systems=systems, progress=False,
                      store_root=stores)
    check_suite_report(out, result, systems)
    final = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert sorted(r["seconds"] for r in final) == sorted(r["seconds"] for r in recs)  # the shards' answers, unchanged
    assert any("--shard runs" in n for n in result["notes"])
    assert result["throughput"]["embedding"]["passages_per_s"] > 0
    # this run answered and ingested nothing: the report takes the parts' figures, and says so
    assert all(p["peak_rss_mb"] > 100 for p in parts)
    tp = result["throughput"]
    assert tp["peak_rss_mb"] == max(p["peak_rss_mb"] for p in parts)
    assert tp["peak_rss_mb_parts"] == {p["shard"]: p["peak_rss_mb"] for p in parts}
    assert tp["ingest"]["from_shard"] in ("1/2", "2/2") and tp["ingest"]["docs_per_s"] > 0
    assert tp["baseline_index"]["from_shard"] in ("1/2", "2/2") and tp["baseline_index"]["chunks_per_s"] > 0
    report = (out / "report.md").read_text()
    assert "the largest of the --shard parts: 1/2" in report and "measured by --shard part" in report
    assert [(p["shard"], p["answers"]) for p in tp["shard_parts"]] == [("1/2", 4), ("2/2", 4)]
    assert "| --shard part 2/2 (its last invocation that answered) | 4 answers in " in report
    # a shard over a suite that is not question answering, or K > N, is one clear error
    with pytest.raises(ValueError, match="question-answering"):
        run_eval("faithbench", DATA, out, shard=(1, 2))
    bad = subprocess.run([*cmd, "--shard", "3/2"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "need 1 <= K <= N" in bad.stderr


def test_parts_answer_in_processes_at_once_and_a_failed_part_is_named_then_continued(tmp_path):
    systems = ["sectionrag", "chunk_baseline"]
    kw = dict(limit=4, llm="extractive", systems=systems, progress=False, store_root=tmp_path / "stores")
    out = tmp_path / "parts"
    out.mkdir()
    # part 2 cannot create its file (a link into a folder that does not exist): it fails, part 1 does not
    (out / "items.shard-2-of-2.jsonl").symlink_to(out / "no-such-folder" / "answers.jsonl")
    with pytest.raises(RuntimeError, match=r"eval part 2/2 \(exit code 1\) failed") as err:
        run_eval("contractnli", DATA, out, parts=2, **kw)
    assert "run the same command again to continue" in str(err.value) and "eval part 1/2" not in str(err.value)
    first = (out / "items.shard-1-of-2.jsonl").read_text().splitlines()
    assert first and not (out / "report.html").exists()
    (out / "items.shard-2-of-2.jsonl").unlink()
    result = run_eval("contractnli", DATA, out, parts=2, **kw)  # continues: what part 2 left is dealt to both
    check_suite_report(out, result, systems)
    assert (out / "items.shard-1-of-2.jsonl").read_text().splitlines()[:len(first)] == first
    recs = [json.loads(line) for k in (1, 2) for line in (out / f"items.shard-{k}-of-2.jsonl").read_text().splitlines()]
    assert len(recs) == 8 and {r["shard"] for r in recs} == {"1/2", "2/2"}
    assert any(n.startswith("answered in 2 processes at once (--parts 2), ") for n in result["notes"])
    tp = result["throughput"]
    assert tp["ingest"]["docs_per_s"] > 0 and "from_shard" not in tp["ingest"]  # ingested before the parts
    assert tp["peak_rss_mb"] > 100
    assert [(p["shard"], p["answers"]) for p in tp["shard_parts"]] == [("1/2", 2), ("2/2", 2)]  # even again
    # the same answers as one process answering everything, against the same store
    plain = run_eval("contractnli", DATA, tmp_path / "plain", **kw)
    def answers(folder):
        return {(r["system"], r["item"]): (r["answer"], r["abstained"])
                for r in map(json.loads, (folder / "items.jsonl").read_text().splitlines())}
    assert answers(out) == answers(tmp_path / "plain") and len(answers(out)) == 8
    assert plain["systems"]["sectionrag"]["quality"] == result["systems"]["sectionrag"]["quality"]
    for bad, match in (({"shard": (1, 2)}, "--parts runs every part"), ({"report_only": True}, "--report-only"),
                       ({"parts": 0}, "parts must be at least 1")):
        with pytest.raises(ValueError, match=match):
            run_eval("contractnli", DATA, out, **{"parts": 2, **kw, **bad})
    with pytest.raises(ValueError, match="faithbench answers nothing"):
        run_eval("faithbench", DATA, out, parts=2)


@pytest.mark.slow
def test_smoke_all_suites(tmp_path):
    out = tmp_path / "all"
    result = run_eval("all", DATA, out, limit=2, llm="extractive", progress=False, store_root=tmp_path / "stores")
    assert result["suite"] == "all" and set(result["suites"]) == {"cuad", "financebench", "contractnli", "synthea",
                                                                  "faithbench"}
    for suite in ("cuad", "financebench", "contractnli", "synthea"):
        res = result["suites"][suite]
        check_suite_report(out / suite, res, list(res["systems"]))
        assert set(result["systems"]["sectionrag"]) >= {suite}
    assert (out / "report.html").exists() and (out / "report.md").read_text().count("| sectionrag |") == 4
    assert (out / "faithbench" / "report.md").exists()


@pytest.mark.slow
def test_a_bulk_export_run_ingests_only_the_patients_the_store_lacks(tmp_path):
    """Synthea is one bulk FHIR export: a limited run stages a subset of it. A later run whose patients are
    all stored (here a smaller sample, as after a full run) must not stage and ingest them again."""
    from eval.datasets import sample_items

    items = load_suite("synthea", DATA).items
    first = {it.doc_id for it in sample_items(items, 2)}
    assert len(first) == 2
    seed = next(s for s in range(1000) if {it.doc_id for it in sample_items(items, 1, s)} < first)
    stores = tmp_path / "stores"
    kw = dict(llm="extractive", systems=["sectionrag"], progress=False, store_root=stores)
    r1 = run_eval("synthea", DATA, tmp_path / "a", limit=2, **kw)
    assert r1["throughput"]["ingest"]["documents"] == 2
    staged = sorted(p.name for p in (stores / "synthea-sources").iterdir())
    r2 = run_eval("synthea", DATA, tmp_path / "b", limit=1, seed=seed, **kw)
    ing = r2["throughput"]["ingest"]
    assert ing["documents"] == 0 and ing["skipped"] == 1 and ing["docs_per_s"] is None
    assert sorted(p.name for p in (stores / "synthea-sources").iterdir()) == staged  # nothing new staged
    assert r2["systems"]["sectionrag"]["answered"] == 1


def test_batched_local_run_writes_the_answers_of_a_one_at_a_time_run(tmp_path):
    # the shipped SmolLM2 writes for both systems; two workers take turns and share each batch
    from pipeline.config import PipelineConfig

    # the writer answers every question (a typed yes-no answer would not call it)
    config = PipelineConfig().replace(retrieve={"evidence_sentences": 4}, answers={"typed": ()})
    systems = ["sectionrag-no-digest", "chunk_baseline"]
    runs = {}
    for batch in (1, 2):
        out = tmp_path / f"batch{batch}"
        runs[batch] = run_eval("contractnli", DATA, out, limit=2, llm="local", systems=systems, progress=False,
                               store_root=tmp_path / "stores", config=config, batch=batch)
        check_suite_report(out, runs[batch], systems)
        assert runs[batch]["batch"] == batch
        assert runs[batch]["config_changes"] == {"retrieve.evidence_sentences": 4, "answers.typed": ()}
        assert any("retrieve.evidence_sentences = 4" in n for n in runs[batch]["notes"])
    answers = [{(r["system"], r["item"]): r["answer"] for r in map(json.loads, (tmp_path / f"batch{b}" / "items.jsonl")
                                                                 .read_text().splitlines())} for b in (1, 2)]
    assert answers[0] == answers[1] and all(answers[0].values())
    batches = runs[2]["throughput"]["writer_batches"]
    assert batches["conversations"] >= 4 and batches["mean_size"] > 1
    assert any("--batch 2" in n for n in runs[2]["notes"]) and not any("--batch" in n for n in runs[1]["notes"])


def test_config_changes_name_what_differs_and_leave_the_writer_to_llm():
    from pipeline.config import PipelineConfig

    config = PipelineConfig().replace(synthesize={"llm": "local", "local_dtype": "bfloat16"},
                                      retrieve={"evidence_sentences": 12})
    assert config_changes(config) == {"synthesize.local_dtype": "bfloat16", "retrieve.evidence_sentences": 12}
    assert config_changes(PipelineConfig().replace(synthesize={"llm": "local"})) == {}


def test_batch_and_variant_rows_are_checked():
    from eval.systems import available_systems, system_config
    from pipeline.config import PipelineConfig

    with pytest.raises(ValueError, match="extractive writer makes none"):
        run_eval("contractnli", DATA, Path("/nonexistent/out"), llm="extractive", batch=4)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        run_eval("contractnli", DATA, Path("/nonexistent/out"), llm="local", batch=0)
    assert "sectionrag-passages12" not in available_systems()  # a variant runs only when named
    assert "sectionrag-passages12" in available_systems(variants=True)
    cfg = system_config("sectionrag-passages12", PipelineConfig())
    assert not cfg.summarize.enabled and cfg.retrieve.evidence_sentences == 12
    assert system_config("sectionrag-no-sections", PipelineConfig()).retrieve.token_budget == 1_000_000_000


def test_a_part_waiting_for_the_store_lock_says_so(tmp_path, capfd):
    import threading

    from eval.harness import store_lock

    store = tmp_path / "store"
    entered = threading.Event()

    def second() -> None:
        with store_lock(store):  # another open of the lock file: blocks while the first holds it
            entered.set()

    with store_lock(store):
        t = threading.Thread(target=second)
        t.start()
        assert not entered.wait(0.5)
    t.join(10)
    assert entered.is_set()
    err = capfd.readouterr().err
    assert "waiting for" in err and str(store) in err and "chunk index" in err
    with store_lock(store):  # a free lock is taken without a word
        pass
    assert "waiting" not in capfd.readouterr().err


def test_a_run_measuring_the_trained_reader_leaves_out_the_documents_it_was_trained_on(tmp_path):
    from eval.answering import QARun
    from eval.harness import leave_out_trained
    from pipeline import PipelineConfig, trained_reader_available, trained_reader_documents

    if not trained_reader_available():
        pytest.skip("no trained reader weights in data/reader")
    seen = trained_reader_documents()
    items = load_suite("cuad", DATA).items
    assert seen and seen <= {it.doc_id for it in items}  # the shipped weights name real CUAD contracts

    untyped = PipelineConfig().replace(answers={"typed": ("list", "date")})

    def run(systems, scorers=(), config=untyped):
        return QARun(suite="cuad", data_dir=DATA, out_dir=tmp_path, limit=None, llm="extractive", systems=systems,
                     progress=False, store=tmp_path / "s", ingest=False, staging=tmp_path / "t", judge="local",
                     seed=0, config=config, scorers=scorers)

    kept, docs = leave_out_trained(items, run(("sectionrag", "sectionrag-trained", "chunk_baseline")))
    assert docs == len(seen) and not {it.doc_id for it in kept} & seen
    assert len(kept) == sum(it.doc_id not in seen for it in items) < len(items)
    assert leave_out_trained(items, run(("sectionrag",), ("bm25", "trained")))[1] == len(seen)
    assert leave_out_trained(items, run(("sectionrag", "chunk_baseline"), ("bm25",))) == (items, 0)
    # typed span and yes-no answers (the default) read with the trained reader
    assert leave_out_trained(items, run(("sectionrag", "chunk_baseline"), ("bm25",), PipelineConfig()))[1] == len(seen)
