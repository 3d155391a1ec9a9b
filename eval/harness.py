"""The evaluation harness: sectionrag against the chunked baseline (and ablations) on real data.

    python -m eval.harness --suite cuad --limit 20 --out runs/cuad --llm extractive --json
    sectionrag eval --suite all --out runs/all --json                 # the same, through the CLI

A question-answering suite (cuad, financebench, contractnli, synthea) runs in phases:

1. sample — the suite's items (``eval/datasets.py``; ``--limit`` takes a seeded sample across documents);
2. ingest — the documents the items need, into a store of its own (or ``--store``), through ``Pipeline.ingest``;
3. answer — every system on every item against that one store, embedder and answer writer
   (``eval/systems.py``), each answer recorded at once (``eval/records.py``, ``eval/runs.py``);
4. judge and score — the hallucination judge (``eval/judge/``) on the claims the text the system had does
   not support, the suite's metrics per answer (``eval/scoring.py``) and per system (``eval/aggregate.py``);
5. report — ``report.md``, ``report.html`` (PNG plots) and ``metrics.json`` (``eval/report.py``).

The ``faithbench`` suite reports the judge's agreement with human labels (``eval/judge/calibrate.py``).
Everything is measured through the public ``pipeline`` API.

Runs are resumable: each (system, writer, item) result is appended to ``OUT/items.jsonl`` as soon as
it exists and is not recomputed on a re-run, so a long run can be stopped and continued; the report
is rebuilt from every result there that belongs to the current sample.

A long run can be split: ``--shard K/N`` answers only the K-th of N parts of the sample (whole
documents per part, balanced by item count) and records them in ``OUT/items.shard-K-of-N.jsonl``.
The N parts can run at once, as processes on one machine or on several machines sharing the output
folder and store; the first part to take a lock beside the store ingests the whole sample's documents,
the others find them stored. A final run of the same
command without ``--shard`` reads every part, answers whatever is still missing, judges, measures
throughput and writes the report. ``--report-only`` writes the report from what is recorded so far
(the items every system has answered), answering nothing: an interim look at a run still going.
``--parts N`` does all of that in one command on one machine: it ingests and builds the baseline's
chunk index with every thread, deals what is left to answer into N parts (whole documents) and runs
them as processes at once, recording as the ``--shard K/N`` parts do (each with 1/N of the CPUs and its
own models in memory; one progress bar counts their answers), then reports. A part that
fails is named; what every part recorded is kept, and the same command continues.

``--batch N`` answers N questions at a time in one process: N worker threads take turns (one runs at a
time), and the answer writer's calls of all N are written together, one batched ``generate`` for the
local writer (``Pipeline.map_batched``), N concurrent requests for an OpenAI-compatible server. With
``[synthesize] local_dtype = "bfloat16"`` on an AMX CPU, batches of 4 answered FinanceBench questions
2.0 times as fast as float32 one at a time (docs/evaluation.md). Batches are made the same way every
time, so a run is reproducible for a given N; N = 1 (the default) answers exactly as ``sectionrag ask``
does. An answer's latency then includes the wait for its batch (the report says so).

``--config FILE`` evaluates a configuration of one's own (the TOML file ``sectionrag`` reads): every
pipeline row and the ablations start from it, and the report lists where it differs from the defaults.
The writer is the one ``--llm`` names, whatever the TOML's ``[synthesize] llm`` says.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import platform
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from eval.aggregate import aggregate
from eval.answering import QARun, answer, answer_in_parts_phase
from eval.args import DEFAULT_DATA, add_arguments, options, parse_shard, shard_text
from eval.datasets import QA_SUITES, SEED, SUITES, Item, Suite, load_suite, sample_items
from eval.judging import rejudge, score_records
from eval.records import AnswerRecord
from eval.runs import (
    ITEMS_FILE,
    SHARD_FILES,
    THROUGHPUT_FILE,
    items_file,
    keep_measured,
    load_records,
    machines_note,
    merge_parts,
    part_process_setup,
    record_part,
    run_part,
    shard_items,
    store_lock,
    write_records,
)
from eval.scoring import HEADLINE
from eval.systems import CHECK, VARIANTS
from eval.throughput import embedding_speed, encoder_speed, peak_rss_mb
from pipeline import (
    UNIT_SCORERS,
    IngestReport,
    Pipeline,
    PipelineConfig,
    StoreLock,
    cpu,
    trained_reader_available,
    trained_reader_documents,
)

__all__ = ["DEFAULT_DATA", "aggregate", "config_changes", "main", "parse_shard", "run_eval", "shard_items",
           "shard_text", "store_lock"]


def run_eval(suite: str, data_dir: Path, out_dir: Path, *, limit: int | None = None, llm: str = "local",
             systems: Sequence[str] | None = None, progress: bool = True, store: Path | None = None,
             store_root: Path | None = None, judge: str = "local", seed: int = SEED,
             shard: tuple[int, int] | None = None, config: PipelineConfig | None = None, batch: int = 1,
             report_only: bool = False, parts: int = 1, scorers: Sequence[str] | None = None,
             labels: Sequence[str] = ()) -> dict:
    """Runs one suite (or ``all``) and writes its report; returns what ``--json`` prints.

    ``{"suite", "systems": {name: metrics}, "report": "OUT/report.html", ...}``; for ``all`` the
    ``systems`` entry maps each system to its metrics per suite and ``suites`` holds each suite's result.
    ``store`` is an existing store holding the suite's documents (nothing is ingested into it);
    otherwise documents are ingested into ``store_root/<suite>`` (default ``OUT/stores``).
    ``shard=(K, N)`` answers only part K of N and writes no report (see the module docstring); it returns
    ``{"suite", "shard", "items", "answers", "recorded", "file", "seconds"}``.
    ``config`` is what the pipeline rows start from; ``batch`` answers that many questions at a time with the
    writer's calls batched. ``report_only`` answers nothing: the report covers the sampled items every system
    has an answer for in ``out_dir``. ``parts`` > 1 answers in that many processes at once, each a
    ``--shard K/N`` part with an equal share of the CPUs, then reports as the plain run does. ``scorers``
    are the evidence scorers compared on the ``sectionrag`` row's sections (default: all of
    ``pipeline.UNIT_SCORERS`` the checkout can run; ``()`` none). ``labels`` keeps only the items whose dataset
    label contains one of them (before sampling).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    _check_arguments(suite, data_dir, limit=limit, llm=llm, store=store, batch=batch)
    _check_modes(suite, shard=shard, report_only=report_only, parts=parts)
    out_dir.mkdir(parents=True, exist_ok=True)
    store_root = Path(store_root) if store_root else out_dir / "stores"
    config = (config or PipelineConfig()).replace(synthesize={"llm": llm})  # --llm wins over the TOML's
    trained = trained_reader_available(config)
    if scorers is None:
        scorers = [s for s in UNIT_SCORERS if s != "trained" or trained]
    _check_scorers(scorers, trained)
    if systems and "sectionrag-check" in systems and suite != "contractnli":
        raise ValueError("sectionrag-check decides ContractNLI hypotheses; use it with --suite contractnli")

    def default_systems(name: str) -> tuple[str, ...]:
        """The two headline systems, one ablation row per stage this checkout can switch off, and for ContractNLI
        the trained reader's verdicts."""
        from eval.systems import CHECK, available_systems

        return (*available_systems(), *([CHECK] if name == "contractnli" and trained else []))

    def qa_run(name: str, folder: Path, given_store: Path | None) -> QARun:
        return QARun(suite=name, data_dir=data_dir, out_dir=folder, limit=limit, llm=llm,
                     systems=tuple(systems or default_systems(name)), scorers=tuple(scorers),
                     progress=progress, store=Path(given_store) if given_store else store_root / name,
                     ingest=given_store is None and not report_only, staging=store_root / f"{name}-sources",
                     judge=judge, seed=seed, config=config, shard=shard, batch=batch, report_only=report_only,
                     parts=parts, labels=tuple(labels))

    if suite == "faithbench":
        return _run_faithbench(data_dir, out_dir, limit=limit)
    if suite != "all":
        return _run_qa(qa_run(suite, out_dir, store))
    t0 = time.perf_counter()
    results = {name: _run_qa(qa_run(name, out_dir / name, None)) for name in QA_SUITES}
    results["faithbench"] = _run_faithbench(data_dir, out_dir / "faithbench", limit=limit)
    return _summary(out_dir, results, llm=llm, limit=limit, seconds=time.perf_counter() - t0)


