"""Phase 3 of a question-answering run: every system answers every item, each answer recorded at once.

``QARun`` is one suite's run as ``eval.harness.run_eval`` resolved it; ``answer`` runs the systems
(``eval.systems``) over what is still missing, in this process (``--batch N``: the writer's calls batched);
``answer_in_parts_phase`` runs the missing answers as ``--parts N`` processes instead (``eval.runs``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eval.datasets import Item, Suite, align_spans
from eval.judging import judge_one, load_judge
from eval.records import AnswerRecord, record_key
from eval.runs import THROUGHPUT_FILE, ProgressBar, answer_in_parts, items_file, keep_measured
from eval.scoring import score, scorer_coverage, unit_pr
from eval.systems import Systems
from pipeline import Pipeline, PipelineConfig, StoreLock, cpu

log = logging.getLogger("eval")


@dataclass(frozen=True)
class QARun:
    """One question-answering suite's run: what ``run_eval``'s arguments come to for it."""

    suite: str
    data_dir: Path
    out_dir: Path
    limit: int | None
    llm: str
    systems: tuple[str, ...]
    progress: bool
    store: Path
    ingest: bool
    """Ingest the sample's documents into ``store`` (False: ``--store`` names a store that holds them)."""
    staging: Path
    judge: str
    seed: int
    config: PipelineConfig
    shard: tuple[int, int] | None = None
    batch: int = 1
    report_only: bool = False
    parts: int = 1
    subset: tuple[str, ...] | None = None
    """A ``--parts`` process: the item ids its parent dealt it."""
    labels: tuple[str, ...] = ()
    """Only the items whose dataset label contains one of these (``--label``)."""
    scorers: tuple[str, ...] = ()
    """Evidence scorers compared on the ``sectionrag`` row's retrieved sections (``pipeline.UNIT_SCORERS``)."""

    def key(self, system: str, item: Item) -> str:
        return record_key(system, self.llm, item.id)


def answer(run: QARun, ds: Suite, store: Pipeline, todo: list[tuple[Item, str]], done: dict[str, AnswerRecord],
            lock: StoreLock, throughput: dict, notes: list[str]):
    """Answers ``todo`` with every system, appending each record to the run's file as it is made; returns
    the systems' shared embedder (for the throughput figures)."""
    with lock:  # the baseline's chunk index is built on first use: one process builds it, the others load it
        systems = Systems(run.systems, run.store, run.llm, base=run.config, progress=run.progress,
                          scorers=run.scorers)
    if stats := systems.baseline_index():
        throughput["baseline_index"] = stats
    judge, judge_note = load_judge(run.judge)
    if judge_note:
        notes.append(judge_note)
    golds: dict[str, list[tuple[int, int]]] = {}
    bar = ProgressBar(len(todo), f"{run.suite} ({run.llm})" + (f" shard {run.shard[0]}/{run.shard[1]}" if run.shard else ""),
               run.progress)
    asked: set[tuple[str, str]] = set()  # (system, document) pairs this process has answered on
    machine = cpu()
    try:
        with open(items_file(run.out_dir, run.shard), "a") as fh:
            def answer(task: tuple[Item, str]) -> None:
                it, name = task
                if it.id not in golds:
                    golds[it.id] = gold_spans(ds, it, store)
                rec = run_one(it, name, run.llm, systems[name], golds[it.id], judge)
                # the first question a process answers on a document pays for what later ones find cached
                # (the document's sentence vectors, its text): users asking once per document see this latency
                rec.first_on_doc = (name, it.doc_id) not in asked
                asked.add((name, it.doc_id))
                rec.cpu = machine
                rec.shard = f"{run.shard[0]}/{run.shard[1]}" if run.shard else None
                rec.batch = run.batch if run.batch > 1 else None
                fh.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
                fh.flush()
                done[rec.key] = rec
                bar.update(1)

            systems.map(answer, todo, run.batch)
        if run.batch > 1 and systems.batch_sizes:
            sizes = systems.batch_sizes
            throughput["writer_batches"] = {"calls": len(sizes), "conversations": sum(sizes),
                                            "mean_size": round(sum(sizes) / len(sizes), 2)}
        if digest := systems.reading():
            throughput["digest"] = digest
        return systems.embedder
    finally:
        bar.close()
        systems.close()


def run_one(item: Item, name: str, llm: str, runner, gold: list[tuple[int, int]], judge) -> AnswerRecord:
    rec = AnswerRecord(system=name, llm=llm, item=item.id, suite=item.suite, doc_id=item.doc_id, label=item.label,
                       impossible=item.impossible)
    try:
        run = runner.run(item)
    except Exception as exc:  # one failing item must not lose the run; it is counted and shown
        log.warning("%s on %s failed: %s", name, item.id, exc)
        rec.error = f"{type(exc).__name__}: {exc}"
        return rec
    a = run.answer
    rec.answer, rec.abstained, rec.seconds = a.text, a.abstained, round(run.seconds, 4)
    rec.timings = {k: round(v, 4) for k, v in a.timings}
    rec.citations = [[c.doc_id, c.start, c.end] for c in a.citations]
    rec.retrieved = [[s.doc_id, s.start, s.end] for s in run.retrieved]
    rec.context = [[s.doc_id, s.start, s.end] for s in run.context]
    rec.gold = [list(g) for g in gold]
    rec.metrics = score(item, run, gold)
    rec.verdict = run.label
    rec.units = [[u.start, u.end, round(u.score, 5)] for u in run.units]
    rec.scorer_coverage = scorer_coverage(run, gold) if run.scorers and gold else {}
    rec.unit_pr = unit_pr(run, gold)
    if judge is not None and not a.abstained:
        judge_one(judge, rec, [s.text for s in run.context])
    return rec


def gold_spans(ds: Suite, item: Item, store: Pipeline) -> list[tuple[int, int]]:
    """The item's gold evidence as spans of the stored document."""
    if item.pages:
        doc = store.document(item.doc_id)
        starts = [*doc.page_starts, len(doc.text)]
        return [(starts[p - 1], starts[p]) for p in item.pages if p < len(starts)]
    if not item.spans:
        return []
    return align_spans(ds.source_text(item.doc_id), store.document(item.doc_id).text, item.spans)


def answer_in_parts_phase(run: QARun, items: list[Item], lock: StoreLock, throughput: dict, notes: list[str],
                          part_main: Callable) -> None:
    """``--parts N``: the chunk index is built here, with every thread, before the parts load it; then the
    parts answer what is missing, each ``part_main(k, n, threads, {"run": ..., "subset": ...})`` in a fresh process."""
    if "chunk_baseline" in run.systems:
        with lock, Systems(["chunk_baseline"], run.store, "extractive", base=run.config,
                           progress=run.progress) as built:
            if stats := built.baseline_index():
                throughput["baseline_index"] = stats
    # kept now: a run that fails in a part and is continued still reports this invocation's ingest
    keep_measured(run.out_dir / THROUGHPUT_FILE, {k: v for k, v in throughput.items() if k in ("ingest", "baseline_index")})
    part = dataclasses.replace(run, progress=False, ingest=False, parts=1)
    threads = answer_in_parts(run.parts, items, run.systems, run.llm, run.out_dir,
                              lambda total: ProgressBar(total, f"{run.suite} ({run.llm}) in {run.parts} parts", run.progress),
                              part_main, {"run": part})
    if threads:
        notes.append(f"answered in {run.parts} processes at once (--parts {run.parts}), {threads} thread(s) each")
