"""The evaluation harness: sectionrag against the chunked baseline (and ablations) on real data.

    python -m eval.harness --suite cuad --limit 20 --out runs/cuad --llm extractive --json
    sectionrag eval --suite all --out runs/all --json                 # the same, through the CLI

For a question-answering suite (cuad, financebench, contractnli, synthea) it loads the items
(``eval/datasets.py``; ``--limit`` takes a seeded sample across documents), ingests the documents the
items need into a store of its own (or uses ``--store``), runs every system on every item against
that one store, embedder and answer writer (``eval/systems.py``), scores each answer
(``eval/scoring.py``), asks the hallucination judge (``eval/judge.py``) which claims the text the
system had does not support, and writes ``report.md``, ``report.html`` (PNG plots) and
``metrics.json`` (``eval/report.py``). The ``faithbench`` suite reports the judge's agreement with
human labels (``eval/calibrate_judge.py``).

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
local writer (``graphs.llm.ChatBatcher``), N concurrent requests for an OpenAI-compatible server. With
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
import resource
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from eval import metrics
from eval.datasets import QA_SUITES, SEED, SUITES, Item, align_spans, load_suite, sample_items
from eval.scoring import HEADLINE, QUALITY, run_from_record, score
from pipeline.host import cpu

log = logging.getLogger("eval")

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ITEMS_FILE = "items.jsonl"
SHARD_FILES = "items.shard-*-of-*.jsonl"
PART_FILES = "throughput.shard-*-of-*.json"


def _items_file(out_dir: Path, shard: tuple[int, int] | None) -> Path:
    """Where a run (or its ``--shard K/N`` part) records its answers, one line each."""
    return out_dir / (ITEMS_FILE if shard is None else f"items.shard-{shard[0]}-of-{shard[1]}.jsonl")


def run_eval(suite: str, data_dir: Path, out_dir: Path, *, limit: int | None = None, llm: str = "local",
             systems: Sequence[str] | None = None, progress: bool = True, store: Path | None = None,
             store_root: Path | None = None, judge: str = "local", seed: int = SEED,
             shard: tuple[int, int] | None = None, config=None, batch: int = 1, report_only: bool = False,
             parts: int = 1) -> dict:
    """Runs one suite (or ``all``) and writes its report; returns what ``--json`` prints.

    ``{"suite", "systems": {name: metrics}, "report": "OUT/report.html", ...}``; for ``all`` the
    ``systems`` entry maps each system to its metrics per suite and ``suites`` holds each suite's result.
    ``store`` is an existing store holding the suite's documents (nothing is ingested into it);
    otherwise documents are ingested into ``store_root/<suite>`` (default ``OUT/stores``).
    ``shard=(K, N)`` answers only part K of N and writes no report (see the module docstring); it returns
    ``{"suite", "shard", "items", "answers", "recorded", "file", "seconds"}``.
    ``config`` (a ``PipelineConfig``) is what the pipeline rows start from; ``batch`` answers that many
    questions at a time with the writer's calls batched (see the module docstring). ``report_only``
    answers nothing: the report covers the sampled items every system has an answer for in ``out_dir``.
    ``parts`` > 1 answers in that many processes at once, each a ``--shard K/N`` part with an equal share
    of the CPUs, then reports as the plain run does (see the module docstring).
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
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
    if shard is not None:
        k, n = shard
        if not 1 <= k <= n:
            raise ValueError(f"shard {k}/{n}: need 1 <= K <= N")
        if suite not in QA_SUITES:
            raise ValueError(f"--shard splits one question-answering suite ({', '.join(QA_SUITES)}), not {suite}")
        if report_only:
            raise ValueError("--report-only answers nothing and --shard only answers: use one of them")
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    if parts > 1:
        if shard is not None:
            raise ValueError("--parts runs every part itself and --shard runs one part: use one of them")
        if report_only:
            raise ValueError("--report-only answers nothing and --parts only splits the answering: use one of them")
        if suite == "faithbench":
            raise ValueError("--parts splits the answering of question-answering suites; faithbench answers nothing")
    if report_only and suite not in QA_SUITES:
        raise ValueError(f"--report-only reports one question-answering suite's recorded answers "
                         f"({', '.join(QA_SUITES)}), not {suite}")
    out_dir.mkdir(parents=True, exist_ok=True)
    store_root = Path(store_root) if store_root else out_dir / "stores"
    if not systems:  # the two headline systems and one ablation row per stage this checkout can switch off
        from eval.systems import available_systems

        systems = available_systems()
    names = list(systems)
    if suite == "all":
        return _run_all(data_dir, out_dir, limit=limit, llm=llm, systems=names, progress=progress,
                        store_root=store_root, judge=judge, seed=seed, config=config, batch=batch, parts=parts)
    if suite == "faithbench":
        return _run_faithbench(data_dir, out_dir, limit=limit)
    return _run_qa(suite, data_dir, out_dir, limit=limit, llm=llm, systems=names, progress=progress,
                   store=Path(store) if store else store_root / suite, ingest=store is None and not report_only,
                   staging=store_root / f"{suite}-sources", judge=judge, seed=seed, shard=shard, config=config,
                   batch=batch, report_only=report_only, parts=parts)