def _check_arguments(suite: str, data_dir: Path, *, limit, llm: str, store, batch: int) -> None:
    if suite != "all" and suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; use one of {', '.join(SUITES)} or all")
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    if not data_dir.is_dir():
        raise ValueError(f"data folder {data_dir} does not exist; pass --data DIR (laid out like ../shared/data)")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if batch > 1 and llm == "extractive":
        raise ValueError("--batch batches the answer writer's calls, and the extractive writer makes none; "
                         "use --llm local or --llm openai, or leave --batch out")
    if store is not None and suite == "all":
        raise ValueError("--store names one suite's store; with --suite all use --store-root")


def _check_scorers(scorers: Sequence[str], trained: bool) -> None:
    unknown = [s for s in scorers if s not in UNIT_SCORERS]
    if unknown:
        raise ValueError(f"unknown evidence scorer(s) {', '.join(unknown)}; use {', '.join(UNIT_SCORERS)} or none")
    if "trained" in scorers and not trained:
        raise ValueError("the trained scorer needs the trained reader's weights (data/reader, or [summarize] "
                         "reader_weights); leave it out of --scorers")


def _check_modes(suite: str, *, shard, report_only: bool, parts: int) -> None:
    """--shard, --parts and --report-only: each on its own, for one question-answering suite."""
    qa = ", ".join(QA_SUITES)
    if shard is not None:
        k, n = shard
        if not 1 <= k <= n:
            raise ValueError(f"shard {k}/{n}: need 1 <= K <= N")
        if suite not in QA_SUITES:
            raise ValueError(f"--shard splits one question-answering suite ({qa}), not {suite}")
        if report_only:
            raise ValueError("--report-only answers nothing and --shard only answers: use one of them")
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    if parts > 1 and shard is not None:
        raise ValueError("--parts runs every part itself and --shard runs one part: use one of them")
    if parts > 1 and report_only:
        raise ValueError("--report-only answers nothing and --parts only splits the answering: use one of them")
    if parts > 1 and suite == "faithbench":
        raise ValueError("--parts splits the answering of question-answering suites; faithbench answers nothing")
    if report_only and suite not in QA_SUITES:
        raise ValueError(f"--report-only reports one question-answering suite's recorded answers ({qa}), not {suite}")


