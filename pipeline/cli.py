"""The ``sectionrag`` command line: ingest, sections, ask, delete, eval, bench (README.md shows each in use).

With ``--json`` each command prints exactly one JSON object on stdout; progress and logs go to
stderr. Errors are one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3
"""``ingest``: some inputs could not be stored (each is named under ``failed``); the rest were."""
EXIT_NOTHING_READ = 4
"""``ingest``: no input could be read (every path missing or failed, or no files found): nothing was stored."""
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        print(f"sectionrag: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    from eval.args import add_arguments as add_eval_arguments
    from eval.args import positive as _positive

    parser = _Parser(prog="sectionrag", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", required=True, type=Path, help="store folder (SQLite sections + FAISS passages)")
        p.add_argument("--config", type=Path, help="TOML file with [ingest], [index], [retrieve], [synthesize], [verify]")
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--collection", metavar="NAME", help="a named collection of the store (its own documents only)")

    p = sub.add_parser("ingest", help="read, sectionize, embed and store documents")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders (walked)")
    common(p)
    p.add_argument("--workers", type=_positive, help="worker processes (ingest.workers)")
    p.add_argument("--engine", choices=["local", "ray"], help="ingest.engine")

    p = sub.add_parser("sections", help="list stored sections")
    common(p)
    p.add_argument("--doc", help="only this document's sections")
    p.add_argument("--with-text", action="store_true", help="include each section's text")

    p = sub.add_parser("ask", help="answer a question with cited, verified claims")
    p.add_argument("question", metavar="QUESTION")
    common(p)
    p.add_argument("--doc", action="append", dest="docs", metavar="DOC_ID", help="restrict to this document (repeatable)")
    p.add_argument("--llm", choices=["local", "openai", "extractive"], help="answer writer (synthesize.llm)")
    p.add_argument("--top-sections", type=_positive, help="sections to retrieve (retrieve.top_sections)")
    p.add_argument("--kind", action="append", dest="kinds", choices=["filing", "contract", "ehr", "note", "generic"],
                   help="only documents of this kind (repeatable)")
    p.add_argument("--date-from", default="", metavar="YYYY-MM-DD", help="EHR sections dated on or after this day")
    p.add_argument("--date-to", default="", metavar="YYYY-MM-DD", help="EHR sections dated on or before this day")
    p.add_argument("--trace", action="store_true",
                   help="also show the evidence the writer was given, each claim's verdict, the route and timings")
    p.add_argument("--stream", action="store_true", help="print each stage's result on stderr as it finishes")
    p.add_argument("--thread", metavar="ID",
                   help="checkpoint the question under this id; asking it again after an interruption resumes it")

    p = sub.add_parser("check", help="does a document entail, contradict or not mention a hypothesis?")
    p.add_argument("hypothesis", metavar="HYPOTHESIS")
    common(p)
    p.add_argument("--doc", action="append", dest="docs", metavar="DOC_ID", help="check this document (repeatable)")

    p = sub.add_parser("review", help="check a playbook of hypotheses over many documents (resumable)")
    p.add_argument("targets", nargs="+", metavar="DOC_OR_PATH",
                   help="stored document ids, or files and folders (ingested first)")
    p.add_argument("--playbook", required=True, type=Path, help="TOML file of [[hypothesis]] tables (id, text)")
    p.add_argument("--out", required=True, type=Path, help="folder for review.jsonl, review.csv and review.html")
    common(p)

    p = sub.add_parser("delete", help="remove documents from a store")
    p.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    common(p)

    add_eval_arguments(sub.add_parser("eval", help="evaluate sectionrag against a chunked baseline on a dataset suite"))

    p = sub.add_parser("bench", help="benchmarks")
    bench = p.add_subparsers(dest="bench", required=True, parser_class=_Parser)
    p = bench.add_parser("encoder", help="the long encoder on each attention backend against HF Longformer, BigBird and dense BERT")
    p.add_argument("--lengths", default="1024,4096,16384", help="comma-separated token counts")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--impls", help="comma-separated rows (default: every available one)")
    p.add_argument("--repeats", type=_positive, default=3)
    p.add_argument("--dtype", help="comma-separated precisions every row runs in: float32, bfloat16 "
                                   "(default float32 on the CPU, bfloat16 on CUDA)")
    p.add_argument("--threads", type=_positive, help="torch CPU threads per row")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p = bench.add_parser("reader", help="the trained section reader against the untrained encoder on long sections")
    p.add_argument("--lengths", default="4096,16384", help="comma-separated section lengths in tokens")
    p.add_argument("--repeats", type=_positive, default=3)
    p.add_argument("--source", type=Path, help="a text file the sections are made of (default: a short contract text)")
    p.add_argument("--train", action="store_true",
                   help="time one training step (forward and backward) per differentiable attention backend instead")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p = bench.add_parser("writer", help="the local answer writer with our attention against transformers' SDPA")
    p.add_argument("--tokens", default="1000,3000", help="comma-separated prompt lengths in tokens")
    p.add_argument("--batch", default="1,4", help="comma-separated batch sizes")
    p.add_argument("--dtype", default="bfloat16,float32", help="comma-separated: float32, bfloat16")
    p.add_argument("--new-tokens", type=_positive, default=96)
    p.add_argument("--repeats", type=_positive, default=2)
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads")
    p.add_argument("--contracts", help="a folder of contract .txt files (default: CUAD's in ../shared/data)")
    p.add_argument("--engines", default="", help="comma-separated transformers, llama_cpp: compare the engines that "
                                                 "run a local writer (load, prefill and decode tokens/s) instead")
    p.add_argument("--model", default="", help="with --engines: the [synthesize] local_model they run")
    p.add_argument("--server", default="", help="an OpenAI-compatible server's URL (vLLM, llama.cpp server): measure "
                                                "its batch throughput instead")
    p.add_argument("--server-model", default="", help="with --server: the model name the server serves")
    p.add_argument("--concurrency", default="1,4,16", help="with --server: comma-separated clients at once")
    p.add_argument("--requests", type=_positive, default=32, help="with --server: requests per concurrency")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def _config(args: argparse.Namespace):
    from pipeline.config import PipelineConfig

    cfg = PipelineConfig.from_toml(args.config) if args.config else PipelineConfig()
    return cfg.replace(
        ingest={"workers": getattr(args, "workers", None), "engine": getattr(args, "engine", None)},
        retrieve={"top_sections": getattr(args, "top_sections", None)},
        synthesize={"llm": getattr(args, "llm", None)},
    )


def _emit(args: argparse.Namespace, obj: dict, human: str) -> None:
    out = args.stdout
    out.write((json.dumps(obj, ensure_ascii=False) if args.json else human) + "\n")
    out.flush()


def cmd_ingest(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline

    with Pipeline(args.store, _config(args), collection=args.collection) as p:
        report = p.ingest(args.paths, progress=True)
    obj = {"documents": report.documents, "sections": report.sections, "passages": report.passages,
           "pages": report.pages, "seconds": report.seconds, "skipped": report.skipped,
           "failed": [{"path": f.path, "error": f.error} for f in report.failed],
           "warnings": [{"path": w.path, "warning": w.warning} for w in report.warnings]}
    lines = [f"ingested {report.documents} documents: {report.sections} sections, {report.passages} passages, "
             f"{report.pages} pages in {report.seconds:.1f}s; {report.skipped} unchanged skipped"]
    lines += [f"warning: {w.path}: {w.warning}" for w in report.warnings]
    lines += [f"failed: {f.path}: {f.error}" for f in report.failed]
    stored = report.documents + report.skipped
    code = 0 if not report.failed and stored else EXIT_SOME_FAILED if stored else EXIT_NOTHING_READ
    if code == EXIT_NOTHING_READ and not report.failed:
        lines.append("nothing to ingest: no files found under " + ", ".join(map(str, args.paths)))
    _emit(args, obj, "\n".join(lines))
    return code


def cmd_sections(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline

    with Pipeline(args.store, _config(args), collection=args.collection) as p:
        sections = p.sections(args.doc)
        docs = {d: p.document(d) for d in dict.fromkeys(s.doc_id for s in sections)}
    documents = [_document_json(doc) for doc in docs.values()]
    rows = []
    for s in sections:
        row = {"id": s.id, "doc_id": s.doc_id, "path": list(s.path), "title": s.title, "start": s.start, "end": s.end,
               "pages": list(s.pages), "tokens": s.tokens}
        if args.with_text:
            row["text"] = s.text
        rows.append(row)
    human = "\n".join(f"{s.doc_id}\t{' › '.join(s.path)}\t[{s.start}:{s.end}]\tpages {s.pages[0]}-{s.pages[-1]}\t{s.tokens} tokens"
                      + (f"\n{s.text}\n" if args.with_text else "") for s in sections)
    if args.doc and docs:
        human = "\n".join(f"{k}: {v}" for k, v in documents[0]["metadata"].items()) + "\n\n" + human
    _emit(args, {"documents": documents, "sections": rows}, human or "no sections")
    return 0


def _document_json(doc) -> dict:
    """A stored document's identity and metadata: each field's value, and where and how surely it was read."""
    meta = dict(doc.metadata)
    fields = {k: v for k, v in meta.items() if not k.endswith(("_from", "_confidence"))}
    read_from = {k: {"from": meta[f"{k}_from"], "confidence": float(meta[f"{k}_confidence"])}
                 for k in fields if f"{k}_from" in meta and f"{k}_confidence" in meta}
    return {"id": doc.id, "source": doc.source, "kind": doc.kind, "title": doc.title, "pages": doc.pages,
            "metadata": fields, "metadata_read_from": read_from}


def cmd_ask(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline
    from pipeline.types import SectionFilter

    filters = None
    if args.kinds or args.date_from or args.date_to:
        filters = SectionFilter(kinds=tuple(args.kinds or ()), date_from=args.date_from, date_to=args.date_to)
    with Pipeline(args.store, _config(args), collection=args.collection) as p:
        answer = p.ask(args.question, args.docs, top_sections=args.top_sections, filters=filters, trace=args.trace,
                       thread_id=args.thread, on_step=_print_step if args.stream else None)
    obj = {
        "answer": answer.text, "abstained": answer.abstained, "support": round(answer.support, 4),
        "kind": answer.kind, "value": list(answer.value) if isinstance(answer.value, tuple) else answer.value,
        "citations": [{"doc_id": c.doc_id, "section_id": c.section_id, "start": c.start, "end": c.end, "quote": c.quote}
                      for c in answer.citations],
        "sections": [{"id": s.id, "doc_id": s.doc_id, "path": list(s.path), "tokens": s.tokens, "score": round(s.score, 6)}
                     | ({"via": s.via} if s.via else {}) for s in answer.sections],
        "timings": dict(answer.timings),
    }
    lines = [answer.text, ""]
    for i, c in enumerate(answer.citations, 1):
        lines.append(f"[{i}] {c.doc_id} [{c.start}:{c.end}] \"{_short(c.quote, 300)}\"")
    lines.append(f"(support {answer.support:.2f}; {dict(answer.timings).get('total', 0.0):.1f}s)")
    if answer.trace is not None:
        obj["trace"] = _trace_json(answer.trace)
        lines += ["", *_trace_lines(answer.trace)]
    _emit(args, obj, "\n".join(lines))
    return 0


def _short(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text[:n] + ("…" if len(text) > n else "")


def _trace_json(trace) -> dict:
    return {
        "evidence": [{"n": ev.n, "doc_id": ev.doc_id, "section_id": ev.section_id, "start": ev.start, "end": ev.end,
                      "text": ev.text, "score": round(ev.score, 6)} for ev in trace.evidence],
        "claims": [{"claim": c.claim, "supported": c.supported, "support": round(c.support, 4),
                    "evidence": list(c.evidence), "reasons": list(c.reasons)} for c in trace.claims],
        "route": list(trace.route),
        "scope": trace.scope,
        "timings": dict(trace.timings),
        "injections": [{"doc_id": f.doc_id, "section_id": f.section_id, "start": f.start, "end": f.end,
                        "text": f.quote} for f in trace.injections],
    }


def _trace_lines(trace) -> list[str]:
    lines = [f"route: {' → '.join(trace.route)}"] + ([f"scope: {trace.scope}"] if trace.scope else [])
    lines.append("evidence given to the writer:")
    lines += [f"  [{ev.n}] {ev.doc_id} [{ev.start}:{ev.end}] ({ev.score:.2f}) {_short(ev.text, 160)}"
              for ev in trace.evidence]
    lines += ["claims:"] + [f"  {'kept' if c.supported else 'dropped'} ({c.support:.2f}) {_short(c.claim, 160)}"
                            + (f" — {'; '.join(c.reasons)}" if c.reasons else "") for c in trace.claims]
    if trace.injections:
        lines.append("flagged as planted instructions (kept from the writer):")
        lines += [f"  {f.doc_id} [{f.start}:{f.end}] {_short(f.quote, 160)}" for f in trace.injections]
    return lines


def _print_step(step) -> None:
    """``--stream``: one line on stderr per stage as it finishes."""
    u = step.update
    match step.node:
        case "retrieve":
            what = f"{len(u.get('sections', []))} sections" + (f", {len(u['evidence'])} evidence" if "evidence" in u else "")
        case "summarize":
            what = f"{len(u.get('evidence', []))} evidence sentences" if u else "passes"
        case "synthesize" | "quote":
            what = _short(u.get("draft", ""), 120)
        case "verify":
            claims = u.get("claims", [])
            what = f"{sum(c.supported for c in claims)} of {len(claims)} claims supported"
        case "finalize":
            what = "abstained" if u["answer"].abstained else "answered"
        case _:
            what = ""
    print(f"[{step.seconds:7.2f}s] {step.node}: {what}", file=sys.stderr, flush=True)


def _verdict_json(v) -> dict:
    return {"label": v.label, "confidence": v.confidence,
            "evidence": [{"doc_id": c.doc_id, "section_id": c.section_id, "start": c.start, "end": c.end,
                          "quote": c.quote} for c in v.evidence]}


def cmd_check(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline

    with Pipeline(args.store, _config(args), collection=args.collection) as p:
        verdict = p.check(args.hypothesis, args.docs)
    lines = [f"{verdict.label} ({verdict.confidence:.2f})"]
    lines += [f"[{i}] {c.doc_id} [{c.start}:{c.end}] \"{_short(c.quote, 300)}\"" for i, c in enumerate(verdict.evidence, 1)]
    _emit(args, _verdict_json(verdict), "\n".join(lines))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline
    from pipeline.review import Playbook, run_review

    playbook = Playbook.from_toml(args.playbook)
    with Pipeline(args.store, _config(args), collection=args.collection) as p:
        paths = [t for t in args.targets if Path(t).exists()]
        if paths:
            report = p.ingest(paths, progress=True)
            if report.failed:
                raise ValueError("; ".join(f"{f.path}: {f.error}" for f in report.failed))
        doc_ids: list[str] = []
        for t in args.targets:
            doc_ids += p.documents(under=t) if Path(t).exists() else [t]
        result = run_review(p, playbook, list(dict.fromkeys(doc_ids)), args.out)
    obj = {"documents": result.documents, "hypotheses": result.hypotheses, "checked": result.checked,
           "counts": result.counts, "files": result.files}
    _emit(args, obj, f"reviewed {result.documents} documents × {result.hypotheses} hypotheses "
                     f"({result.checked} checked now): {result.counts}; {result.files['page']}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from pipeline.api import Pipeline

    with Pipeline(args.store, _config(args), collection=args.collection) as p:
        removed = p.delete(args.doc_ids)
    _emit(args, {"deleted": list(args.doc_ids), "passages": removed},
          f"deleted {len(args.doc_ids)} document(s) and {removed} passages")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.args import options, shard_text
    from eval.harness import run_eval

    result = run_eval(**options(args))
    if "shard" in result:
        _emit(args, result, shard_text(result))
        return 0
    lines = [f"suite {result['suite']}: report {result['report']}"]
    for name, metrics in result["systems"].items():
        shown = {k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        lines.append(f"{name}: " + ", ".join(f"{k}={v:.3g}" for k, v in list(shown.items())[:8]))
    _emit(args, result, "\n".join(lines))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench == "reader":
        from encoders.bench_reader import bench_reader, bench_train_step, table

        try:
            lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--lengths must be comma-separated token counts, not {args.lengths!r}") from None
        result = (bench_train_step(lengths, args.repeats, source=args.source) if args.train
                  else bench_reader(lengths, args.repeats, source=args.source))
        _emit(args, result, table(result))
        return 0
    if args.bench == "writer":
        from graphs.llm.bench import DEFAULT_CONTRACTS, bench_writer, table

        result = bench_writer(args.tokens, args.batch, args.dtype, args.new_tokens, args.repeats, args.threads,
                              Path(args.contracts) if args.contracts else DEFAULT_CONTRACTS, args.engines, args.model,
                              args.server, args.server_model, args.concurrency, args.requests)
        _emit(args, result, table(result))
        return 0
    from encoders.bench import bench_encoder

    try:
        lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--lengths must be comma-separated token counts, not {args.lengths!r}") from None
    result = bench_encoder(lengths, args.device, args.impls.split(",") if args.impls else None,
                           repeats=args.repeats, progress=True, threads=args.threads,
                           dtypes=args.dtype.split(",") if args.dtype else None)
    lines = [f"device {result['device']}"]
    lines += [f"{r['impl']:28s} {r['length']:>7d} tokens  {r['dtype']:>8s}  {r['ms']:10.1f} ms  {r['tokens_per_s']:10.0f} tok/s  "
              f"{r['peak_mb']:8.0f} MB" for r in result["rows"]]
    _emit(args, result, "\n".join(lines))
    return 0


def _quiet_libraries() -> None:
    # Library progress bars and warnings would interleave with ours on stderr; stdout stays clean for --json.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    from graphs.llm import LLMError
    from ingest.errors import IngestError
    from pipeline.store import StoreError

    handlers = {"ingest": cmd_ingest, "sections": cmd_sections, "ask": cmd_ask, "check": cmd_check,
                "review": cmd_review, "delete": cmd_delete, "eval": cmd_eval,
                "bench": cmd_bench}
    args.stdout = sys.stdout
    terminated = []

    def on_term(signum, frame):  # SIGTERM stops a long command the way Ctrl-C does: what is done is kept
        terminated.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    try:
        # Anything a library prints on stdout would corrupt the one JSON object: send it to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            return handlers[args.command](args)
    except (StoreError, IngestError, LLMError, ValueError, RuntimeError, OSError) as exc:
        print(f"sectionrag: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        how = "terminated" if terminated else "interrupted"
        print(f"sectionrag: {how}; what was stored is kept, re-run to finish", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
