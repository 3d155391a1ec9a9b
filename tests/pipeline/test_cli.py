"""The command-line contract: one JSON object on stdout, exact keys, one-line errors."""

from __future__ import annotations

import json
import subprocess

from conftest import CLI, ROOT, SAMPLES

INGEST_KEYS = {"documents", "sections", "passages", "pages", "seconds", "skipped", "failed", "warnings"}
SECTION_KEYS = {"id", "doc_id", "path", "title", "start", "end", "pages", "tokens"}
ASK_KEYS = {"answer", "abstained", "support", "kind", "value", "citations", "sections", "timings"}


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_ingest_sections_ask_json(tmp_path):
    store = str(tmp_path / "store")
    proc = run("ingest", str(SAMPLES / "contracts"), str(tmp_path / "missing.pdf"), "--store", store, "--json",
               check=False)
    assert proc.returncode == 3, proc.stderr[-2000:]  # some inputs failed, the rest were stored
    out = json.loads(proc.stdout)
    assert set(out) == INGEST_KEYS
    assert out["documents"] == 1 and out["sections"] >= 1 and out["passages"] >= out["sections"]
    assert out["failed"] == [{"path": str(tmp_path / "missing.pdf"), "error": "path does not exist"}]

    again = json.loads(run("ingest", str(SAMPLES / "contracts"), "--store", store, "--json").stdout)
    assert again["skipped"] == 1 and again["documents"] == 0

    sections = json.loads(run("sections", "--store", store, "--with-text", "--json").stdout)["sections"]
    assert sections and all(set(s) == SECTION_KEYS | {"text"} for s in sections)
    doc_id = sections[0]["doc_id"]
    only = json.loads(run("sections", "--store", store, "--doc", doc_id, "--json").stdout)["sections"]
    assert all(set(s) == SECTION_KEYS for s in only)

    proc = run("ask", "How can the agreement be terminated?", "--store", store, "--llm", "extractive",
               "--top-sections", "2", "--json")
    answer = json.loads(proc.stdout)  # the whole stdout is one JSON object
    assert set(answer) == ASK_KEYS
    assert not answer["abstained"] and answer["citations"]
    text = {s["id"]: s for s in sections}
    for c in answer["citations"]:
        section = text[c["section_id"]]
        assert section["start"] <= c["start"] < c["end"] <= section["end"]
        assert section["text"][c["start"] - section["start"]:c["end"] - section["start"]] == c["quote"]
    # --top-sections bounds the sections retrieval selects; cross-referenced ones come on top, saying why
    selected = [s for s in answer["sections"] if "via" not in s]
    assert 1 <= len(selected) <= 2 and {"retrieve", "total"} <= set(answer["timings"])
    assert all(s["via"].startswith("referenced as ") for s in answer["sections"] if "via" in s)


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_store(tmp_path):
    one_line_error(run("ask", "What is the term?", "--store", str(tmp_path / "nope"), "--json", check=False),
                   "no sectionrag store", "nope")
    one_line_error(run("sections", "--store", str(tmp_path / "nope"), check=False), "no sectionrag store")


def test_empty_question(sample_store):
    one_line_error(run("ask", "  ", "--store", str(sample_store), "--json", check=False), "question is empty")


def test_unreadable_path_is_reported(tmp_path):
    bad = tmp_path / "locked.txt"
    bad.write_text("Section 1. Term.")
    bad.chmod(0)
    proc = run("ingest", str(bad), "--store", str(tmp_path / "s"), "--json", check=False)
    bad.chmod(0o644)
    out = json.loads(proc.stdout)
    if out["documents"] == 1:  # running as root: permissions do not stop reads; the file was simply ingested
        return
    assert out["failed"][0]["path"] == str(bad) and "read" in out["failed"][0]["error"]


def test_bad_flags():
    one_line_error(run("ask", "q", "--store", "x", "--top-sections", "0", check=False), "at least 1")
    one_line_error(run("ask", "q", "--store", "x", "--llm", "gpt", check=False), "invalid choice")
    one_line_error(run("frobnicate", check=False), "invalid choice")


def test_bench_writer_json_and_bad_arguments(tmp_path):
    # a real contract cut to 60 tokens, one conversation, four new tokens, float32: both sides write
    # the same reply (float32 rounding differences do not change the greedy pick here)
    out = json.loads(run("bench", "writer", "--tokens", "60", "--batch", "1", "--dtype", "float32", "--new-tokens",
                         "4", "--repeats", "1", "--contracts", str(SAMPLES / "contracts"), "--json").stdout)
    assert set(out) == {"machine", "rows"} and out["machine"]["threads"] == 1
    read, answer = out["rows"]
    assert read["batch"] is None and answer["batch"] == 1 and read["dtype"] == answer["dtype"] == "float32"
    assert all(r["ours_ms"] > 0 and r["sdpa_ms"] > 0 and r["ratio_sdpa_over_ours"] > 0 for r in out["rows"])
    assert answer["same_replies"] == 1 and answer["ours_generated_tokens"] == answer["sdpa_generated_tokens"] >= 1
    one_line_error(run("bench", "writer", "--tokens", "many", "--json", check=False), "--tokens", "many")
    one_line_error(run("bench", "writer", "--dtype", "float16", "--json", check=False), "--dtype", "float16")
    missing = tmp_path / "nothing-here"
    one_line_error(run("bench", "writer", "--contracts", str(missing), "--json", check=False), str(missing))
    one_line_error(run("bench", "writer", "--tokens", "100000", "--batch", "1", "--contracts",
                       str(SAMPLES / "contracts"), "--json", check=False), "100000 tokens")


def test_ask_trace_and_stream(sample_store):
    proc = run("ask", "How can the outsourcing agreement be terminated?", "--store", str(sample_store), "--llm",
               "extractive", "--trace", "--stream", "--json")
    answer = json.loads(proc.stdout)
    assert set(answer) == ASK_KEYS | {"trace"}
    trace = answer["trace"]
    assert set(trace) == {"evidence", "claims", "route", "scope", "timings", "injections"}
    assert trace["route"] == ["retrieve", "summarize", "synthesize", "verify", "finalize"]
    assert trace["evidence"] and all(set(ev) == {"n", "doc_id", "section_id", "start", "end", "text", "score"}
                                     for ev in trace["evidence"])
    assert trace["claims"] and all({"claim", "supported", "support", "evidence", "reasons"} == set(c)
                                   for c in trace["claims"])
    # --stream: one line per stage on stderr, in order, while stdout stays one JSON object
    stages = [line.split("] ", 1)[1].split(":")[0] for line in proc.stderr.splitlines() if line.startswith("[")]
    assert stages == trace["route"]