# -- a question-answering suite, in phases --------------------------------------------------------------
def _run_qa(run: QARun) -> dict:
    t_start = time.perf_counter()
    run.out_dir.mkdir(parents=True, exist_ok=True)
    ds = load_suite(run.suite, run.data_dir)
    pool, unseen = leave_out_trained(ds.items, run)
    trained_pool = pool
    if run.labels:
        pool = [it for it in pool if any(lab in it.label for lab in run.labels)]
        if not pool:
            raise ValueError(f"no {run.suite} item has a label containing {' or '.join(map(repr, run.labels))}")
    sample = sample_items(pool, run.limit, run.seed)  # 1. sample
    items = _part_of(sample, run)
    notes = list(ds.notes) + ([f"{len(ds.items) - len(trained_pool)} item(s) of {unseen} document(s) the trained "
                               "reader was trained on left out, for every system"] if unseen else []) + (
        [f"only items labelled {' or '.join(run.labels)}: {len(pool)}"] if run.labels else [])
    throughput: dict = {}
    lock = store_lock(run.store)
    if run.ingest:  # 2. ingest
        throughput["ingest"] = _ingest(run, ds, sample, lock, notes)
    if not Pipeline.is_store(run.store):
        raise ValueError(f"{run.store} holds no store; name the one the answers were made against with --store")
    with Pipeline(run.store, run.config) as store:
        items = _stored_items(run, store, items, notes, len(ds.notes))
        if run.parts > 1:
            answer_in_parts_phase(run, items, lock, throughput, notes, _part_main)
        done = load_records(run.out_dir)
        if run.report_only:  # an interim look at a long run: the items every system has answered
            items = _complete_items(run, items, done, notes)
        todo = [(it, name) for it in items for name in run.systems if run.key(name, it) not in done]
        embedder = answer(run, ds, store, todo, done, lock, throughput, notes) if todo else None  # 3. answer
        keys = [run.key(n, it) for it in items for n in run.systems]
        if run.shard is not None:  # judging leftovers, throughput and the report are the final, unsharded run's
            return _part_result(run, items, todo, done, keys, throughput, t_start)
        if rejudge(done, keys, store, run.judge, notes) or any(run.out_dir.glob(SHARD_FILES)):  # 4. judge
            write_records(run.out_dir / ITEMS_FILE, done.values())  # items.jsonl then holds every answer of the run
        if not run.report_only and (todo or not (run.out_dir / THROUGHPUT_FILE).exists()):
            throughput["embedding"] = embedding_speed(store, embedder)
            throughput["encoder"] = encoder_speed(store, items)
    records = {name: [done[run.key(name, it)] for it in items if run.key(name, it) in done] for name in run.systems}
    score_records(items, records)  # 4. score
    throughput["peak_rss_mb"] = peak_rss_mb() if todo else None
    merge_parts(run.out_dir, throughput)
    throughput = keep_measured(run.out_dir / THROUGHPUT_FILE, throughput, write=not run.report_only)
    return _report(run, ds, items, records, throughput, notes, t_start)  # 5. report


