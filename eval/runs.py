"""Long evaluation runs: resuming, ``--shard K/N`` parts, ``--parts N`` processes, and what they measured.

* Resume: every (system, writer, item) answer is appended to ``OUT/items.jsonl`` (a part's to
  ``OUT/items.shard-K-of-N.jsonl``) as soon as it exists; ``load_records`` reads them all back, so a
  re-run answers only what is missing. A line cut short by a killed run is skipped and answered again.
* Shards: ``shard_items`` deals a sample into N parts of whole documents (a document's questions share
  its cached sentence vectors), the same way in every process.
* Parts: ``answer_in_parts`` runs the N shards as processes at once on one machine, each with 1/N of the
  CPUs, one progress bar counting their answers; a part that fails is named and what every part recorded
  is kept.
* Throughput files: a part records what it measured (``record_part``); the final plain run merges it
  (``merge_parts``) and keeps an earlier invocation's figures where it measured nothing new
  (``keep_measured``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from eval.datasets import Item
from eval.records import AnswerRecord, record_key
from pipeline import StoreLock

ITEMS_FILE = "items.jsonl"
SHARD_FILES = "items.shard-*-of-*.jsonl"
PART_FILES = "throughput.shard-*-of-*.json"
THROUGHPUT_FILE = "throughput.json"


def items_file(out_dir: Path, shard: tuple[int, int] | None) -> Path:
    """Where a run (or its ``--shard K/N`` part) records its answers, one line each."""
    return out_dir / (ITEMS_FILE if shard is None else f"items.shard-{shard[0]}-of-{shard[1]}.jsonl")


def load_records(out_dir: Path) -> dict[str, AnswerRecord]:
    """Every recorded answer in ``out_dir`` by key: the shards' files first, then ``items.jsonl``, which the
    unsharded run rewrites with every record it holds (so its copy of a record is the latest)."""
    out: dict[str, AnswerRecord] = {}
    for path in [*sorted(out_dir.glob(SHARD_FILES)), out_dir / ITEMS_FILE]:
        if not path.exists():
            continue
        with open(path) as fh:
            for line in fh:
                try:
                    rec = AnswerRecord.from_json(json.loads(line))
                except (ValueError, TypeError):
                    continue  # a line cut short by a killed run: that item is simply run again
                out[rec.key] = rec
    return out


def write_records(path: Path, records: Iterable[AnswerRecord]) -> None:
    """Rewrites ``path`` with ``records`` atomically."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def shard_items(items: Sequence[Item], k: int, n: int) -> list[Item]:
    """Part ``k`` (1-based) of ``n`` of ``items``, in their order: whole documents per part (a document's
    questions share its cached embeddings), documents dealt largest first to the part with the fewest
    items so far. The same items give the same parts in every process."""
    per_doc: dict[str, int] = {}
    for it in items:
        per_doc[it.doc_id] = per_doc.get(it.doc_id, 0) + 1
    load = [0] * n
    part: dict[str, int] = {}
    for doc, count in sorted(per_doc.items(), key=lambda kv: (-kv[1], kv[0])):
        j = min(range(n), key=lambda i: (load[i], i))
        part[doc] = j
        load[j] += count
    return [it for it in items if part[it.doc_id] == k - 1]


def store_lock(store: Path) -> StoreLock:
    """The lock beside ``store`` (re-entrant within one object) that ``--shard`` processes take to ingest
    into one store, and to build the baseline's chunk index, one at a time."""
    return StoreLock(store.parent / f".{store.name}.eval-lock", wait=True,
                     holder=f"another process holds it (ingesting into {store}, or building or loading the "
                            "baseline's chunk index)")


