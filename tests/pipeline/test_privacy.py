"""Document text stays out of logs and error messages at the default level, and store files are the owner's only."""

from __future__ import annotations

import json
import logging
import re
import stat
import subprocess

from conftest import CLI, ROOT, SHARED_DATA

from pipeline import Pipeline
from pipeline.config import PipelineConfig

NOTES = SHARED_DATA / "synthea" / "notes.jsonl"


def _shingles(text: str, n: int = 5) -> set[str]:
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def _leaks(text: str, log: str) -> list[str]:
    """The document's 5-word runs that appear in the log."""
    flat = " ".join(re.findall(r"[A-Za-z0-9]+", log.lower()))
    return sorted(s for s in _shingles(text) if s in flat)


def test_note_text_never_reaches_the_logs(tmp_path, caplog):
    """A full ingest and ask over real clinical notes (with a broken note file beside them), in this process and
    through the CLI: no 5-word run of any note is in a log record, on stderr or in an error message."""
    notes = [json.loads(line) for line in NOTES.read_text(encoding="utf-8").splitlines()[:3]]
    inbox = tmp_path / "notes"
    inbox.mkdir()
    for i, note in enumerate(notes):
        (inbox / f"note-{i}.txt").write_text(note["text"], encoding="utf-8")
    # a note that cannot be read: its error must name the problem, not quote it
    (inbox / "broken.txt").write_bytes(notes[0]["text"].encode("utf-8")[:400] + b"\x00" * 600)
    text = "\n".join(n["text"] for n in notes)

    caplog.set_level(logging.WARNING)  # the default level
    cfg = PipelineConfig().replace(synthesize={"llm": "extractive"})
    store = tmp_path / "store"
    with Pipeline(store, cfg) as p:
        report = p.ingest([inbox])
        answer = p.ask("What is the patient's chief complaint?")
        p.check("The patient has a cough.")
    assert report.documents == 3 and len(report.failed) == 1
    assert not answer.abstained and answer.citations  # text was read and answered from
    errors = " ".join(f.error for f in report.failed) + " ".join(w.warning for w in report.warnings)
    assert not _leaks(text, errors)
    assert not _leaks(text, "\n".join(r.getMessage() for r in caplog.records))

    ingest = subprocess.run([*CLI, "ingest", str(inbox), "--store", str(tmp_path / "cli-store")], capture_output=True,
                            text=True, cwd=ROOT, timeout=900)
    ask = subprocess.run([*CLI, "ask", "What is the patient's chief complaint?", "--store", str(tmp_path / "cli-store"),
                          "--llm", "extractive"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert ingest.returncode == 3 and ask.returncode == 0, (ingest.stderr[-2000:], ask.stderr[-2000:])
    assert _leaks(text, ask.stdout)  # the answer itself quotes the note (the check can find text) …
    assert not _leaks(text, ingest.stderr + ask.stderr)  # … the logs never do


def test_store_files_are_the_owners_only(tmp_path):
    """Every file a store holds after ingest and ask is 0600 (its folder 0700): another user reads nothing."""
    store = tmp_path / "store"
    with Pipeline(store, PipelineConfig().replace(synthesize={"llm": "extractive"})) as p:
        p.ingest([ROOT / "data" / "samples" / "contracts"])
        p.ask("How can the agreement be terminated?")
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    files = [f for f in store.rglob("*") if f.is_file()]
    assert {f.name for f in files} >= {"sections.sqlite", "passages.faiss", "passages.json"}
    assert {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {f.name: "0o600" for f in files}