def _part_of(sample: list[Item], run: QARun) -> list[Item]:
    """The items this process answers: the sample, its ``--shard`` part, or what a ``--parts`` parent dealt it."""
    if run.subset is not None:
        wanted = set(run.subset)
        return [it for it in sample if it.id in wanted]
    return sample if run.shard is None else shard_items(sample, *run.shard)


def leave_out_trained(items: list[Item], run: QARun) -> tuple[list[Item], int]:
    """The suite's items without those whose document the trained reader was trained on, when the run measures
    the reader (a trained system, the trained scorer, or a configuration reading with it), for every system alike;
    and how many documents that left out."""
    measures = ("trained" in run.scorers or run.config.summarize.scorer == "trained" or CHECK in run.systems
                or bool({"span", "yesno"} & set(run.config.answers.typed))
                or any(VARIANTS.get(s, {}).get("summarize", {}).get("scorer") == "trained" for s in run.systems))
    seen = trained_reader_documents(run.config) if measures else frozenset()
    kept = [it for it in items if it.doc_id not in seen]
    return kept, len({it.doc_id for it in items} & seen)


def _ingest(run: QARun, ds: Suite, sample: list[Item], lock: StoreLock, notes: list[str]) -> dict:
    """Stores the sample's documents. Every part ingests the whole sample's sources: the first to take the
    lock stores them, the others and the final plain run find them stored (a part's own subset would be a
    different source unit for suites read as one bulk export, and be ingested again)."""
    with lock, Pipeline(run.store, run.config) as p:
        wanted = sample
        if ds.bulk and Pipeline.is_store(run.store):  # a bulk export's subset is a new source unit:
            have = set(p.documents())                   # stage only what the store lacks
            wanted = [it for it in sample if it.doc_id not in have]
        rep = (p.ingest(ds.sources(wanted, run.staging), progress=run.progress) if wanted
               else IngestReport(documents=0, sections=0, passages=0, pages=0, seconds=0.0, skipped=0))
    notes += [f"ingest failed for {f.path}: {f.error}" for f in rep.failed]
    fresh = rep.documents and rep.seconds
    already = len({it.doc_id for it in sample} - {it.doc_id for it in wanted})  # not handed to the ingester
    return {"documents": rep.documents, "pages": rep.pages, "passages": rep.passages, "seconds": rep.seconds,
            "skipped": rep.skipped + already, "docs_per_s": rep.documents / rep.seconds if fresh else None,
            "pages_per_s": rep.pages / rep.seconds if fresh else None}