# -- --parts: the shards as processes on this machine ------------------------------------------------
def answer_in_parts(n: int, items: Sequence[Item], systems: Sequence[str], llm: str, out_dir: Path,
                    bar: Callable[[int], object], part_main: Callable, part_kwargs: dict) -> int:
    """Answers what ``out_dir`` lacks in ``n`` processes at once, part K recording into the ``--shard K/N``
    part's file; returns the threads each had (0 when nothing was left to answer). ``part_main(k, n, threads,
    kwargs)`` runs one part in a fresh interpreter. Raises, naming the parts, if any failed: what the others
    recorded is kept, and the same command continues the run. ``bar(total)`` is the progress bar that counts
    the parts' answers."""
    import multiprocessing
    import multiprocessing.connection

    done = load_records(out_dir)
    pending = [it for it in items if any(record_key(name, llm, it.id) not in done for name in systems)]
    todo = sum(1 for it in pending for name in systems if record_key(name, llm, it.id) not in done)
    if not todo:
        return 0
    # what is left is dealt out (whole documents, as --shard deals the sample), so a continued run's parts
    # stay even however far each got before
    dealt = {k: [it.id for it in shard_items(pending, k, n)] for k in range(1, n + 1)}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cpus // n)
    counter = _NewLines([items_file(out_dir, (k, n)) for k in range(1, n + 1)])
    # spawn, not fork: each part loads its own models and torch threads into a fresh interpreter
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=part_main, args=(k, n, threads, {**part_kwargs, "subset": dealt[k]}),
                         name=f"eval part {k}/{n}") for k in range(1, n + 1) if dealt[k]]
    progress = bar(todo)
    try:
        for p in procs:
            p.start()
        while alive := [p.sentinel for p in procs if p.is_alive()]:
            multiprocessing.connection.wait(alive, timeout=2.0)
            progress.update(counter.count())
    except KeyboardInterrupt:  # Ctrl-C reached the parts too; a SIGTERM to this process is passed on to them
        for p in procs:
            p.join(timeout=2)
            if p.is_alive():
                with contextlib.suppress(OSError):
                    os.kill(p.pid, signal.SIGINT)  # a part stops at an answer's end, keeping what it recorded
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        raise
    finally:
        progress.close()
    failed = [f"{p.name} ({exit_text(p.exitcode)})" for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{', '.join(failed)} failed (the part's own error is above); the answers every part "
                           f"recorded are kept in {out_dir}: run the same command again to continue")
    return threads


class _NewLines:
    """Counts the lines appended to some files since the last look (each part writes one line per answer);
    what was there before is not counted."""

    def __init__(self, files: list[Path]) -> None:
        self.ends = {f: 0 for f in files}
        for f in files:
            with contextlib.suppress(OSError):
                self.ends[f] = f.stat().st_size

    def count(self) -> int:
        count = 0
        for f, end in self.ends.items():
            with contextlib.suppress(OSError), open(f, "rb") as fh:
                fh.seek(end)
                data = fh.read()
                self.ends[f] = end + len(data)
                count += data.count(b"\n")
        return count


def exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def part_process_setup(threads: int) -> None:
    """What a ``--parts`` process sets before it answers: its share of the CPUs, no progress bars of its own
    (the parent's bar counts every part's answers)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()


def run_part(k: int, n: int, answer: Callable[[], object]) -> None:
    """Runs one ``--parts`` process's work; an error is one line naming the part, and a non-zero exit."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            answer()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the parent names the part; this says what went wrong
        print(f"eval: part {k}/{n}: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


# -- throughput files ---------------------------------------------------------------------------------
def keep_measured(path: Path, now: dict, write: bool = True) -> dict:
    """Throughput measured by an earlier invocation into the same folder is kept when this one measured
    nothing new (a resumed run that found its documents stored and its answers recorded); what is kept
    is marked ``"earlier_run": true`` (the report says so). ``write=False`` (an interim report) leaves
    ``path`` as it was, so the run's final report still measures what nobody has."""
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        before = {}
    merged = {k: ({**v, "earlier_run": True} if isinstance(v, dict) else v) for k, v in before.items()}
    for k, v in now.items():
        if k == "ingest":
            measured = v.get("docs_per_s") is not None
        else:
            measured = bool(v) if isinstance(v, dict) else v is not None
        if measured or k not in before:
            merged[k] = v
    if write:
        path.write_text(json.dumps(merged))
    return merged


def record_part(path: Path, part: dict, throughput: dict) -> None:
    """What a ``--shard`` part measured, for the final plain run's report. A resumed part that answered
    nothing new keeps the file of the invocation that did."""
    if not part["answers"] and path.exists():
        return
    path.write_text(json.dumps({**throughput, "shard": part["shard"], "answers": part["answers"],
                                "peak_rss_mb": part["peak_rss_mb"], "seconds": part["seconds"]}))


def merge_parts(out_dir: Path, throughput: dict) -> None:
    """Fills in from the ``--shard`` parts' files what this run did not measure itself: the ingest (the
    part that stored the documents), the baseline's chunk-index build, and, when this run answered
    nothing, peak memory (the largest part's, each part's listed under ``peak_rss_mb_parts``)."""
    parts = []
    for f in sorted(out_dir.glob(PART_FILES)):
        try:
            parts.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    if not parts:
        return
    for key, measured in (("ingest", "docs_per_s"), ("baseline_index", "chunks_per_s")):
        if (throughput.get(key) or {}).get(measured) is None:
            for p in parts:
                if (p.get(key) or {}).get(measured) is not None:
                    throughput[key] = {**p[key], "from_shard": p["shard"]}
                    break
    if throughput.get("peak_rss_mb") is None:
        peaks = {p["shard"]: p["peak_rss_mb"] for p in parts if p.get("peak_rss_mb")}
        if peaks:
            throughput["peak_rss_mb"] = max(peaks.values())
            throughput["peak_rss_mb_parts"] = peaks
    # each part's last invocation that answered something: how many answers, in how long
    throughput["shard_parts"] = [{k: p.get(k) for k in ("shard", "answers", "seconds", "peak_rss_mb")} for p in parts]


def machines_note(records: Iterable[AnswerRecord]) -> str | None:
    """A note when the answers came from more than one CPU (or some do not say), else None."""
    counts = Counter(r.cpu for r in records)
    if len(counts) < 2:
        return None
    named = ", ".join(f"{name} ({n})" for name, n in counts.most_common() if name)
    note = f"answers came from more than one machine: {named}"
    if counts.get(None):
        note += f"; {counts[None]} recorded before the harness noted the CPU"
    return note + ". In bfloat16 the kernels round differently on different CPUs, so a greedy answer can differ"


# -- progress -------------------------------------------------------------------------------------------
class ProgressBar:
    """Answers counted on stderr (tqdm), or nothing when not ``enabled``."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.tq = None
        if enabled:
            from tqdm import tqdm

            self.tq = tqdm(total=total, desc=desc, unit="answer", file=sys.stderr)

    def update(self, n: int) -> None:
        if self.tq:
            self.tq.update(n)

    def close(self) -> None:
        if self.tq:
            self.tq.close()