# -- question answering suites ------------------------------------------------------------------------
def _run_qa(suite: str, data_dir: Path, out_dir: Path, *, limit: int | None, llm: str, systems: list[str],
            progress: bool, store: Path, ingest: bool, staging: Path, judge: str, seed: int,
            shard: tuple[int, int] | None = None, config=None, batch: int = 1, report_only: bool = False,
            parts: int = 1, subset: Sequence[str] | None = None) -> dict:
    from eval.report import write_report
    from eval.systems import make_systems
    from pipeline import Pipeline
    from pipeline.config import PipelineConfig
    from pipeline.store import DB_NAME, SectionStore
    from pipeline.types import IngestReport

    t_start = time.perf_counter()
    config = (config or PipelineConfig()).replace(synthesize={"llm": llm})  # --llm wins over the TOML's
    out_dir.mkdir(parents=True, exist_ok=True)  # a suite's own folder under an `all` run
    ds = load_suite(suite, data_dir)
    sample = sample_items(ds.items, limit, seed)
    if subset is not None:  # a --parts process: the items its parent dealt it
        wanted_ids = set(subset)
        items = [it for it in sample if it.id in wanted_ids]
    else:
        items = sample if shard is None else shard_items(sample, *shard)
    throughput: dict = {}
    notes = list(ds.notes)
    lock = _StoreLock(store)
    if ingest:
        # every part ingests the whole sample's sources: the first to take the lock stores them, the others
        # and the final plain run find them stored (a part's own subset would be a different source unit
        # for suites read as one bulk export, and be ingested again)
        with lock, Pipeline(store, config) as p:
            wanted = sample
            if ds.bulk and (store / DB_NAME).exists():  # a bulk export's subset is a new source unit:
                have = set(p.documents())                 # stage only what the store lacks
                wanted = [it for it in sample if it.doc_id not in have]
            rep = (p.ingest(ds.sources(wanted, staging), progress=progress) if wanted
                   else IngestReport(documents=0, sections=0, passages=0, pages=0, seconds=0.0, skipped=0))
        if rep.failed:
            notes += [f"ingest failed for {f.path}: {f.error}" for f in rep.failed]
        fresh = rep.documents
        already = len({it.doc_id for it in sample} - {it.doc_id for it in wanted})  # not handed to the ingester
        throughput["ingest"] = {"documents": rep.documents, "pages": rep.pages, "passages": rep.passages,
                                "seconds": rep.seconds, "skipped": rep.skipped + already,
                                "docs_per_s": rep.documents / rep.seconds if fresh and rep.seconds else None,
                                "pages_per_s": rep.pages / rep.seconds if fresh and rep.seconds else None}
    if report_only and not (store / DB_NAME).exists():
        raise ValueError(f"--report-only: {store} holds no store; name the one the answers were made against with --store")
    st = SectionStore(store)
    stored = set(st.document_ids())
    missing = sorted({it.doc_id for it in items} - stored)
    if missing:
        notes.append(f"{len(missing)} document(s) not in the store, their items skipped: {', '.join(missing[:5])}")
        items = [it for it in items if it.doc_id in stored]
        if not items:
            raise ValueError(f"none of the sampled {suite} items has its document in store {store}: "
                             + "; ".join(notes[len(ds.notes):]))

    if parts > 1:
        # the chunk index is built here, with every thread, before the parts load it
        if "chunk_baseline" in systems and (stats := _build_baseline_index(store, config, progress, lock)):
            throughput["baseline_index"] = stats
        # kept now: a run that fails in a part and is continued still reports this invocation's ingest
        _keep_measured(out_dir / "throughput.json", {k: v for k, v in throughput.items() if k in ("ingest", "baseline_index")})
        threads = _answer_in_parts(parts, items, systems, llm, out_dir, progress, dict(
            suite=suite, data_dir=data_dir, out_dir=out_dir, limit=limit, llm=llm, systems=systems, progress=False,
            store=store, ingest=False, staging=staging, judge=judge, seed=seed, config=config, batch=batch))
        if threads:
            notes.append(f"answered in {parts} processes at once (--parts {parts}), {threads} thread(s) each")
    done = _load_records(out_dir)
    if report_only:  # an interim look at a long run: the items every system has answered, nothing answered now
        complete = [it for it in items if all(_key(n, llm, it.id) in done for n in systems)]
        if not complete:
            st.close()
            raise ValueError(f"--report-only: no sampled {suite} item has an answer from every system "
                             f"({', '.join(systems)}, writer {llm}) in {out_dir}")
        if len(complete) < len(items):
            notes.append(f"interim report (--report-only): {len(complete)} of {len(items)} sampled items have "
                         "every system's answer and are reported; the rest are not answered yet, and "
                         "throughput was not measured")
        items = complete
    todo = [(it, name) for it in items for name in systems if _key(name, llm, it.id) not in done]
    items_file = _items_file(out_dir, shard)
    embedder = None
    if todo:
        with lock:  # the baseline's chunk index is built on first use: one process builds it, the others load it
            runners = make_systems(systems, store, llm, base=config, progress=progress, batch=batch)
        if "chunk_baseline" in runners and (stats := _index_stats(runners["chunk_baseline"])):
            throughput["baseline_index"] = stats
        the_judge, judge_note = _make_judge(judge)
        if judge_note:
            notes.append(judge_note)
        golds: dict[str, list[tuple[int, int]]] = {}
        bar = _bar(len(todo), f"{suite} ({llm})" + (f" shard {shard[0]}/{shard[1]}" if shard else ""), progress)
        asked: set[tuple[str, str]] = set()  # (system, document) pairs this process has answered on
        machine = cpu()
        with open(items_file, "a") as fh:
            def answer(it: Item, name: str) -> None:
                if it.id not in golds:
                    golds[it.id] = _gold_spans(ds, it, st)
                rec = _run_one(it, name, llm, runners[name], golds[it.id], the_judge)
                # the first question a process answers on a document pays for what later ones find cached
                # (the document's sentence vectors, its text): users asking once per document see this latency
                rec["first_on_doc"] = (name, it.doc_id) not in asked
                asked.add((name, it.doc_id))
                rec["cpu"] = machine
                if shard is not None:
                    rec["shard"] = f"{shard[0]}/{shard[1]}"
                if batch > 1:
                    rec["batch"] = batch
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                fh.flush()
                done[_key(name, llm, it.id)] = rec
                bar.update(1)

            batcher = _batcher(runners)
            if batcher is None:
                for it, name in todo:
                    answer(it, name)
            else:
                batcher.map(lambda task: answer(*task), todo)
                throughput["writer_batches"] = _batch_sizes(batcher.batches)
        bar.close()
        embedder = next((r.pipeline.embedder for r in runners.values() if hasattr(r, "pipeline")), None)
        digest = _digest_reading(runners)
        if digest:
            throughput["digest"] = digest
        for r in runners.values():
            r.close()
    keys = [_key(n, llm, it.id) for it in items for n in systems]
    if shard is not None:  # judging leftovers, throughput and the report are the final, unsharded run's
        st.close()
        part = {"suite": suite, "shard": f"{shard[0]}/{shard[1]}", "items": len(items), "answers": len(todo),
                "recorded": sum(k in done for k in keys), "file": str(items_file),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "seconds": round(time.perf_counter() - t_start, 1)}
        _record_part(out_dir / f"throughput.shard-{shard[0]}-of-{shard[1]}.json", part, throughput)
        return part
    rejudged = _rejudge(done, keys, st, judge, notes)
    if rejudged or any(out_dir.glob(SHARD_FILES)):  # items.jsonl then holds every answer of the run
        _write_records(out_dir / ITEMS_FILE, done)
    if not report_only and (todo or not (out_dir / "throughput.json").exists()):
        throughput["embedding"] = _embedding_speed(st, embedder)
        throughput["encoder"] = _encoder_speed(st, items)
    st.close()
    sharded = sum(1 for k in keys if k in done and "shard" in done[k])
    if sharded:
        notes.append(f"{sharded} answers were recorded by --shard runs (processes that may have shared CPUs): "
                     "their latencies include that sharing")
    records = {name: [done[_key(name, llm, it.id)] for it in items if _key(name, llm, it.id) in done]
               for name in systems}
    machines = _machines(records)
    if machines:
        notes.append(machines)
    by_id = {it.id: it for it in items}
    for recs in records.values():  # metrics are recomputed from the recorded answers: old runs get new metrics
        for rec in recs:
            if "error" not in rec:
                rec["metrics"] = score(by_id[rec["item"]], run_from_record(rec), [tuple(g) for g in rec["gold"]])
    # peak memory is of a process that answered: a run that only reports keeps the earlier figure, or has
    # none (the parts of a sharded run print their own, ``peak_rss_mb`` in their --json)
    throughput["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if todo else None
    _merge_parts(out_dir, throughput)
    throughput = _keep_measured(out_dir / "throughput.json", throughput, write=not report_only)
    result = {
        "suite": suite,
        "systems": {name: aggregate(suite, recs) for name, recs in records.items()},
        "report": str(out_dir / "report.html"),
        "metrics": str(out_dir / "metrics.json"),
        "llm": llm, "judge": judge, "limit": limit, "seed": seed, "items": len(items),
        "items_total": len(ds.items), "data": str(data_dir), "store": str(store),
        "headline_metric": HEADLINE[suite], "throughput": throughput, "notes": notes,
        "seconds": round(time.perf_counter() - t_start, 1), "host": f"{platform.node()} ({cpu()})",
        "batch": batch, "config_changes": config_changes(config),
    }
    batched = sum(1 for recs in records.values() for r in recs if r.get("batch", 1) > 1)
    if batched:
        sizes = sorted({r["batch"] for recs in records.values() for r in recs if r.get("batch", 1) > 1})
        result["notes"].append(f"{batched} answers were written with --batch {', '.join(map(str, sizes))}: "
                               "questions answered that many at a time, the writer's calls batched; their "
                               "latencies include the wait for the batch")
    if result["config_changes"]:
        result["notes"].append("configuration: " + "; ".join(f"{k} = {v!r}" for k, v in result["config_changes"].items())
                               + " (the rest as the defaults)")
    write_report(out_dir, result, records)
    return result


def config_changes(config) -> dict[str, object]:
    """``{"stage.field": value}`` wherever ``config`` differs from ``PipelineConfig()``, the writer aside
    (a run reports its ``llm`` on its own)."""
    from pipeline.config import PipelineConfig

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


def _batcher(runners: dict):
    """The ``ChatBatcher`` the systems share, if the run batches."""
    from graphs.llm import ChatBatcher

    return next((r.writer for r in runners.values() if isinstance(getattr(r, "writer", None), ChatBatcher)), None)


def _batch_sizes(sizes: list[int]) -> dict:
    return {"calls": len(sizes), "conversations": sum(sizes),
            "mean_size": round(sum(sizes) / len(sizes), 2) if sizes else None}


def _keep_measured(path: Path, now: dict, write: bool = True) -> dict:
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


def _record_part(path: Path, part: dict, throughput: dict) -> None:
    """What a ``--shard`` part measured, for the final plain run's report. A resumed part that answered
    nothing new keeps the file of the invocation that did."""
    if not part["answers"] and path.exists():
        return
    path.write_text(json.dumps({**throughput, "shard": part["shard"], "answers": part["answers"],
                                "peak_rss_mb": part["peak_rss_mb"], "seconds": part["seconds"]}))


def _merge_parts(out_dir: Path, throughput: dict) -> None:
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


def _machines(records: dict[str, list[dict]]) -> str | None:
    """A note when the answers came from more than one CPU (or some do not say), else None."""
    counts = Counter(r.get("cpu") for recs in records.values() for r in recs)
    if len(counts) < 2:
        return None
    named = ", ".join(f"{name} ({n})" for name, n in counts.most_common() if name)
    note = f"answers came from more than one machine: {named}"
    if counts.get(None):
        note += f"; {counts[None]} recorded before the harness noted the CPU"
    return note + ". In bfloat16 the kernels round differently on different CPUs, so a greedy answer can differ"


def _key(system: str, llm: str, item_id: str) -> str:
    return f"{system}|{llm}|{item_id}"


def _load_records(out_dir: Path) -> dict[str, dict]:
    """Every recorded answer in ``out_dir``: the shards' files first, then ``items.jsonl``, which the
    unsharded run rewrites with every record it holds (so its copy of a record is the latest)."""
    out: dict[str, dict] = {}
    for path in [*sorted(out_dir.glob(SHARD_FILES)), out_dir / ITEMS_FILE]:
        if not path.exists():
            continue
        with open(path) as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed run: that item is simply run again
                out[_key(rec["system"], rec["llm"], rec["item"])] = rec
    return out


def _build_baseline_index(store: Path, config, progress: bool, lock: _StoreLock) -> dict | None:
    """Opens (building it if needed) the chunk index the baseline rows will load; its build figures."""
    from eval.systems import make_systems

    with lock:
        runner = make_systems(["chunk_baseline"], store, "extractive", base=config, progress=progress)["chunk_baseline"]
    runner.close()
    return _index_stats(runner)


def _index_stats(runner) -> dict | None:
    """The baseline's chunk-index build figures, if opening it built the index."""
    b = runner.baseline.build_stats
    return {**b, "chunks_per_s": b["embedded"] / b["seconds"] if b["seconds"] else None} if b else None


def _answer_in_parts(n: int, items: Sequence[Item], systems: Sequence[str], llm: str, out_dir: Path,
                     progress: bool, qa_kwargs: dict) -> int:
    """Answers what ``out_dir`` lacks in ``n`` processes at once, part K recording into the ``--shard K/N``
    part's file; returns the threads each had (0 when nothing was left to answer). Raises, naming the parts, if any failed:
    what the others recorded is kept, and the same command continues the run."""
    import multiprocessing
    import multiprocessing.connection

    done = _load_records(out_dir)
    pending = [it for it in items if any(_key(name, llm, it.id) not in done for name in systems)]
    todo = sum(1 for it in pending for name in systems if _key(name, llm, it.id) not in done)
    if not todo:
        return 0
    # what is left is dealt out (whole documents, as --shard deals the sample), so a continued run's parts
    # stay even however far each got before
    dealt = {k: [it.id for it in shard_items(pending, k, n)] for k in range(1, n + 1)}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cpus // n)
    ends = {_items_file(out_dir, (k, n)): 0 for k in range(1, n + 1)}
    for f in ends:  # the answers recorded before this run are not counted
        with contextlib.suppress(OSError):
            ends[f] = f.stat().st_size

    def new_answers() -> int:
        """Lines the parts appended since the last look (each part writes one line per answer)."""
        count = 0
        for f, end in ends.items():
            with contextlib.suppress(OSError), open(f, "rb") as fh:
                fh.seek(end)
                data = fh.read()
                ends[f] = end + len(data)
                count += data.count(b"\n")
        return count

    # spawn, not fork: each part loads its own models and torch threads into a fresh interpreter
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_part_main, args=(k, n, threads, {**qa_kwargs, "subset": dealt[k]}),
                         name=f"eval part {k}/{n}") for k in range(1, n + 1) if dealt[k]]
    bar = _bar(todo, f"{qa_kwargs['suite']} ({llm}) in {n} parts", progress)
    try:
        for p in procs:
            p.start()
        while alive := [p.sentinel for p in procs if p.is_alive()]:
            multiprocessing.connection.wait(alive, timeout=2.0)
            bar.update(new_answers())
    except KeyboardInterrupt:  # the parts got the same interrupt: let them stop at an answer's end
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        raise
    finally:
        bar.close()
    failed = [f"{p.name} ({_exit_text(p.exitcode)})" for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{', '.join(failed)} failed (the part's own error is above); the answers every part "
                           f"recorded are kept in {out_dir}: run the same command again to continue")
    return threads


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exit code {code}"


def _part_main(k: int, n: int, threads: int, qa_kwargs: dict) -> None:
    """One ``--parts`` process: the ``--shard K/N`` part, on its share of the CPUs."""
    _process_setup()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()  # the parent's bar counts every part's answers
    try:
        with contextlib.redirect_stdout(sys.stderr):
            _run_qa(**qa_kwargs, shard=(k, n))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the parent names the part; this says what went wrong
        print(f"eval: part {k}/{n}: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


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


class _StoreLock:
    """An exclusive lock beside ``store`` (re-entrant within a process): shard processes ingest into one
    store, and build the baseline's chunk index, one at a time."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.path = store.parent / f".{store.name}.eval-lock"
        self._fh = None
        self._depth = 0

    def __enter__(self) -> _StoreLock:
        import fcntl

        if self._depth == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a")
            try:
                fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # say why nothing happens: a large store's chunk index takes many minutes
                print(f"eval: waiting for {self.path}: another process holds it (ingesting into {self.store}, "
                      "or building or loading the baseline's chunk index)", file=sys.stderr, flush=True)
                fcntl.flock(self._fh, fcntl.LOCK_EX)
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fh is not None:
            self._fh.close()  # closing releases the lock
            self._fh = None


def _gold_spans(ds, item: Item, store) -> list[tuple[int, int]]:
    """The item's gold evidence as spans of the stored document."""
    if item.pages:
        doc = store.document(item.doc_id)
        starts = [*doc.page_starts, len(doc.text)]
        return [(starts[p - 1], starts[p]) for p in item.pages if p < len(starts)]
    if not item.spans:
        return []
    return align_spans(ds.source_text(item.doc_id), store.document_text(item.doc_id), item.spans)


def _run_one(item: Item, name: str, llm: str, runner, gold: list[tuple[int, int]], judge) -> dict:
    rec: dict = {"system": name, "llm": llm, "item": item.id, "suite": item.suite, "doc_id": item.doc_id,
                 "label": item.label, "impossible": item.impossible}
    try:
        run = runner.run(item.question, [item.doc_id])
    except Exception as exc:  # one failing item must not lose the run; it is counted and shown
        log.warning("%s on %s failed: %s", name, item.id, exc)
        rec["error"] = f"{type(exc).__name__}: {exc}"
        return rec
    a = run.answer
    rec.update({
        "answer": a.text, "abstained": a.abstained, "seconds": round(run.seconds, 4),
        "timings": {k: round(v, 4) for k, v in a.timings},
        "citations": [[c.doc_id, c.start, c.end] for c in a.citations],
        "retrieved": [[s.doc_id, s.start, s.end] for s in run.retrieved],
        "context": [[s.doc_id, s.start, s.end] for s in run.context],
        "gold": [list(g) for g in gold],
        "metrics": score(item, run, gold),
    })
    if judge is not None and not a.abstained:
        try:
            j = judge.judge(a.text, None, [s.text for s in run.context])
            rec["judge"] = {"claims": list(j.claims), "unsupported": [bool(u) for u in j.unsupported],
                            "scores": [round(float(s), 4) for s in j.scores]}
        except Exception as exc:
            rec["judge_error"] = f"{type(exc).__name__}: {exc}"
    return rec


def _rejudge(done: dict[str, dict], keys: list[str], store, kind: str, notes: list[str]) -> bool:
    """Judges answers recorded while the judge was unavailable (their context is re-read from the store);
    True when any record changed."""
    pending = [k for k in keys if k in done and "error" not in done[k] and not done[k]["abstained"]
               and "judge" not in done[k]]
    if not pending:
        return False
    judge, note = _make_judge(kind)
    if judge is None:
        if note not in notes:
            notes.append(note)
        return False
    texts: dict[str, str] = {}
    for k in pending:
        rec = done[k]
        sources = []
        for doc_id, s, e in rec["context"]:
            if doc_id not in texts:
                texts[doc_id] = store.document_text(doc_id)
            sources.append(texts[doc_id][s:e])
        try:
            j = judge.judge(rec["answer"], None, sources)
            rec["judge"] = {"claims": list(j.claims), "unsupported": [bool(u) for u in j.unsupported],
                            "scores": [round(float(x), 4) for x in j.scores]}
            rec.pop("judge_error", None)
        except Exception as exc:
            rec["judge_error"] = f"{type(exc).__name__}: {exc}"
    return True


def _write_records(path: Path, done: dict[str, dict]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        for rec in done.values():
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _make_judge(kind: str):
    try:
        from eval.judge import make_judge

        judge = make_judge(kind)
        if hasattr(judge, "warm_up"):
            judge.warm_up()  # a judge without its weights says so once, not once per answer
        return judge, None
    except Exception as exc:  # the judge is a separate component; without it the rest is still measured
        return None, f"hallucination judge unavailable ({type(exc).__name__}: {exc}); hallucination rate not measured"


ENCODER_SECTIONS = 4
ENCODER_MAX_TOKENS = 16384


def _embedding_speed(store, emb=None, n: int = 128) -> dict:
    """Passages embedded per second by the systems' shared MiniLM (stored passage texts, batch as
    configured); one is loaded as the pipeline configures it when this run answered nothing."""
    passages = list(store.passages_by_rowid(range(1, n + 1)).values())
    if not passages:
        return {"passages_per_s": None}
    if emb is None:
        from encoders.embedder import Embedder
        from pipeline.config import PipelineConfig

        cfg = PipelineConfig().index
        emb = Embedder(cfg.embedder or None, batch_size=cfg.embed_batch, cache_size=cfg.embed_cache)
    emb.encode([passages[0].text])  # warm
    t0 = time.perf_counter()
    emb.encode([p.text for p in passages])
    dt = time.perf_counter() - t0
    return {"passages": len(passages), "seconds": round(dt, 3), "passages_per_s": len(passages) / dt}


def _digest_reading(runners: dict) -> dict:
    """Per pipeline system, what its long encoder read for the digest in this process: section tokens
    (each section once, then cached), seconds and tokens/s. Empty when no system reads sections."""
    out = {}
    for name, r in runners.items():
        reader = getattr(getattr(r, "pipeline", None), "_reader", None)
        if reader is not None and reader.tokens_read:
            out[name] = {"tokens": reader.tokens_read, "seconds": round(reader.seconds, 3),
                         "tokens_per_s": reader.tokens_read / reader.seconds if reader.seconds else None}
    return out


def _encoder_speed(store, items: Sequence[Item], sections: int = ENCODER_SECTIONS) -> dict:
    """Tokens per second of the long sparse encoder reading this suite's sections whole, each with its
    question as global tokens: the longest stored section of each of the first documents the run asks about
    (CPU threads as the process has them; sections past ``ENCODER_MAX_TOKENS`` are cut there)."""
    from encoders.long_encoder import LongEncoder

    picked: dict[str, tuple[str, str]] = {}  # document → (its longest section's text, the first question on it)
    for it in items:
        if len(picked) == sections:
            break
        if it.doc_id not in picked and (secs := store.sections(it.doc_id)):
            picked[it.doc_id] = (max(secs, key=lambda s: len(s.text)).text, it.question)
    note = ("the long sparse encoder (kernels' blocked CPU backend) reading whole sections with the question as "
            "global tokens; the digest in answers reads each section once without it (throughput 'digest')")
    if not picked:
        return {"tokens_per_s": None, "note": note}
    enc = LongEncoder(max_tokens=ENCODER_MAX_TOKENS)
    enc.encode("warm up", query="warm up")
    tokens, truncated, t0 = [], 0, time.perf_counter()
    for text, question in picked.values():
        out = enc.encode(text, query=question)
        tokens.append(len(out.token_embeddings))
        truncated += out.truncated
    dt = time.perf_counter() - t0
    return {"tokens_per_s": sum(tokens) / dt if dt else None, "sections": len(picked), "tokens": sum(tokens),
            "longest_tokens": max(tokens), "truncated": truncated, "seconds": round(dt, 3), "note": note}


# -- aggregation --------------------------------------------------------------------------------------
def aggregate(suite: str, records: list[dict]) -> dict:
    """One system's metrics on one suite: means with bootstrap 95% CIs over items."""
    ok = [r for r in records if "error" not in r]
    m = lambda key: metrics.mean_ci(r["metrics"].get(key) for r in ok)  # noqa: E731
    judged = [r for r in ok if "judge" in r]
    claims = [len(r["judge"]["claims"]) for r in judged]
    unsupported = [sum(r["judge"]["unsupported"]) for r in judged]
    per_answer = [u / c for u, c in zip(unsupported, claims) if c]
    out = {
        "items": len(records), "errors": len(records) - len(ok),
        "answered": sum(not r["abstained"] for r in ok), "abstained": sum(r["abstained"] for r in ok),
        "quality": {k: m(k) for k in QUALITY[suite]},
        "headline": {"metric": HEADLINE[suite], **m(HEADLINE[suite])},
        "hallucination_rate": metrics.ratio_ci(unsupported, claims),
        "hallucination_rate_per_answer": metrics.mean_ci(per_answer),
        "judged_answers": len(judged),
        "retrieval": {"recall_at_k": m("retrieval_hit"), "evidence_coverage": m("evidence_coverage"),
                      "context_coverage": m("context_coverage"), "context_chars": m("context_chars")},
        "citations": {"precision": m("citation_precision"), "char_precision": m("citation_char_precision"),
                      "recall": m("citation_recall")},
        "abstention": metrics.precision_recall([r["abstained"] for r in ok], [r["impossible"] for r in ok]),
        "latency_s": {**metrics.percentiles(r["seconds"] for r in ok),
                      "mean": sum(r["seconds"] for r in ok) / len(ok) if ok else None},
        # answers that were a process's first on their document (records older than this flag have none)
        "latency_first_on_doc_s": {**metrics.percentiles(r["seconds"] for r in ok if r.get("first_on_doc")),
                                   "n": sum(1 for r in ok if r.get("first_on_doc"))},
    }
    if suite == "contractnli":
        labels = [(r["label"], r["metrics"]["predicted_label"]) for r in ok]
        out["confusion"] = {g: {p: sum(1 for a, b in labels if a == g and b == p)
                                for p in ("Entailment", "Contradiction", "NotMentioned")}
                            for g in ("Entailment", "Contradiction", "NotMentioned")}
    return out


# -- faithbench and all ---------------------------------------------------------------------------------
def _run_faithbench(data_dir: Path, out_dir: Path, *, limit: int | None) -> dict:
    from eval.report import write_report

    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        from eval.judge.calibrate import calibrate

        calib = calibrate(data_dir, limit=limit)
        note = []
    except Exception as exc:
        calib, note = None, [f"judge calibration unavailable ({type(exc).__name__}: {exc})"]
    result = {"suite": "faithbench", "systems": {}, "judge_agreement": calib, "report": str(out_dir / "report.html"),
              "metrics": str(out_dir / "metrics.json"), "limit": limit, "data": str(data_dir), "notes": note,
              "seconds": round(time.perf_counter() - t0, 1)}
    write_report(out_dir, result, {})
    return result


def _run_all(data_dir: Path, out_dir: Path, **kw) -> dict:
    from eval.report import write_summary

    t0 = time.perf_counter()
    results = {}
    for suite in (*QA_SUITES, "faithbench"):
        sub = out_dir / suite
        if suite == "faithbench":
            results[suite] = _run_faithbench(data_dir, sub, limit=kw["limit"])
        else:
            results[suite] = _run_qa(suite, data_dir, sub, limit=kw["limit"], llm=kw["llm"], systems=kw["systems"],
                                     progress=kw["progress"], store=kw["store_root"] / suite, ingest=True,
                                     staging=kw["store_root"] / f"{suite}-sources", judge=kw["judge"], seed=kw["seed"],
                                     config=kw["config"], batch=kw["batch"], parts=kw["parts"])
    systems: dict[str, dict] = {}
    for suite, res in results.items():
        for name, met in res["systems"].items():
            systems.setdefault(name, {})[suite] = met
    result = {"suite": "all", "systems": systems, "suites": results, "report": str(out_dir / "report.html"),
              "metrics": str(out_dir / "metrics.json"), "llm": kw["llm"], "limit": kw["limit"],
              "seconds": round(time.perf_counter() - t0, 1)}
    write_summary(out_dir, result)
    return result


# -- command line ---------------------------------------------------------------------------------------
class _Bar:
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


def _bar(total: int, desc: str, enabled: bool) -> _Bar:
    return _Bar(total, desc, enabled)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.harness", description=__doc__.splitlines()[0])
    p.add_argument("--suite", required=True, choices=[*SUITES, "all"])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="datasets folder laid out like ../shared/data")
    p.add_argument("--limit", type=int, help="a seeded sample of N items per suite (default: every item)")
    p.add_argument("--out", type=Path, required=True, help="output folder (report.md, report.html, metrics.json, items.jsonl)")
    p.add_argument("--llm", choices=["local", "openai", "extractive"], default="local", help="answer writer for every system")
    p.add_argument("--systems", help="comma-separated (default: sectionrag, chunk_baseline and every ablation this "
                                     "checkout has, e.g. sectionrag-no-verify, sectionrag-no-sections; variants such as "
                                     "sectionrag-passages12 run only when named)")
    p.add_argument("--store", type=Path, help="an existing store holding the suite's documents (not ingested into)")
    p.add_argument("--store-root", type=Path, help="where the harness ingests its own stores (default OUT/stores)")
    p.add_argument("--judge", default="local", choices=["local", "openai"], help="hallucination judge")
    p.add_argument("--seed", type=int, default=SEED, help="sampling seed for --limit")
    p.add_argument("--shard", type=parse_shard, metavar="K/N",
                   help="answer only part K of N (run the N parts at once, then once without --shard for the report)")
    p.add_argument("--parts", type=int, default=1, metavar="N",
                   help="answer in N processes at once (the --shard parts, each with 1/N of the CPUs and its own "
                        "models in memory), then report")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="answer N questions at a time, the writer's calls batched (local or openai writer)")
    p.add_argument("--config", type=Path, help="TOML file (as sectionrag reads) the pipeline rows start from")
    p.add_argument("--report-only", action="store_true",
                   help="answer nothing: report the items every system already has an answer for in OUT "
                        "(an interim look at a long or sharded run)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p


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
    try:
        with contextlib.redirect_stdout(sys.stderr):
            from pipeline.config import PipelineConfig

            config = PipelineConfig.from_toml(args.config) if args.config else None
            result = run_eval(args.suite, args.data, args.out, limit=args.limit, llm=args.llm,
                              systems=args.systems.split(",") if args.systems else None,
                              progress=not args.no_progress, store=args.store, store_root=args.store_root,
                              judge=args.judge, seed=args.seed, shard=args.shard, config=config, batch=args.batch,
                              report_only=args.report_only, parts=args.parts)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"eval: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eval: interrupted; results so far are in {args.out}, re-run to continue", file=sys.stderr)
        return 130
    if args.json:
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    elif "shard" in result:
        out.write(shard_text(result) + "\n")
    else:
        out.write(_headline_text(result) + f"\nreport: {result['report']}\n")
    return 0


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with 1 <= K <= N (an ``argparse`` type)."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must be K/N, e.g. 1/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"shard {text}: need 1 <= K <= N")
    return k, n


def shard_text(result: dict) -> str:
    return (f"{result['suite']} shard {result['shard']}: {result['items']} items, {result['answers']} answered now, "
            f"{result['recorded']} recorded in {result['file']}; run the same command without --shard for the report")


def _headline_text(result: dict) -> str:
    from eval.report import headline_rows

    return "\n".join("\t".join(str(c) for c in row) for row in headline_rows(result))


if __name__ == "__main__":
    sys.exit(main())