def _stored_items(run: QARun, store: Pipeline, items: list[Item], notes: list[str], first_note: int) -> list[Item]:
    """The items whose document is in the store (the others are named in a note)."""
    stored = set(store.documents())
    missing = sorted({it.doc_id for it in items} - stored)
    if not missing:
        return items
    notes.append(f"{len(missing)} document(s) not in the store, their items skipped: {', '.join(missing[:5])}")
    kept = [it for it in items if it.doc_id in stored]
    if not kept:
        raise ValueError(f"none of the sampled {run.suite} items has its document in store {run.store}: "
                         + "; ".join(notes[first_note:]))
    return kept


def _complete_items(run: QARun, items: list[Item], done: dict[str, AnswerRecord], notes: list[str]) -> list[Item]:
    complete = [it for it in items if all(run.key(n, it) in done for n in run.systems)]
    if not complete:
        raise ValueError(f"--report-only: no sampled {run.suite} item has an answer from every system "
                         f"({', '.join(run.systems)}, writer {run.llm}) in {run.out_dir}")
    if len(complete) < len(items):
        notes.append(f"interim report (--report-only): {len(complete)} of {len(items)} sampled items have "
                     "every system's answer and are reported; the rest are not answered yet, and "
                     "throughput was not measured")
    return complete


def _part_main(k: int, n: int, threads: int, kwargs: dict) -> None:
    """One ``--parts`` process: the ``--shard K/N`` part of the dealt items, on its share of the CPUs."""
    _process_setup()
    part_process_setup(threads)
    run = dataclasses.replace(kwargs["run"], shard=(k, n), subset=tuple(kwargs["subset"]))
    run_part(k, n, lambda: _run_qa(run))


def _part_result(run: QARun, items: list[Item], todo: list, done: dict, keys: list[str], throughput: dict,
                 t_start: float) -> dict:
    part = {"suite": run.suite, "shard": f"{run.shard[0]}/{run.shard[1]}", "items": len(items), "answers": len(todo),
            "recorded": sum(k in done for k in keys), "file": str(items_file(run.out_dir, run.shard)),
            "peak_rss_mb": peak_rss_mb(), "seconds": round(time.perf_counter() - t_start, 1)}
    record_part(run.out_dir / f"throughput.shard-{run.shard[0]}-of-{run.shard[1]}.json", part, throughput)
    return part


# -- 5. report --------------------------------------------------------------------------------------------
def _report(run: QARun, ds: Suite, items: list[Item], records: dict[str, list[AnswerRecord]], throughput: dict,
            notes: list[str], t_start: float) -> dict:
    from eval.report import write_report

    every = [r for recs in records.values() for r in recs]
    sharded = sum(1 for r in every if r.shard)
    if sharded:
        notes.append(f"{sharded} answers were recorded by --shard runs (processes that may have shared CPUs): "
                     "their latencies include that sharing")
    if machines := machines_note(every):
        notes.append(machines)
    batched = [r.batch for r in every if (r.batch or 1) > 1]
    if batched:
        notes.append(f"{len(batched)} answers were written with --batch {', '.join(map(str, sorted(set(batched))))}: "
                     "questions answered that many at a time, the writer's calls batched; their latencies include "
                     "the wait for the batch")
    changes = config_changes(run.config)
    if changes:
        notes.append("configuration: " + "; ".join(f"{k} = {v!r}" for k, v in changes.items())
                     + " (the rest as the defaults)")
    result = {
        "suite": run.suite,
        "systems": {name: aggregate(run.suite, recs) for name, recs in records.items()},
        "report": str(run.out_dir / "report.html"), "metrics": str(run.out_dir / "metrics.json"),
        "llm": run.llm, "judge": run.judge, "limit": run.limit, "seed": run.seed,
        **({"labels": list(run.labels)} if run.labels else {}), "items": len(items),
        "items_total": len(ds.items), "data": str(run.data_dir), "store": str(run.store),
        "headline_metric": HEADLINE[run.suite], "throughput": throughput, "notes": notes,
        "seconds": round(time.perf_counter() - t_start, 1), "host": f"{platform.node()} ({cpu()})",
        "batch": run.batch, "config_changes": changes,
    }
    write_report(run.out_dir, result, records)
    return result


def config_changes(config: PipelineConfig) -> dict[str, object]:
    """``{"stage.field": value}`` wherever ``config`` differs from ``PipelineConfig()``, the writer aside
    (a run reports its ``llm`` on its own)."""
    default = PipelineConfig().replace(synthesize={"llm": config.synthesize.llm})
    out: dict[str, object] = {}
    for f in dataclasses.fields(config):
        mine, theirs = getattr(config, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(mine):
            for g in dataclasses.fields(mine):
                if getattr(mine, g.name) != getattr(theirs, g.name):
                    out[f"{f.name}.{g.name}"] = getattr(mine, g.name)
        elif mine != theirs:
            out[f.name] = mine
    return out


# -- faithbench and all -----------------------------------------------------------------------------------
def _run_faithbench(data_dir: Path, out_dir: Path, *, limit: int | None) -> dict:
    from eval.report import write_report

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        from eval.judge.calibrate import calibrate

        calib = calibrate(data_dir, limit=limit)
        note = []
    except Exception as exc:  # noqa: BLE001 - the report says why the judge's agreement is missing
        calib, note = None, [f"judge calibration unavailable ({type(exc).__name__}: {exc})"]
    result = {"suite": "faithbench", "systems": {}, "judge_agreement": calib, "report": str(out_dir / "report.html"),
              "metrics": str(out_dir / "metrics.json"), "limit": limit, "data": str(data_dir), "notes": note,
              "seconds": round(time.perf_counter() - t0, 1)}
    write_report(out_dir, result, {})
    return result


def _summary(out_dir: Path, results: dict[str, dict], *, llm: str, limit: int | None, seconds: float) -> dict:
    """``--suite all``: every suite's result, and each system's metrics per suite."""
    from eval.report import write_summary

    systems: dict[str, dict] = {}
    for suite, res in results.items():
        for name, met in res["systems"].items():
            systems.setdefault(name, {})[suite] = met
    result = {"suite": "all", "systems": systems, "suites": results, "report": str(out_dir / "report.html"),
              "metrics": str(out_dir / "metrics.json"), "llm": llm, "limit": limit, "seconds": round(seconds, 1)}
    write_summary(out_dir, result)
    return result


# -- command line ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(prog="python -m eval.harness", description=__doc__.splitlines()[0]))


def _process_setup() -> None:
    """What every harness process sets first: offline models, quiet warnings, log lines on stderr."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _process_setup()
    out = sys.stdout
    terminated = []

    def on_term(signum, frame):  # SIGTERM stops the run the way Ctrl-C does: every answer recorded is kept
        terminated.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = run_eval(**options(args))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"eval: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        how = "terminated" if terminated else "interrupted"
        print(f"eval: {how}; results so far are in {args.out}, re-run to continue", file=sys.stderr)
        return 143 if terminated else 130
    if args.json:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    elif "shard" in result:
        out.write(shard_text(result) + "\n")
    else:
        out.write(_headline_text(result) + f"\nreport: {result['report']}\n")
    return 0


def _headline_text(result: dict) -> str:
    from eval.report import headline_rows

    return "\n".join("\t".join(str(c) for c in row) for row in headline_rows(result))


if __name__ == "__main__":
    sys.exit(main())
